"""The one assembly point: ``create_app(settings)`` lists every controller, plugin and lifespan."""

from __future__ import annotations

from litestar import Litestar
from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ServiceUnavailableException
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import web
from server.health import HealthController
from server.lifespans import LIFESPANS
from server.live import ResilientPostgresChannels
from server.pipeline import ALERTS_CHANNEL
from server.runtime import Runtime
from server.settings import Settings


def _channels_backend(settings: Settings) -> ChannelsBackend:
    """In memory for one instance; PostgreSQL LISTEN/NOTIFY so every instance's consoles
    hear every alert when the service runs on PostgreSQL."""
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "postgresql":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return ResilientPostgresChannels(dsn)
    return MemoryChannelsBackend()


def _sessions(state: State) -> async_sessionmaker[AsyncSession]:
    """The database sessions, for controllers."""
    runtime: Runtime = state.runtime
    if runtime.sessions is None:
        raise ServiceUnavailableException("the database is not open")
    return runtime.sessions


def _alarm_lifecycle(state: State) -> alerts.AlertLifecycle:
    """The alert lifecycle, for controllers."""
    runtime: Runtime = state.runtime
    if runtime.alarms is None:
        raise ServiceUnavailableException("the alarm path is not running")
    return runtime.alarms.lifecycle


def _checkin_desk(state: State) -> web.CheckinDesk:
    """The check-in pipeline, for the tablet's controllers."""
    runtime: Runtime = state.runtime
    if runtime.checkins is None:
        raise ServiceUnavailableException("check-ins are not running")
    return runtime.checkins


def create_app(settings: Settings) -> Litestar:
    """Build the web application for ``settings``; resources open in its lifespans."""
    prometheus = PrometheusConfig(
        app_name="vaki", prefix="vaki", group_path=True, exclude=["/metrics", "/healthz", "/readyz"]
    )
    live = ChannelsPlugin(backend=_channels_backend(settings), channels=[ALERTS_CHANNEL])
    runtime = Runtime(settings=settings, live=live)
    return Litestar(
        route_handlers=[HealthController, PrometheusController, *web.ROUTE_HANDLERS],
        middleware=[prometheus.middleware],
        plugins=[live],
        dependencies={
            "sessions": Provide(_sessions, sync_to_thread=False),
            "alarm_lifecycle": Provide(_alarm_lifecycle, sync_to_thread=False),
            "checkin_desk": Provide(_checkin_desk, sync_to_thread=False),
        },
        lifespan=list(LIFESPANS),
        state=State({"runtime": runtime}),
        template_config=web.template_config(),
        openapi_config=OpenAPIConfig(
            title="Vaki",
            version="0.1.0",
            description="Telehealth and welfare technology for people aged 60+ living at home.",
            path="/schema",
        ),
        logging_config=None,
    )
