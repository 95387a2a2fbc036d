"""The device-test pages: staff and the resident's tablet check their camera, microphone and
connection against the server's echo peer before a call, told in plain words what works."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from web import i18n
from web.auth import PUBLIC_OPT
from web.console_view import PAGE_HEADERS, console_page, viewer_of

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
TABLET_LANGUAGE_COOKIE = "vaki_tablet_lang"


def device_test_strings() -> dict[str, str]:
    """What the test's script says, in the page's language."""
    return {
        "starting": i18n.translate("Starting the camera and microphone…"),
        "testing": i18n.translate("Testing… this takes a few seconds."),
        "connection_ok": i18n.translate("The connection to the care team works."),
        "connection_fail": i18n.translate("The connection to the care team does not work."),
        "camera_ok": i18n.translate("The camera works."),
        "camera_fail": i18n.translate("No picture arrives from the camera."),
        "microphone_ok": i18n.translate("The microphone works: you can be heard."),
        "microphone_fail": i18n.translate("No sound arrives from the microphone."),
        "all_good": i18n.translate("Everything works. You are ready for a call."),
        "some_fail": i18n.translate("Something does not work. Ask the care team for help."),
        "no_devices": i18n.translate("The camera or microphone could not be used."),
        "failed": i18n.translate("The test could not be run. Try again."),
    }


@get("/console/device-test", include_in_schema=False)
async def console_device_test(request: Request[Any, Any, Any], sessions: Sessions) -> Template:
    """The staff member's own camera and microphone."""
    viewer = await viewer_of(request, sessions)
    return console_page(
        request,
        viewer,
        "console_device_test.html",
        section="waiting",
        device_test_strings=device_test_strings(),
    )


@get("/tablet/device-test", include_in_schema=False, opt={PUBLIC_OPT: True})
async def tablet_device_test(request: Request[Any, Any, Any]) -> Template:
    """The tablet's test; its script uses the device key the tablet keeps."""
    language = i18n.use_language(request.cookies.get(TABLET_LANGUAGE_COOKIE))
    return Template(
        template_name="tablet_device_test.html",
        context={"lang": language, "device_test_strings": device_test_strings()},
        headers=PAGE_HEADERS,
    )


DEVICE_TEST_ROUTES: list[ControllerRouterHandler] = [console_device_test, tablet_device_test]
