"""The web side: Litestar controllers, Jinja2 templates, static assets.

Owns the staff console and the senior's tablet pages, their i18n catalogues and staff
authentication, and the one map from domain errors to HTTP (``error_responses``: JSON for
the API, a page for people). Holds no business rules: it calls the domains' services.
"""

from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from web.alerts_api import AlertsController
from web.auth import (
    ACCESS_STATE_KEY,
    StaffIdentity,
    identify,
    require_staff,
    sign_in_or_refuse,
    visible_resident,
)
from web.checkins_api import CheckinsController
from web.console import CONSOLE_ROUTES
from web.console_api import ResidentsController
from web.console_indicators import INDICATOR_ROUTES
from web.console_policy import CHANNELS_STATE_KEY
from web.console_view import PUSH_KEY_STATE_KEY
from web.console_waiting import WAITING_ROUTES
from web.device_test_pages import DEVICE_TEST_ROUTES
from web.error_responses import DOMAIN_ERRORS, domain_error_response, status_of
from web.fhir_api import EXPORT_STATE_KEY, FHIR_ROUTER
from web.headers import out_of_range, refuse_odd_requests, security_headers
from web.indicators_api import INDICATORS_ROUTER
from web.pages import index
from web.policies_api import PoliciesController
from web.resident_settings_api import ResidentSettingsController
from web.sessions import AccessPolicy, StaffAccess
from web.tablet import (
    TABLET_ROUTES,
    TABLET_STATE_KEY,
    CheckinDesk,
    TabletPageSettings,
)
from web.tablet_pairing import TABLETS_CHANNEL, tell_tablet
from web.templating import STATIC_DIR, template_config
from web.video_api import VIDEO_ROUTES

ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    index,
    AlertsController,
    PoliciesController,
    CheckinsController,
    ResidentSettingsController,
    ResidentsController,
    *CONSOLE_ROUTES,
    *WAITING_ROUTES,
    *DEVICE_TEST_ROUTES,
    *TABLET_ROUTES,
    *VIDEO_ROUTES,
    FHIR_ROUTER,
    INDICATORS_ROUTER,
    *INDICATOR_ROUTES,
    create_static_files_router(path="/static", directories=[STATIC_DIR]),
]

__all__ = [
    "ACCESS_STATE_KEY",
    "CHANNELS_STATE_KEY",
    "DOMAIN_ERRORS",
    "EXPORT_STATE_KEY",
    "PUSH_KEY_STATE_KEY",
    "ROUTE_HANDLERS",
    "TABLETS_CHANNEL",
    "TABLET_STATE_KEY",
    "AccessPolicy",
    "CheckinDesk",
    "StaffAccess",
    "StaffIdentity",
    "TabletPageSettings",
    "domain_error_response",
    "identify",
    "out_of_range",
    "refuse_odd_requests",
    "require_staff",
    "security_headers",
    "sign_in_or_refuse",
    "status_of",
    "tell_tablet",
    "template_config",
    "visible_resident",
]
