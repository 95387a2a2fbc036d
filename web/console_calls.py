"""The console's video call: staff start an on-demand call with a resident and hold it on a
page that shows the others, the connection's quality per participant and a hang-up button.

The page itself only renders; ``static/call.js`` asks ``/api/video`` for a room token with
the session (and its CSRF token) and joins the room over the signalling socket.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import video
from web import i18n
from web.auth import visible_resident
from web.console_view import PAGE_HEADERS, console_page, refuse_technician, viewer_of
from web.tablet_pairing import tell_tablet

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]


def call_strings() -> dict[str, str]:
    """The words the call script shows on the console, in the page's language."""
    return {
        "starting": i18n.translate("Starting the camera and microphone…"),
        "waiting": i18n.translate("Waiting for %(name)s to answer…"),
        "in_call": i18n.translate("In the call with %(names)s."),
        "left": i18n.translate("%(name)s left the call."),
        "ended": i18n.translate("The call has ended."),
        "failed": i18n.translate("The call could not be connected: %(reason)s"),
        "no_camera": i18n.translate("The camera or microphone could not be used."),
        "lost": i18n.translate("The connection to the call was lost."),
        "someone": i18n.translate("Care staff"),
        "quality_good": i18n.translate("Good"),
        "quality_weak": i18n.translate("Weak"),
    }


async def _names(session: AsyncSession, consultation: video.Consultation) -> dict[str, str]:
    """What to call each possible participant: the resident, their teams' staff, invitees."""
    names: dict[str, str] = {}
    resident = await session.get(care.Resident, consultation.resident_id)
    if resident is not None:
        names[video.participant_id("resident", consultation.resident_id)] = resident.full_name
    teams = await care.resident_team_ids(session, consultation.resident_id)
    invited = {
        int(str(entry["who"]).split(":", 1)[1])
        for entry in consultation.participants
        if str(entry.get("who", "")).startswith("staff:")
    }
    members = select(care.TeamMembership.staff_id).where(
        col(care.TeamMembership.team_id).in_(sorted(teams))
    )
    staff = await session.exec(
        select(care.StaffUser).where(
            col(care.StaffUser.id).in_(members) | col(care.StaffUser.id).in_(sorted(invited))
        )
    )
    for person in staff.all():
        if person.id is not None:
            names[video.participant_id("staff", person.id)] = person.full_name or person.username
    return names


@post("/console/residents/{resident_id:int}/call", include_in_schema=False)
async def start_call(
    request: Request[Any, Any, Any], resident_id: FromPath[int], sessions: Sessions
) -> Redirect:
    """Start an on-demand video call with a resident and open its page."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"resident {resident_id}")
    async with sessions() as session:
        await visible_resident(session, viewer.identity, resident_id, action="video.start")
        consultation = await video.start_consultation(
            session,
            resident_id=resident_id,
            staff_id=viewer.identity.staff_id,
            staff_team_ids=viewer.identity.team_ids,
        )
        await session.commit()
        consultation_id = consultation.id
    tell_tablet(request.app, resident_id)
    return Redirect(
        f"/console/calls/{consultation_id}", status_code=HTTP_303_SEE_OTHER, headers=PAGE_HEADERS
    )


@get("/console/calls/{consultation_id:int}", include_in_schema=False)
async def call_page(
    request: Request[Any, Any, Any], consultation_id: FromPath[int], sessions: Sessions
) -> Template:
    """The call with a resident, for staff who take part in it."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"consultation {consultation_id}")
    async with sessions() as session:
        try:
            consultation = await video.consultation_of(session, consultation_id)
            await video.staff_participant(
                session, consultation, viewer.identity.staff_id, viewer.identity.team_ids
            )
        except (care.NotFoundError, video.NotParticipantError) as err:
            raise NotFoundException(f"no consultation {consultation_id}") from err
        resident = await session.get(care.Resident, consultation.resident_id)
        names = await _names(session, consultation)
    assert resident is not None
    return console_page(
        request,
        viewer,
        "console_call.html",
        section="residents",
        consultation=consultation,
        resident=resident,
        ended=consultation.status == video.ConsultationStatus.ENDED,
        call={
            "consultation": consultation_id,
            "token_url": f"/api/video/consultations/{consultation_id}/token",
            "resident": video.participant_id("resident", consultation.resident_id),
            "names": names,
            "strings": call_strings(),
        },
    )


CALL_ROUTES: list[ControllerRouterHandler] = [start_call, call_page]
