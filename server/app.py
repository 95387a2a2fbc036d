"""The one assembly point: ``create_app(settings)`` lists every controller, plugin and lifespan."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

import web
from server.health import HealthController
from server.lifespans import LIFESPANS
from server.runtime import Runtime
from server.settings import Settings


def create_app(settings: Settings) -> Litestar:
    """Build the web application for ``settings``; resources open in its lifespans."""
    prometheus = PrometheusConfig(
        app_name="vaki", prefix="vaki", group_path=True, exclude=["/metrics", "/healthz", "/readyz"]
    )
    return Litestar(
        route_handlers=[HealthController, PrometheusController, *web.ROUTE_HANDLERS],
        middleware=[prometheus.middleware],
        lifespan=list(LIFESPANS),
        state=State({"runtime": Runtime(settings=settings)}),
        template_config=web.template_config(),
        openapi_config=OpenAPIConfig(
            title="Vaki",
            version="0.1.0",
            description="Telehealth and welfare technology for people aged 60+ living at home.",
            path="/schema",
        ),
        logging_config=None,
    )
