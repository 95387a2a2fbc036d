"""Video consultations over HTTP and WebSocket: room tokens, invitations, signalling, the
device test.

Staff ask for a room token as themselves (session or bearer token); the resident's tablet
asks with its device key. Both get one only as participants: the resident of the
consultation, staff of the resident's care teams, or a staff member invited to it. The
signalling socket admits by room token alone (``?token=``: browsers cannot set headers on a
WebSocket), so it is open to the app's staff guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime
from typing import Any

from litestar import Controller, Request, WebSocket, get, post, websocket
from litestar.di import NamedDependency
from litestar.exceptions import (
    WebSocketDisconnect,
    WebSocketException,
)
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import video
from web.auth import PUBLIC_OPT, identify
from web.tablet import tablet_resident
from web.tablet_pairing import tell_tablet

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
Video = NamedDependency[video.VideoService]
_MAX_MESSAGE = 64 * 1024  # an SDP with many candidates is a few kB


class NewConsultation(BaseModel):
    """An on-demand call with a resident."""

    resident_id: int


class Booking(BaseModel):
    """A video call booked with a resident at a time."""

    resident_id: int
    scheduled_at: datetime = Field(examples=["2026-11-24T10:30:00+00:00"])


class Invitation(BaseModel):
    """A staff member (a specialist, say) to add to a consultation."""

    staff_id: int


class DeviceTestOffer(BaseModel):
    """The page's offer for the echo test."""

    sdp: str = Field(max_length=_MAX_MESSAGE)


def _consultation_json(consultation: video.Consultation) -> dict[str, Any]:
    """A consultation as the API shows it."""
    return {
        "id": consultation.id,
        "resident_id": consultation.resident_id,
        "kind": consultation.kind,
        "status": consultation.status,
        "scheduled_at": consultation.scheduled_at.isoformat()
        if consultation.scheduled_at
        else None,
        "participants": [entry.get("who") for entry in consultation.participants],
    }


class VideoController(Controller):
    """Staff side: start a call, invite, get a room token, test the camera."""

    path = "/api/video"

    @post("/consultations", status_code=201)
    async def start(
        self, request: Request[Any, Any, Any], sessions: Sessions, data: JSONBody[NewConsultation]
    ) -> dict[str, Any]:
        """An on-demand consultation with a resident of the caller's teams."""
        identity = await identify(request, sessions)
        consultation = await video.ConsultationService(sessions).start(
            identity.actor, data.resident_id
        )
        tell_tablet(request.app, data.resident_id)
        return {"id": consultation.id, "resident_id": data.resident_id}

    @post("/consultations/book", status_code=201)
    async def book(
        self, request: Request[Any, Any, Any], sessions: Sessions, data: JSONBody[Booking]
    ) -> dict[str, Any]:
        """Book a call with a resident of the caller's teams; the tablet reminds the resident
        ten minutes before and rings at the time."""
        identity = await identify(request, sessions)
        booked = await video.ConsultationService(sessions).book(
            identity.actor, data.resident_id, data.scheduled_at
        )
        tell_tablet(request.app, data.resident_id)
        return _consultation_json(booked)

    @get("/waiting-room")
    async def waiting(self, request: Request[Any, Any, Any], sessions: Sessions) -> dict[str, Any]:
        """Calls of the caller's teams' residents that want staff now, oldest first."""
        identity = await identify(request, sessions)
        found = await video.ConsultationService(sessions).waiting_room(identity.actor)
        return {"calls": [_consultation_json(c) for c in found]}

    @post("/consultations/{consultation_id:int}/token", status_code=200)
    async def staff_token(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        video_service: Video,
        consultation_id: FromPath[int],
    ) -> dict[str, Any]:
        """A room token for the calling staff member, if they take part."""
        identity = await identify(request, sessions)
        who = await video.ConsultationService(sessions).join_as_staff(
            identity.actor, consultation_id
        )
        return video_service.room_token(consultation_id, who)

    @post("/consultations/{consultation_id:int}/invite", status_code=200)
    async def invite(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        consultation_id: FromPath[int],
        data: JSONBody[Invitation],
    ) -> dict[str, Any]:
        """Let another staff member join; only staff of the resident's teams may invite, and
        only a role that may invite specialists asks in one of another organisation."""
        identity = await identify(request, sessions)
        consultation = await video.ConsultationService(sessions).invite(
            identity.actor, consultation_id, data.staff_id
        )
        return {"id": consultation_id, "participants": consultation.participants}

    @post("/device-test", status_code=200)
    async def staff_device_test(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        video_service: Video,
        data: JSONBody[DeviceTestOffer],
    ) -> dict[str, str]:
        """Call the echo peer: the answer, and the test id to ask for the report."""
        identity = await identify(request, sessions)
        who = video.participant_id("staff", identity.staff_id)
        return await _start_device_test(video_service, who, data.sdp)

    @get("/device-test/{test_id:str}")
    async def staff_device_report(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        video_service: Video,
        test_id: FromPath[str],
    ) -> dict[str, Any]:
        """What works: camera, microphone, connection, in plain words."""
        identity = await identify(request, sessions)
        who = video.participant_id("staff", identity.staff_id)
        return _device_report(video_service, test_id, who)


