"""Rooms: the participants of a consultation's call on this instance, and their signalling.

Rooms live in memory on the instance that holds them (a call is pinned to one instance).
Each participant joins with a room token over a signalling socket; messages are JSON:

- participant → server: ``offer``/``answer``/``ice`` (``to`` names the peer in p2p mode;
  in relay mode the offer is the server's to answer), ``stats`` (browser figures), ``leave``;
- server → participant: ``welcome`` (mode, who is here, ICE servers), ``joined``, ``left``,
  ``answer`` and ``streams`` (which participant is in which audio/video pair) in relay mode,
  forwarded ``offer``/``answer``/``ice`` with ``from`` in p2p mode, ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.sdp import candidate_from_sdp
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from video import records
from video.device_test import DeviceTests
from video.errors import RoomFullError, RoomTokenError, SignallingError
from video.models import RoomTokenUse
from video.quality import QualityLog, sample_from_report, sample_from_stats
from video.relay import RelayPeer, answer_participant
from video.tokens import RoomPass, check_room_token, ice_servers, issue_room_token

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
MediaMode = Literal["relay", "p2p"]
P2P_MAX_PARTICIPANTS = 4  # a browser mesh beyond four sends each picture too many times


@dataclass(frozen=True)
class VideoConfig:
    """How this instance runs calls (from the server's settings)."""

    secret: bytes
    mode: MediaMode = "relay"
    token_ttl: timedelta = timedelta(minutes=2)
    ice_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl: timedelta = timedelta(hours=1)
    max_participants: int = 4
    quality_interval_s: float = 5.0
    # ICE servers of the server's own peers in relay mode (usually none: it has a public
    # address); STUN only, the server needs no TURN.
    server_stun_urls: tuple[str, ...] = ()
    # False: decode every frame and encode it again per receiver (aiortc's stock path), only
    # to compare against in the benchmark.
    forward_encoded: bool = True


@dataclass(eq=False)
class Member:
    """One participant in a room: their signalling socket and, in relay mode, their peer."""

    participant: str
    send: Send
    room: Room
    peer: RelayPeer | None = None
    last_frames: int = 0
    last_octets: int = 0
    last_sampled: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class Room:
    """The call of one consultation on this instance."""

    consultation_id: int
    mode: MediaMode
    members: dict[str, Member] = field(default_factory=dict)
    video_codec: str | None = None
    quality: QualityLog = field(default_factory=QualityLog)
    sampler: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class VideoService:
    """Rooms, tokens and the relay of one instance; ``close()`` ends every call."""

    def __init__(
        self,
        config: VideoConfig,
        database: Callable[[], async_sessionmaker[AsyncSession] | None],
        clock: Callable[[], datetime] = care.utcnow,
    ) -> None:
        self.config = config
        self._database = database
        self._clock = clock
        self.rooms: dict[int, Room] = {}
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.device_tests = DeviceTests()
        # Room tokens used on this instance: nonce → when the token expires anyway.
        self._spent: dict[str, datetime] = {}

    # -- tokens -------------------------------------------------------------------------

    def room_token(self, consultation_id: int, participant: str) -> dict[str, Any]:
        """A room token for a participant already checked, with what the page needs to call."""
        now = self._clock()
        token, expires_at = issue_room_token(
            self.config.secret, consultation_id, participant, now=now, ttl=self.config.token_ttl
        )
        return {
            "token": token,
            "expires_at": expires_at.isoformat(),
            "participant": participant,
            "mode": self.config.mode,
            "signal_path": f"/api/video/rooms/{consultation_id}/signal",
            "ice_servers": self.ice_servers_for(participant),
        }

    def ice_servers_for(self, participant: str) -> list[dict[str, object]]:
        """ICE servers for a participant's browser, TURN with time-limited credentials."""
        return ice_servers(
            list(self.config.ice_urls),
            self.config.turn_secret,
            participant,
            now=self._clock(),
            ttl=self.config.turn_ttl,
        )

    def use_secret(self, secret: bytes) -> None:
        """Sign and check room tokens with ``secret`` from now on (set at start-up)."""
        self.config = dataclasses.replace(self.config, secret=secret)

    async def admit(self, consultation_id: int, token: str) -> RoomPass:
        """Who a room token admits to this consultation's room, once; RoomTokenError for a
        token that is malformed, forged, expired, for another room or used before."""
        now = self._clock()
        admitted = check_room_token(self.config.secret, token, consultation_id, now=now)
        for nonce, until in list(self._spent.items()):
            if until <= now:
                del self._spent[nonce]
        if admitted.nonce in self._spent:
            raise RoomTokenError("the room token was used already: ask for a new one")
        self._spent[admitted.nonce] = admitted.expires_at
        database = self._database()
        if database is not None:
            # Written down, so another instance (or this one after a restart) refuses it too.
            try:
                async with database() as session:
                    await session.exec(
                        delete(RoomTokenUse).where(col(RoomTokenUse.expires_at) <= now)
                    )
                    session.add(
                        RoomTokenUse(
                            nonce=admitted.nonce,
                            consultation_id=admitted.consultation_id,
                            participant=admitted.participant,
                            used_at=now,
                            expires_at=admitted.expires_at,
                        )
                    )
                    await session.commit()
            except IntegrityError as err:
                raise RoomTokenError("the room token was used already: ask for a new one") from err
        return admitted

    # -- joining and leaving ------------------------------------------------------------

    async def join(self, admitted: RoomPass, send: Send) -> Member:
        """Put a participant in the room and greet them.

        A participant who joins again (a tablet whose connection dropped, a page reloaded)
        replaces their earlier connection, which is told so and logged: refusing would keep
        a resident out of their own call until the dead connection timed out, and every
        join needs a fresh single-use token issued to that same participant.
        """
        if self._closing:
            raise SignallingError("the service is shutting down")
        room = self.rooms.get(admitted.consultation_id)
        if room is None:
            room = Room(admitted.consultation_id, self.config.mode)
            self.rooms[admitted.consultation_id] = room
        limit = self.config.max_participants
        if room.mode == "p2p":
            limit = min(limit, P2P_MAX_PARTICIPANTS)
        previous = room.members.get(admitted.participant)
        if previous is None and len(room.members) >= limit:
            raise RoomFullError(f"the call already has {limit} participants")
        if previous is not None:
            log.info(
                "participant %s joined consultation %s again: the new connection replaces "
                "the earlier one",
                admitted.participant,
                admitted.consultation_id,
            )
            with contextlib.suppress(Exception):  # the earlier connection may be gone
                await previous.send({"type": "replaced"})
            await self._drop(previous, announce=False)
        member = Member(admitted.participant, send, room)
        room.members[admitted.participant] = member
        await self._record(room, lambda c: records.record_join(c, member.participant, self._now()))
        await send(
            {
                "type": "welcome",
                "you": member.participant,
                "mode": room.mode,
                "participants": [p for p in room.members if p != member.participant],
                "ice_servers": self.ice_servers_for(member.participant),
            }
        )
        await self._broadcast(room, {"type": "joined", "participant": member.participant}, member)
        if room.sampler is None and room.mode == "relay":
            room.sampler = asyncio.create_task(self._sample(room), name="video-quality")
        return member

    async def leave(self, member: Member) -> None:
        """The participant left (or their socket closed)."""
        if member.room.members.get(member.participant) is member:
            await self._drop(member, announce=True)

    async def _drop(self, member: Member, *, announce: bool) -> None:
        """Take a member out of the room; end the room when it is empty."""
        room = member.room
        room.members.pop(member.participant, None)
        if member.peer is not None:
            await self._unplug(member)
        await self._record(room, lambda c: records.record_leave(c, member.participant, self._now()))
        if announce:
            await self._broadcast(room, {"type": "left", "participant": member.participant})
        if not room.members:
            await self._end(room)

    async def _end(self, room: Room) -> None:
        """The last participant left: stop sampling and write the call's summary."""
        self.rooms.pop(room.consultation_id, None)
        if room.sampler is not None:
            room.sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await room.sampler
        summary = {
            "mode": room.mode,
            "video_codec": room.video_codec,
            "participants": room.quality.summary(),
        }
        await self._record(room, lambda c: records.record_end(c, self._now(), summary))

    # -- messages -----------------------------------------------------------------------

    async def on_message(self, member: Member, message: dict[str, Any]) -> None:
        """Act on one signalling message from a participant."""
        kind = message.get("type")
        if kind == "leave":
            await self.leave(member)
        elif kind == "stats":
            member.room.quality.add(member.participant, sample_from_report(message))
        elif member.room.mode == "p2p":
            await self._forward(member, message)
        elif kind == "offer":
            await self._relay_offer(member, str(message.get("sdp", "")))
        elif kind == "ice":
            await self._relay_candidate(member, message)
        else:
            raise SignallingError(f"unexpected message {kind!r}")

    async def _forward(self, member: Member, message: dict[str, Any]) -> None:
        """p2p: pass an offer, answer or ICE candidate to the participant it names."""
        if message.get("type") not in ("offer", "answer", "ice"):
            raise SignallingError(f"unexpected message {message.get('type')!r}")
        target = member.room.members.get(str(message.get("to")))
        if target is None:
            raise SignallingError(f"{message.get('to')!r} is not in the call")
        await target.send({**message, "from": member.participant, "to": target.participant})

    async def _relay_offer(self, member: Member, sdp: str) -> None:
        """relay: answer the participant's offer with the server's own peer."""
        room = member.room
        if member.peer is not None:
            await self._unplug(member)
        configuration = None
        if self.config.server_stun_urls:
            stun = RTCIceServer(urls=list(self.config.server_stun_urls))
            configuration = RTCConfiguration(iceServers=[stun])
        peer, answer = await answer_participant(
            member.participant,
            sdp,
            room_video_codec=room.video_codec,
            configuration=configuration,
            forward_encoded=self.config.forward_encoded,
            on_sources=lambda peer: self._show_everywhere(room, peer),
            on_failed=lambda peer: self._on_failed(member, peer),
        )
        if member.room.members.get(member.participant) is not member:
            await peer.close()  # left while the answer was being made
            return
        member.peer = peer
        room.video_codec = room.video_codec or peer.video_codec
        await member.send({"type": "answer", "sdp": answer})
        # Show everyone already here to the newcomer, and the newcomer to everyone (whose
        # peer may have been answered while this one was).
        for other in room.members.values():
            if other is not member and other.peer is not None and len(other.peer.sources) == 2:
                self._show(other.peer, peer)
        if len(peer.sources) == 2:
            self._show_everywhere(room, peer)
        await self._announce_streams(member)

    async def _relay_candidate(self, member: Member, message: dict[str, Any]) -> None:
        """relay: a trickled ICE candidate of the participant's browser."""
        if member.peer is None:
            raise SignallingError("send the offer before ICE candidates")
        line = str(message.get("candidate") or "")
        if not line:
            return  # end of candidates
        candidate = candidate_from_sdp(line.removeprefix("candidate:"))
        candidate.sdpMid = message.get("sdpMid")
        candidate.sdpMLineIndex = message.get("sdpMLineIndex")
        await member.peer.pc.addIceCandidate(candidate)

    def _show_everywhere(self, room: Room, source_peer: RelayPeer) -> None:
        """A participant's camera and microphone arrived: show them to everyone else."""
        for other in room.members.values():
            shown = other.peer is not None and other.peer is not source_peer
            if shown and other.peer is not None and self._show(source_peer, other.peer):
                self._spawn(self._announce_streams(other))

    @staticmethod
    def _show(source_peer: RelayPeer, viewer: RelayPeer) -> bool:
        """Send ``source_peer``'s media in a free pair of ``viewer``; False if none is free."""
        if viewer.pair_showing(source_peer.participant) is not None:
            return False
        pair = viewer.free_pair()
        if pair is None:
            log.warning(
                "no free pair to show %s to %s", source_peer.participant, viewer.participant
            )
            return False
        pair.showing = source_peer.participant
        pair.audio.attach(source_peer.sources["audio"])
        pair.video.attach(source_peer.sources["video"])
        return True

    async def _unplug(self, member: Member) -> None:
        """Close a member's peer and take their media out of everyone's pairs."""
        peer, member.peer = member.peer, None
        if peer is None:
            return
        for other in member.room.members.values():
            if other.peer is None:
                continue
            pair = other.peer.pair_showing(peer.participant)
            if pair is not None:
                pair.audio.detach()
                pair.video.detach()
                pair.showing = None
                await self._announce_streams(other)
        self._sample_member(member.room, member, peer)
        await peer.close()

    async def _on_failed(self, member: Member, peer: RelayPeer) -> None:
        """The participant's connection failed: close it; they may offer again."""
        if member.peer is peer:
            await self._unplug(member)
            with contextlib.suppress(Exception):
                await member.send({"type": "error", "message": "the connection failed"})

    async def _announce_streams(self, member: Member) -> None:
        """Tell a participant which participant is in which of their pairs."""
        if member.peer is not None:
            await member.send({"type": "streams", "streams": member.peer.streams()})

    # -- quality ------------------------------------------------------------------------

    async def _sample(self, room: Room) -> None:
        """Sample every relayed participant's connection at the configured interval."""
        while True:
            await asyncio.sleep(self.config.quality_interval_s)
            for member in list(room.members.values()):
                if member.peer is not None:
                    try:
                        stats = list((await member.peer.pc.getStats()).values())
                    except Exception:  # a closing connection has no stats; skip it once
                        log.debug("no stats for %s", member.participant, exc_info=True)
                        continue
                    self._sample_member(room, member, member.peer, stats)

    @staticmethod
    def _sample_member(
        room: Room, member: Member, peer: RelayPeer, stats: list[Any] | None = None
    ) -> None:
        """One sample of what a participant sent us since the last one."""
        video = peer.sources.get("video")
        if video is None:
            return
        now = time.monotonic()
        seconds = now - member.last_sampled
        if seconds < 0.5:
            return
        sample = sample_from_stats(
            stats or [],
            frames=video.frames - member.last_frames,
            octets=video.octets - member.last_octets,
            seconds=seconds,
        )
        member.last_frames, member.last_octets, member.last_sampled = (
            video.frames,
            video.octets,
            now,
        )
        room.quality.add(member.participant, sample)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Ready to take calls."""
        self._closing = False

    async def close(self) -> None:
        """End every call: close every peer connection and write every record."""
        self._closing = True
        for room in list(self.rooms.values()):
            for member in list(room.members.values()):
                with contextlib.suppress(Exception):
                    await member.send({"type": "left", "participant": member.participant})
                await self._drop(member, announce=False)
        await self.device_tests.close()
        for task in list(self._tasks):
            task.cancel()

    # -- helpers ------------------------------------------------------------------------

    def _now(self) -> datetime:
        """The service's clock."""
        return self._clock()

    async def _broadcast(
        self, room: Room, message: dict[str, Any], skip: Member | None = None
    ) -> None:
        """Send a message to every member but ``skip``; a closed socket is not an error."""
        for other in list(room.members.values()):
            if other is not skip:
                try:
                    await other.send(message)
                except Exception:  # their socket is closing; their leave will follow
                    log.debug("could not tell %s", other.participant, exc_info=True)

    def _spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` in the background, keeping a reference until it is done."""

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("video background work failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, room: Room, change: Callable[[Any], None]) -> None:
        """Apply ``change`` to the consultation record, if there is a database."""
        sessions = self._database()
        if sessions is None:
            return
        async with room.lock:
            try:
                async with sessions() as session:
                    consultation = await records.consultation_of(session, room.consultation_id)
                    change(consultation)
                    session.add(consultation)
                    await session.commit()
            except care.NotFoundError:
                log.warning("consultation %s has no record to update", room.consultation_id)
