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
    ClientException,
    NotFoundException,
    PermissionDeniedException,
    WebSocketDisconnect,
    WebSocketException,
)
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import video
from web.auth import PUBLIC_OPT, identify, visible_resident
from web.tablet import tablet_resident

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


async def _consultation(session: AsyncSession, consultation_id: int) -> video.Consultation:
    """The consultation, or 404."""
    try:
        return await video.consultation_of(session, consultation_id)
    except care.NotFoundError as err:
        raise NotFoundException(str(err)) from err


class VideoController(Controller):
    """Staff side: start a call, invite, get a room token, test the camera."""

    path = "/api/video"

    @post("/consultations", status_code=201)
    async def start(
        self, request: Request[Any, Any, Any], sessions: Sessions, data: JSONBody[NewConsultation]
    ) -> dict[str, Any]:
        """An on-demand consultation with a resident of the caller's teams."""
        identity = await identify(request, sessions)
        async with sessions() as session:
            await visible_resident(session, identity, data.resident_id, action="video.start")
            consultation = await video.start_consultation(
                session,
                resident_id=data.resident_id,
                staff_id=identity.staff_id,
                staff_team_ids=identity.team_ids,
            )
            await session.commit()
            return {"id": consultation.id, "resident_id": data.resident_id}

    @post("/consultations/book", status_code=201)
    async def book(
        self, request: Request[Any, Any, Any], sessions: Sessions, data: JSONBody[Booking]
    ) -> dict[str, Any]:
        """Book a call with a resident of the caller's teams; the tablet reminds the resident
        ten minutes before and rings at the time."""
        identity = await identify(request, sessions)
        async with sessions() as session, session.begin():
            await visible_resident(session, identity, data.resident_id, action="video.book")
            try:
                booked = await video.book_consultation(
                    session,
                    resident_id=data.resident_id,
                    staff_id=identity.staff_id,
                    staff_team_ids=identity.team_ids,
                    scheduled_at=data.scheduled_at,
                    now=care.utcnow(),
                )
            except video.BookingError as err:
                raise ClientException(str(err)) from err
            return _consultation_json(booked)

    @get("/waiting-room")
    async def waiting(self, request: Request[Any, Any, Any], sessions: Sessions) -> dict[str, Any]:
        """Calls of the caller's teams' residents that want staff now, oldest first."""
        identity = await identify(request, sessions)
        async with sessions() as session:
            residents = await care.residents_of_teams(session, identity.team_ids)
            found = await video.waiting_room(session, residents, care.utcnow())
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
        async with sessions() as session:
            consultation = await _consultation(session, consultation_id)
            try:
                who = await video.staff_participant(
                    session, consultation, identity.staff_id, identity.team_ids
                )
            except video.NotParticipantError as err:
                raise PermissionDeniedException(str(err)) from err
            await care.log_access(
                session,
                staff_id=identity.staff_id,
                organisation_id=identity.organisation_id,
                resident_id=consultation.resident_id,
                action="video.join",
                context=f"consultation {consultation_id}",
            )
            await session.commit()
        return video_service.room_token(consultation_id, who)

    @post("/consultations/{consultation_id:int}/invite", status_code=200)
    async def invite(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        consultation_id: FromPath[int],
        data: JSONBody[Invitation],
    ) -> dict[str, Any]:
        """Let another staff member join; only staff of the resident's teams may invite."""
        identity = await identify(request, sessions)
        async with sessions() as session:
            consultation = await _consultation(session, consultation_id)
            await visible_resident(
                session, identity, consultation.resident_id, action="video.invite"
            )
            if await session.get(care.StaffUser, data.staff_id) is None:
                raise NotFoundException(f"no staff member {data.staff_id}")
            video.record_invitation(
                consultation, data.staff_id, invited_by=identity.staff_id, now=care.utcnow()
            )
            session.add(consultation)
            await session.commit()
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
        async with sessions() as session:
            consultation = await _consultation(session, consultation_id)
        try:
            who = video.resident_participant(consultation, resident_id)
        except video.NotParticipantError as err:
            raise PermissionDeniedException(str(err)) from err
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
    """Answer the page's offer with an echo peer."""
    try:
        test_id, answer = await service.device_tests.start(who, sdp)
    except video.SignallingError as err:
        raise ClientException(str(err)) from err
    return {"test_id": test_id, "type": "answer", "sdp": answer}


def _device_report(service: video.VideoService, test_id: str, who: str) -> dict[str, Any]:
    """The report of a running device test of ``who``."""
    try:
        return service.device_tests.report(test_id, who)
    except video.SignallingError as err:
        raise NotFoundException(str(err)) from err


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