class TabletVideoController(Controller):
    """The resident's tablet: a room token for its own consultations, and the device test."""

    path = "/api/tablet/video"

    @post("/{consultation_id:int}/token", status_code=200)
    async def resident_token(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        video_service: Video,
        consultation_id: FromPath[int],
    ) -> dict[str, Any]:
        """A room token for the resident whose tablet this is."""
        resident_id = await tablet_resident(request, sessions)
        who = await video.ConsultationService(sessions).join_as_resident(
            resident_id, consultation_id
        )
        return video_service.room_token(consultation_id, who)

    @post("/device-test", status_code=200)
    async def resident_device_test(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        video_service: Video,
        data: JSONBody[DeviceTestOffer],
    ) -> dict[str, str]:
        """Call the echo peer from the tablet."""
        resident_id = await tablet_resident(request, sessions)
        who = video.participant_id("resident", resident_id)
        return await _start_device_test(video_service, who, data.sdp)

    @get("/device-test/{test_id:str}")
    async def resident_device_report(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        video_service: Video,
        test_id: FromPath[str],
    ) -> dict[str, Any]:
        """What works on the tablet, in plain words."""
        resident_id = await tablet_resident(request, sessions)
        return _device_report(video_service, test_id, video.participant_id("resident", resident_id))


async def _start_device_test(service: video.VideoService, who: str, sdp: str) -> dict[str, str]:
    """Answer the page's offer with an echo peer (422 for an offer it cannot answer)."""
    test_id, answer = await service.device_tests.start(who, sdp)
    return {"test_id": test_id, "type": "answer", "sdp": answer}


def _device_report(service: video.VideoService, test_id: str, who: str) -> dict[str, Any]:
    """The report of a running device test of ``who`` (404 once it has ended)."""
    return service.device_tests.report(test_id, who)


@websocket("/api/video/rooms/{consultation_id:int}/signal", opt={PUBLIC_OPT: True})
async def signal(
    socket: WebSocket[Any, Any, Any], video_service: Video, consultation_id: FromPath[int]
) -> None:
    """The room's signalling: JSON messages both ways until the participant leaves."""
    try:
        admitted = await video_service.admit(consultation_id, socket.query_params.get("token", ""))
    except video.RoomTokenError as err:
        # Refused before the handshake completes, as the staff guard refuses (4401).
        raise WebSocketException(detail=str(err), code=4401) from err
    await socket.accept()
    lock = asyncio.Lock()

    async def send(message: dict[str, Any]) -> None:
        async with lock:
            await socket.send_json(message)

    try:
        member = await video_service.join(admitted, send)
    except (video.RoomFullError, video.SignallingError) as err:
        await socket.close(code=4409, reason=str(err))
        return
    try:
        while True:
            raw = await socket.receive_text()
            try:
                message = json.loads(raw) if len(raw) <= _MAX_MESSAGE else None
                if not isinstance(message, dict):
                    raise video.SignallingError("a message is one JSON object")
                await video_service.on_message(member, message)
            except (ValueError, video.SignallingError) as err:
                await send({"type": "error", "message": str(err)})
            if member.room.members.get(member.participant) is not member:
                break  # left, or joined again from another socket
    except WebSocketDisconnect:
        pass
    finally:
        await video_service.leave(member)
        with contextlib.suppress(Exception):
            await socket.close()


# The video routes; web/__init__.py serves them.
VIDEO_ROUTES: list[ControllerRouterHandler] = [VideoController, TabletVideoController, signal]
