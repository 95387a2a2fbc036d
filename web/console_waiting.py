"""The console's waiting room: booked video calls that are due, and calls a resident is in,
for the caller's teams; and booking a call with a resident at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import video
from web import i18n
from web.console_view import back_to, console_page, refuse_technician, viewer_of

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


async def _page(
    request: Request[Any, Any, Any],
    sessions: async_sessionmaker[AsyncSession],
    problem: str = "",
    status_code: int = 200,
) -> Template:
    """The waiting room with the booking form (and what was wrong with the last booking)."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, "waiting room")
    now = care.utcnow()
    calls = await video.ConsultationService(sessions).waiting_room(viewer.identity.actor)
    residents = await care.ResidentService(sessions).residents_of(viewer.identity.actor)
    names = {r.id: r.full_name for r in residents}
    rows = [
        {
            "id": call.id,
            "resident": names.get(call.resident_id, ""),
            "at": call.scheduled_at,
            "in_call": any(
                str(e.get("who", "")).startswith("resident:") and not e.get("left_at")
                for e in call.participants
            ),
            "due": call.scheduled_at is None or call.scheduled_at <= now,
        }
        for call in calls
    ]
    return console_page(
        request,
        viewer,
        "console_waiting.html",
        section="waiting",
        calls=rows,
        residents=residents,
        problem=problem,
        status_code=status_code,
    )


@get("/console/waiting-room", include_in_schema=False)
async def waiting_room(request: Request[Any, Any, Any], sessions: Sessions) -> Template:
    """Who is waiting for a video call now, and the booking form."""
    return await _page(request, sessions)


@post("/console/waiting-room/book", include_in_schema=False, status_code=303)
async def book(
    request: Request[Any, Any, Any], sessions: Sessions, data: Form
) -> Template | Redirect:
    """Book a call at a local date and time (the staff member's time zone)."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, "waiting room")
    try:
        resident_id = int(data.get("resident_id", ""))
        local = datetime.fromisoformat(f"{data.get('date', '')}T{data.get('time', '')}")
    except ValueError:
        problem = i18n.translate("Choose a resident, a date and a time.")
        return await _page(request, sessions, problem, status_code=400)
    at = local.replace(tzinfo=ZoneInfo(viewer.time_zone))
    try:
        await video.ConsultationService(sessions).book(viewer.identity.actor, resident_id, at)
    except video.BookingError:
        # The form is shown again with the reason in the staff member's words.
        problem = i18n.translate("That time has passed or is too far ahead.")
        return await _page(request, sessions, problem, status_code=400)
    return back_to("/console/waiting-room")


WAITING_ROUTES: list[ControllerRouterHandler] = [waiting_room, book]
