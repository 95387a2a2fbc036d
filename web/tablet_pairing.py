"""Staff pair a resident's tablet: a one-time code with its QR code, and the tablets in use.

The page is a console page (signed-in staff, CSRF on every change); only coordinators and
nurses of one of the resident's teams may pair or revoke, and every visit is in the
resident's access log.
"""

from __future__ import annotations

from typing import Any

import segno
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ControllerRouterHandler
from markupsafe import Markup
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from web import i18n
from web.auth import StaffIdentity, csrf_token_of, identify

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


async def _pairing_staff(
    request: Request[Any, Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> StaffIdentity:
    """The signed-in coordinator or nurse; 403 for other roles."""
    identity = await identify(request, sessions)
    if not care.may(identity.role, care.Permission.PAIR_TABLET):
        raise PermissionDeniedException("only coordinators and nurses pair tablets")
    i18n.use_language(identity.language)
    return identity


def qr_svg(text: str) -> Markup:
    """A QR code of ``text`` as inline SVG, drawn on the server (no outside service)."""
    code = segno.make(text, error="m")
    return Markup(code.svg_inline(scale=6, border=4, dark="#000", light="#fff", omitsize=True))  # noqa: S704 (segno's own SVG)


def _page(
    request: Request[Any, Any, Any],
    resident: care.Resident,
    tablets: list[devices.Device],
    code: devices.PairingCode | None = None,
) -> Template:
    """The pairing page, with a fresh code when one was just made."""
    context: dict[str, Any] = {
        "lang": i18n.current_language(),
        "resident": resident,
        "tablets": tablets,
        "csrf_token": csrf_token_of(request),
        "code": code,
    }
    if code is not None:
        base = str(request.base_url).rstrip("/")
        context["qr"] = qr_svg(f"{base}/tablet/#pair={code.code}")
    return Template(template_name="tablet_pairing.html", context=context, headers=PAGE_HEADERS)


@get("/console/residents/{resident_id:int}/pair-tablet", include_in_schema=False)
async def pairing_page(
    request: Request[Any, Any, Any], sessions: Sessions, resident_id: FromPath[int]
) -> Template:
    """The resident's tablets and a button for a new pairing code."""
    identity = await _pairing_staff(request, sessions)
    found = await devices.DeviceService(sessions).resident_tablets(identity.actor, resident_id)
    return _page(request, found.resident, found.tablets)


@post("/console/residents/{resident_id:int}/pair-tablet", include_in_schema=False, status_code=200)
async def create_code(
    request: Request[Any, Any, Any], sessions: Sessions, resident_id: FromPath[int]
) -> Template:
    """A new one-time code (the resident's previous unused code stops working)."""
    identity = await _pairing_staff(request, sessions)
    made = await devices.DeviceService(sessions).resident_tablets(
        identity.actor, resident_id, new_code=True
    )
    return _page(request, made.resident, made.tablets, made.code)


@post(
    "/console/residents/{resident_id:int}/tablets/{device_id:str}/revoke",
    include_in_schema=False,
    status_code=HTTP_303_SEE_OTHER,
)
async def revoke_tablet(
    request: Request[Any, Any, Any],
    sessions: Sessions,
    resident_id: FromPath[int],
    device_id: FromPath[str],
) -> Redirect:
    """End a tablet's access (lost, broken, handed on): its key stops working at once."""
    identity = await _pairing_staff(request, sessions)
    await devices.DeviceService(sessions).revoke_tablet(identity.actor, resident_id, device_id)
    return Redirect(
        f"/console/residents/{resident_id}/pair-tablet",
        status_code=HTTP_303_SEE_OTHER,
        headers=PAGE_HEADERS,
    )


PAIRING_ROUTES: list[ControllerRouterHandler] = [pairing_page, create_code, revoke_tablet]
