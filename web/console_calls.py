"""The console's video call: staff start an on-demand call with a resident and hold it on a
page that shows the others, the connection's quality per participant and a hang-up button.

The page itself only renders; ``static/call.js`` asks ``/api/video`` for a room token with
the session (and its CSRF token) and joins the room over the signalling socket.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import video
from web import i18n
from web.console_view import PAGE_HEADERS, console_page, refuse_technician, viewer_of

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


@post("/console/residents/{resident_id:int}/call", include_in_schema=False)
async def start_call(
    request: Request[Any, Any, Any], resident_id: FromPath[int], sessions: Sessions
) -> Redirect:
    """Start an on-demand video call with a resident and open its page."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"resident {resident_id}")
    consultation = await video.ConsultationService(sessions).start(
        viewer.identity.actor, resident_id
    )
    return Redirect(
        f"/console/calls/{consultation.id}", status_code=HTTP_303_SEE_OTHER, headers=PAGE_HEADERS
    )


@get("/console/calls/{consultation_id:int}", include_in_schema=False)
async def call_page(
    request: Request[Any, Any, Any], consultation_id: FromPath[int], sessions: Sessions
) -> Template:
    """The call with a resident, for staff who take part in it."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"consultation {consultation_id}")
    call = await video.ConsultationService(sessions).call_page(
        viewer.identity.actor, consultation_id
    )
    consultation, resident, names = call.consultation, call.resident, call.names
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
