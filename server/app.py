"""The one assembly point: ``create_app(settings)`` lists every controller, plugin and lifespan."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    ServiceUnavailableException,
)
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import web
from server.alarm_path import ALERTS_CHANNEL
from server.export_lifespan import export_lifespan, export_worker
from server.health import HealthController
from server.lifespans import LIFESPANS
from server.live import ResilientPostgresChannels
from server.runtime import Runtime
from server.settings import Settings
from server.video_lifespan import (
    VIDEO_STATE_KEY,
    provide_video_service,
    video_lifespan,
    video_service,
)

log = logging.getLogger(__name__)


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


def _alert_service(state: State) -> alerts.AlertService:
    """Alerts as staff handle them, for controllers."""
    runtime: Runtime = state.runtime
    if runtime.sessions is None or runtime.alarms is None:
        raise ServiceUnavailableException("the alarm path is not running")
    return alerts.AlertService(runtime.sessions, runtime.alarms.lifecycle)


def _checkin_desk(state: State) -> web.CheckinDesk:
    """The check-in pipeline, for the tablet's controllers."""
    runtime: Runtime = state.runtime
    if runtime.checkins is None:
        raise ServiceUnavailableException("check-ins are not running")
    return runtime.checkins


def _notification_channels(settings: Settings) -> tuple[str, ...]:
    """The channels this installation can send through, so editors offer only those."""
    configured = {
        "email": settings.smtp_host,
        "sms": settings.sms_gateway_url,
        "push": settings.vapid_private_key,
    }
    return ("console", *(name for name, setting in configured.items() if setting))


def _push_key(settings: Settings) -> str | None:
    """The public VAPID key browsers subscribe to web push with (None without push)."""
    if not settings.vapid_private_key:
        return None
    return alerts.WebPushChannel(settings.vapid_private_key).application_server_key


def _tablet_desk(state: State) -> devices.DeviceService:
    """Tablet events ("I need help"), committed as ingestion commits them and handed to the
    same batch subscribers as an MQTT batch (the alarm path first)."""
    runtime: Runtime = state.runtime
    if runtime.sessions is None or runtime.alarms is None:
        raise ServiceUnavailableException("the alarm path is not running")
    return devices.DeviceService(runtime.sessions, runtime.batch_subscribers)


def _staff_access(
    settings: Settings, runtime: Runtime, clock: Callable[[], datetime]
) -> web.StaffAccess:
    """Sessions, sign-in limits and the database, as the web side needs them."""
    policy = web.AccessPolicy(
        idle_timeout=timedelta(minutes=settings.session_idle_timeout_min),
        absolute_timeout=timedelta(hours=settings.session_absolute_timeout_h),
        max_failures=settings.login_max_failures,
        max_failures_per_address=settings.login_max_failures_per_address,
        lockout_window=timedelta(minutes=settings.login_lockout_min),
        secure_cookies=(settings.public_url or "").lower().startswith("https://"),
        clock=clock,
    )
    return web.StaffAccess(policy=policy, database=lambda: runtime.sessions)


async def _log_unexpected(exception: BaseException, scope: Any) -> None:
    """A request that failed unexpectedly (a 500) leaves its traceback in the service log."""
    if isinstance(exception, HTTPException) and exception.status_code < 500:
        return
    if isinstance(exception, web.DOMAIN_ERRORS) and web.status_of(exception) < 500:
        return  # a refused or unknown request, answered with its status by the error map
    log.error(
        "request %s %s failed",
        scope.get("method", "WEBSOCKET"),
        scope.get("path", "?"),
        exc_info=(type(exception), exception, exception.__traceback__),
    )


def create_app(settings: Settings, *, clock: Callable[[], datetime] = care.utcnow) -> Litestar:
    """Build the web application for ``settings``; resources open in its lifespans.

    ``clock`` is the time sessions and sign-in limits are measured by (tests move it).
    """
    prometheus = PrometheusConfig(
        app_name="vaki", prefix="vaki", group_path=True, exclude=["/metrics", "/healthz", "/readyz"]
    )
    backend = _channels_backend(settings)
    live = ChannelsPlugin(backend=backend, channels=[ALERTS_CHANNEL, web.TABLETS_CHANNEL])
    feed = backend if isinstance(backend, ResilientPostgresChannels) else None
    runtime = Runtime(settings=settings, live=live, live_feed=feed)
    return Litestar(
        route_handlers=[HealthController, PrometheusController, *web.ROUTE_HANDLERS],
        middleware=[prometheus.middleware],
        # One response hook: the security headers on every response, errors included.
        before_send=[web.security_headers],
        before_request=web.refuse_odd_requests,
        # Closed by default: every route needs a signed-in staff member unless it is public.
        guards=[web.require_staff],
        exception_handlers={
            NotAuthorizedException: web.sign_in_or_refuse,
            # One handler per domain: its errors' meaning decides the status (web.error_responses).
            **dict.fromkeys(web.DOMAIN_ERRORS, web.domain_error_response),
            DataError: web.out_of_range,
            OverflowError: web.out_of_range,
        },
        plugins=[live],
        dependencies={
            "sessions": Provide(_sessions, sync_to_thread=False),
            "alert_service": Provide(_alert_service, sync_to_thread=False),
            "checkin_desk": Provide(_checkin_desk, sync_to_thread=False),
            "video_service": Provide(provide_video_service, sync_to_thread=False),
            "tablet_desk": Provide(_tablet_desk, sync_to_thread=False),
        },
        # Video closes first, while the database is still open for the call records.
        lifespan=[*LIFESPANS, video_lifespan, export_lifespan],
        state=State(
            {
                "runtime": runtime,
                web.ACCESS_STATE_KEY: _staff_access(settings, runtime, clock),
                VIDEO_STATE_KEY: video_service(settings, runtime, clock),
                web.TABLET_STATE_KEY: web.TabletPageSettings(
                    settings.emergency_number, settings.tablet_ring_s
                ),
                web.CHANNELS_STATE_KEY: _notification_channels(settings),
                web.PUSH_KEY_STATE_KEY: _push_key(settings),
                web.EXPORT_STATE_KEY: export_worker(runtime, care.utcnow),
            }
        ),
        template_config=web.template_config(),
        openapi_config=OpenAPIConfig(
            title="Vaki",
            version="0.1.0",
            description="Telehealth and welfare technology for people aged 60+ living at home.",
            path="/schema",
        ),
        logging_config=None,
        after_exception=[_log_unexpected],
    )
