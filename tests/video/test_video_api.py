"""Video consultations through the running app: room tokens for participants only, a call
over the real signalling socket between a tablet and a nurse, and the record it leaves."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
import video
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings
from tests.conftest import free_port
from tests.web.conftest import World, make_world
from video.virtual_participant import VirtualParticipant


@dataclass
class Served:
    """The app on a real port, its database and the test world."""

    url: str
    sessions: async_sessionmaker[AsyncSession]
    world: World
    consultation_id: int
    tokens: dict[str, str]  # staff username → API token
    tablet: str  # the resident's tablet key


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """``create_app`` served by uvicorn in this event loop, so aiortc peers can call it."""
    settings.video_secret = "a-test-video-secret-of-32-bytes!"
    settings.video_quality_interval_s = 0.5
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    engine = create_engine(settings.effective_database_url)
    try:
        while not server.started:
            assert not task.done(), "the app did not start"
            await asyncio.sleep(0.05)
        sessions = session_factory(engine)
        world = await make_world(sessions)
        async with sessions() as session:
            consultation = video.Consultation(
                resident_id=world.resident, kind=video.ConsultationKind.SCHEDULED
            )
            session.add(consultation)
            tokens = {
                name: await care.create_api_token(session, name)
                for name in ("gudrun", "helga", "olafur")
            }
            tablet = await devices.provision_device(
                session, kind=devices.DeviceKind.TABLET, resident_id=world.resident
            )
            await session.commit()
            assert consultation.id is not None
        key = devices.tablet_key(tablet.device.id, tablet.secret)
        yield Served(f"127.0.0.1:{port}", sessions, world, consultation.id, tokens, key)
    finally:
        server.should_exit = True
        await task
        await engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_only_participants_get_room_tokens(served: Served) -> None:
    cid = served.consultation_id
    async with httpx.AsyncClient(base_url=f"http://{served.url}") as client:
        helga = await client.post(
            f"/api/video/consultations/{cid}/token", headers=bearer(served.tokens["helga"])
        )
        assert helga.status_code == 200, helga.text
        assert helga.json()["participant"] == f"staff:{served.world.helga}"
        assert helga.json()["mode"] == "relay"

        tablet = await client.post(f"/api/tablet/video/{cid}/token", headers=bearer(served.tablet))
        assert tablet.status_code == 200, tablet.text
        assert tablet.json()["participant"] == f"resident:{served.world.resident}"

        # Ólafur is on another team: not a participant until invited.
        olafur = bearer(served.tokens["olafur"])
        refused = await client.post(f"/api/video/consultations/{cid}/token", headers=olafur)
        assert refused.status_code == 403
        invite = await client.post(
            f"/api/video/consultations/{cid}/invite",
            headers=olafur,
            json={"staff_id": served.world.olafur},
        )
        assert invite.status_code == 404  # he cannot see the resident, so cannot invite
        invite = await client.post(
            f"/api/video/consultations/{cid}/invite",
            headers=bearer(served.tokens["gudrun"]),
            json={"staff_id": served.world.olafur},
        )
        assert invite.status_code == 200, invite.text
        admitted = await client.post(f"/api/video/consultations/{cid}/token", headers=olafur)
        assert admitted.status_code == 200, admitted.text

        assert (await client.post(f"/api/video/consultations/{cid}/token")).status_code == 401
        missing = await client.post(
            "/api/video/consultations/999999/token", headers=bearer(served.tokens["helga"])
        )
        assert missing.status_code == 404

    signal = f"ws://{served.url}/api/video/rooms"
    token = helga.json()["token"]
    for url in (f"{signal}/{cid + 1}/signal?token={token}", f"{signal}/{cid}/signal?token=x.y"):
        with pytest.raises(websockets.InvalidStatus) as rejected:
            async with websockets.connect(url):
                pass
        assert rejected.value.response.status_code == 403


async def receive(socket: Any, kind: str) -> dict[str, Any]:
    """The next message of a kind (others are skipped)."""
    async with asyncio.timeout(15):
        while True:
            message: dict[str, Any] = json.loads(await socket.recv())
            if message["type"] == kind:
                return message


async def test_a_call_over_the_signalling_socket_is_recorded(served: Served) -> None:
    cid = served.consultation_id
    async with httpx.AsyncClient(base_url=f"http://{served.url}") as client:
        nurse = (
            await client.post(
                f"/api/video/consultations/{cid}/token", headers=bearer(served.tokens["helga"])
            )
        ).json()
        resident = (
            await client.post(f"/api/tablet/video/{cid}/token", headers=bearer(served.tablet))
        ).json()
    tablet, console = VirtualParticipant(), VirtualParticipant()
    url = f"ws://{served.url}{nurse['signal_path']}?token="
    try:
        async with (
            websockets.connect(url + resident["token"]) as tablet_line,
            websockets.connect(url + nurse["token"]) as console_line,
        ):
            for peer, line in ((tablet, tablet_line), (console, console_line)):
                await receive(line, "welcome")
                await line.send(json.dumps({"type": "offer", "sdp": await peer.offer()}))
                await peer.accept((await receive(line, "answer"))["sdp"])
            deadline = time.monotonic() + 20
            while not all(
                any(r.first_picture_at for r in peer.video_received()) for peer in (tablet, console)
            ):
                assert time.monotonic() < deadline, "no picture arrived"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.2)  # a couple of quality samples
            await tablet_line.send(json.dumps({"type": "leave"}))
            assert (await receive(console_line, "left"))["participant"].startswith("resident:")
    finally:
        await tablet.close()
        await console.close()

    deadline = time.monotonic() + 10
    while True:
        async with served.sessions() as session:
            record = await session.get(video.Consultation, cid)
            assert record is not None
        if record.status == video.ConsultationStatus.ENDED or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert record.status == video.ConsultationStatus.ENDED
    assert record.started_at is not None
    assert record.ended_at is not None
    assert {e["who"] for e in record.participants} == {
        f"resident:{served.world.resident}",
        f"staff:{served.world.helga}",
    }
    assert record.quality["video_codec"] == "video/VP8"
    assert record.quality["duration_s"] > 0
    sampled = record.quality["participants"][f"resident:{served.world.resident}"]
    assert sampled["samples"] >= 1
    assert sampled["fps_mean"] > 0
