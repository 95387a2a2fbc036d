"""What every console page shares: the staff member behind it, their language and time zone,
the page headers, and the refusals that are the same on every page."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from litestar import Request
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from web import i18n
from web.auth import StaffIdentity, csrf_token_of, identify

# Pages with personal data are never cached, framed or sent with a referrer elsewhere.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Viewer:
    """The staff member a console page is for."""

    identity: StaffIdentity
    time_zone: str

    @property
    def is_technician(self) -> bool:
        """Whether this staff member looks after devices, not residents' care (a technician)."""
        return not care.may(self.identity.role, care.Permission.READ_CLINICAL)


async def viewer_of(
    request: Request[Any, Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> Viewer:
    """The signed-in staff member; the rest of the request speaks their language."""
    identity = await identify(request, sessions)
    i18n.use_language(identity.language, identity.time_zone)
    return Viewer(identity=identity, time_zone=identity.time_zone)


def refuse_technician(viewer: Viewer, what: str) -> None:
    """A technician asking for a resident's care data on a page gets 404, as if it were absent."""
    if viewer.is_technician:
        raise NotFoundException(f"no {what}")


def console_page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    template_name: str,
    *,
    section: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A console page in the viewer's language, with the CSRF token for its forms."""
    return Template(
        template_name=template_name,
        context={
            "staff": viewer.identity,
            "is_technician": viewer.is_technician,
            # ``may("edit_policy")``: the same role table the routes use, for links and menus.
            "may": partial(care.may, viewer.identity.role),
            "csrf_token": csrf_token_of(request),
            "lang": i18n.current_language(),
            "section": section,
            **context,
        },
        status_code=status_code,
        headers=PAGE_HEADERS,
    )


def back_to(path: str) -> Redirect:
    """After a form: back to a console page (303, so a reload does not post again)."""
    safe = path if path.startswith("/console") and "//" not in path else "/console/"
    return Redirect(safe, status_code=HTTP_303_SEE_OTHER, headers=PAGE_HEADERS)
