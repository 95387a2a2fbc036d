"""The team's staff for a coordinator: who can sign in, whose sign-in is held up by failed
tries (and unlocking it), and deactivating someone who has left.

Only staff who share a care team with the coordinator are listed or touched; every change
carries the session's CSRF token and is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from web.auth import staff_access_of
from web.console_view import Viewer, back_to, console_page, viewer_of
from web.i18n import gettext as _
from web.sessions import SignInService

log = logging.getLogger(__name__)
Sessions = NamedDependency[async_sessionmaker[AsyncSession]]


@dataclass(frozen=True)
class StaffRow:
    """One staff member as the staff page shows them."""

    staff: care.StaffUser
    failures: int
    locked_until: datetime | None


async def _coordinator(
    request: Request[Any, Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> Viewer:
    """The signed-in staff member, when they may manage staff; 403 otherwise."""
    viewer = await viewer_of(request, sessions)
    if not care.may(viewer.identity.role, care.Permission.MANAGE_STAFF):
        raise PermissionDeniedException(_("Only a coordinator may manage staff."))
    return viewer


def _staff(request: Request[Any, Any, Any]) -> care.StaffService:
    """The staff service over the request's database."""
    return care.StaffService(staff_access_of(request).sessions())


@get("/console/staff", include_in_schema=False)
async def staff_page(request: Request[Any, Any, Any], sessions: Sessions) -> Template:
    """The team's staff, with failed sign-ins, unlock and deactivate."""
    viewer = await _coordinator(request, sessions)
    access = staff_access_of(request)
    signing_in = SignInService(access.sessions(), access.policy)
    identity = viewer.identity
    members = await _staff(request).colleagues(identity.role, identity.team_ids)
    rows = []
    for staff in members:
        state = await signing_in.lock_state(staff.username)
        rows.append(StaffRow(staff, state.failures, state.locked_until))
    return console_page(
        request,
        viewer,
        "console_staff.html",
        section="staff",
        rows=rows,
        notice=request.query_params.get("notice"),
    )


@post("/console/staff/{staff_id:int}/unlock", include_in_schema=False, status_code=303)
async def unlock(
    request: Request[Any, Any, Any], sessions: Sessions, staff_id: FromPath[int]
) -> Redirect:
    """Forget a colleague's failed sign-ins, so they can sign in again at once."""
    viewer = await _coordinator(request, sessions)
    identity = viewer.identity
    staff = await _staff(request).colleague(identity.role, identity.team_ids, staff_id)
    access = staff_access_of(request)
    cleared = await SignInService(access.sessions(), access.policy).unlock(staff.username)
    log.info(
        "sign-in unlocked: %r by %r (%s failed tries forgotten)",
        staff.username,
        viewer.identity.username,
        cleared,
    )
    return back_to("/console/staff?notice=unlocked")


@post("/console/staff/{staff_id:int}/deactivate", include_in_schema=False, status_code=303)
async def deactivate(
    request: Request[Any, Any, Any], sessions: Sessions, staff_id: FromPath[int]
) -> Redirect:
    """A colleague who has left: no more sign-in, their sessions and API tokens end."""
    viewer = await _coordinator(request, sessions)
    identity = viewer.identity
    staff = await _staff(request).colleague(identity.role, identity.team_ids, staff_id)
    if staff.id == identity.staff_id:
        return back_to("/console/staff?notice=not_yourself")
    await _staff(request).deactivate(identity.role, staff.username)
    log.info("staff deactivated: %r by %r", staff.username, viewer.identity.username)
    return back_to("/console/staff?notice=deactivated")


# The staff page's routes; web/console.py serves them.
STAFF_ROUTES: list[ControllerRouterHandler] = [staff_page, unlock, deactivate]
