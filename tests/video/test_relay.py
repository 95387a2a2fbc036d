"""Calls through the relay with real in-process aiortc peers, and the room tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

import care
from video import RoomTokenError, VideoConfig, VideoService
from video.tokens import check_room_token, issue_room_token
from video.virtual_participant import VirtualParticipant

SECRET = b"s" * 32


@dataclass
class Line:
    """A participant's signalling, as a socket would carry it."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


async def eventually(check: Callable[[], bool], within: float = 15.0) -> None:
    """Wait until ``check()`` holds (media takes a moment to flow)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def service() -> AsyncIterator[VideoService]:
    """A relay without a database (records are tested through the app)."""
    video = VideoService(VideoConfig(secret=SECRET, quality_interval_s=0.5), lambda: None)
    await video.start()
    yield video
    await video.close()


async def join(
    service: VideoService, who: str, participant: VirtualParticipant
) -> tuple[Line, Any]:
    """Join consultation 1 as ``who`` and negotiate the participant's peer with the relay."""
    token = service.room_token(1, who)["token"]
    line = Line()
    member = await service.join(await service.admit(1, token), line.send)
    await service.on_message(member, {"type": "offer", "sdp": await participant.offer()})
    await participant.accept(line.of_type("answer")[-1]["sdp"])
    return line, member


def pictures(participant: VirtualParticipant) -> int:
    """Decoded video frames the participant received."""
    return sum(r.frames for r in participant.video_received() if r.first_picture_at)


async def test_two_participants_see_each_other_and_a_third_joins(service: VideoService) -> None:
    alice, bob, carol = (VirtualParticipant(pairs=2) for _ in range(3))
    try:
        line_a, _ = await join(service, "resident:1", alice)
        _, member_b = await join(service, "staff:2", bob)
        await eventually(lambda: pictures(alice) > 5 and pictures(bob) > 5)
        assert {r.size for r in alice.video_received() if r.first_picture_at} == {(640, 480)}
        assert line_a.of_type("joined")[0]["participant"] == "staff:2"
        assert line_a.of_type("streams")[-1]["streams"][0]["participant"] == "staff:2"
        room = service.rooms[1]
        assert room.video_codec == "video/VP8"
        assert member_b.peer is not None
        assert member_b.peer.transcoded_legs == 0  # forwarded encoded

        line_c, _ = await join(service, "staff:3", carol)
        await eventually(lambda: len([r for r in carol.video_received() if r.frames > 5]) == 2)
        await eventually(lambda: len([r for r in alice.video_received() if r.frames > 5]) == 2)
        shown = {s["participant"] for s in line_c.of_type("streams")[-1]["streams"]}
        assert shown == {"resident:1", "staff:2"}

        await service.on_message(member_b, {"type": "leave"})
        assert line_a.of_type("left")[0]["participant"] == "staff:2"
        assert set(service.rooms[1].members) == {"resident:1", "staff:3"}
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_a_keyframe_request_of_a_receiver_reaches_the_sender(service: VideoService) -> None:
    alice = VirtualParticipant(encoded=True)
    bob = VirtualParticipant(encoded=True)
    try:
        await join(service, "resident:1", alice)
        await join(service, "staff:2", bob)
        await eventually(lambda: any(r.first_picture_at for r in bob.video_received()))
        assert alice.camera is not None
        before = alice.camera.keyframe_requests  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)  # past the relay's keyframe request interval
        mid = bob.video_received()[0].mid
        assert mid is not None
        from video import passthrough

        assert await passthrough.request_keyframe(bob.receiver_of(mid))
        await eventually(lambda: alice.camera.keyframe_requests > before)  # type: ignore[union-attr]
    finally:
        await alice.close()
        await bob.close()


async def test_quality_is_sampled_per_participant(service: VideoService) -> None:
    alice, bob = VirtualParticipant(encoded=True), VirtualParticipant(encoded=True)
    try:
        await join(service, "resident:1", alice)
        await join(service, "staff:2", bob)
        await eventually(lambda: len(service.rooms[1].quality.samples.get("resident:1", [])) >= 2)
        summary = service.rooms[1].quality.summary()["resident:1"]
        # Frames arrive, at no more than the 30 a second sent; how many arrive on a loaded
        # machine is for `vaki bench video` to measure, not for a test to assert.
        assert 0 < summary["fps_mean"] <= 40
        assert summary["kbps_mean"] > 50
    finally:
        await alice.close()
        await bob.close()


async def test_p2p_relays_signalling_only_with_turn_credentials() -> None:
    config = VideoConfig(
        secret=SECRET,
        mode="p2p",
        ice_urls=("stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp"),
        turn_secret="coturn-static-auth-secret",
    )
    service = VideoService(config, lambda: None)
    line_a, line_b = Line(), Line()
    token_a = service.room_token(1, "resident:1")["token"]
    token_b = service.room_token(1, "staff:2")["token"]
    a = await service.join(await service.admit(1, token_a), line_a.send)
    b = await service.join(await service.admit(1, token_b), line_b.send)
    await service.on_message(a, {"type": "offer", "to": "staff:2", "sdp": "v=0 offer"})
    assert line_b.of_type("offer") == [
        {"type": "offer", "to": "staff:2", "from": "resident:1", "sdp": "v=0 offer"}
    ]
    await service.on_message(b, {"type": "answer", "to": "resident:1", "sdp": "v=0 answer"})
    assert line_a.of_type("answer")[0]["from"] == "staff:2"
    servers = line_a.of_type("welcome")[0]["ice_servers"]
    assert servers[0] == {"urls": ["stun:stun.example.org:3478"]}
    turn = servers[1]
    expiry, user = turn["username"].split(":", 1)
    assert user == "resident:1"
    assert int(expiry) > time.time()
    import base64
    import hashlib
    import hmac

    expected = hmac.new(b"coturn-static-auth-secret", turn["username"].encode(), hashlib.sha1)
    assert turn["credential"] == base64.b64encode(expected.digest()).decode()
    assert not service.rooms[1].members["resident:1"].peer  # no media on the server
    await service.close()


def test_room_tokens_refuse_expired_foreign_and_forged() -> None:
    now = care.utcnow()
    token, _ = issue_room_token(SECRET, 7, "staff:2", now=now, ttl=timedelta(minutes=2))
    assert check_room_token(SECRET, token, 7, now=now).participant == "staff:2"
    with pytest.raises(RoomTokenError, match="expired"):
        check_room_token(SECRET, token, 7, now=now + timedelta(minutes=3))
    with pytest.raises(RoomTokenError, match="another consultation"):
        check_room_token(SECRET, token, 8, now=now)
    with pytest.raises(RoomTokenError, match="not signed"):
        check_room_token(b"x" * 32, token, 7, now=now)
    forged = token.replace("staff:2", "staff:9")
    with pytest.raises(RoomTokenError, match="not signed"):
        check_room_token(SECRET, forged, 7, now=now)
