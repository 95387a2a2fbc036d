"""Room tokens as an attacker would reuse them: a replay within the token's life is
refused, on this instance and on another one sharing the database; a second join by the
same participant replaces the first, said in the log and to the replaced connection."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets

import devices
from server.app import create_app
from server.settings import Settings
from tests.security.conftest import Served, serve, stop
from tests.web.conftest import sign_in


async def _call_with_tablet(served: Served) -> tuple[int, dict[str, str]]:
    """A call a nurse opened with the test resident, and the resident's tablet key."""
    async with served.sessions() as session:
        tablet = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=served.world.resident
        )
        await session.commit()
    key = {"Authorization": f"Bearer {devices.tablet_key(tablet.device.id, tablet.secret)}"}
    async with served.client() as nurse:
        await sign_in(nurse, "helga")
        page = await nurse.get("/console/")
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        started = await nurse.post(
            "/api/video/consultations",
            json={"resident_id": served.world.resident},
            headers={"X-CSRF-Token": csrf},
        )
        assert started.status_code == 201, started.text
    return started.json()["id"], key


async def _room_token(served: Served, consultation: int, key: dict[str, str]) -> dict[str, Any]:
    """A fresh room token for the tablet."""
    async with served.client() as tablet:
        room = await tablet.post(f"/api/tablet/video/{consultation}/token", headers=key)
    assert room.status_code == 200, room.text
    answer: dict[str, Any] = room.json()
    return answer


def _signal_url(url: str, room: dict[str, Any]) -> str:
    return url.replace("http://", "ws://") + f"{room['signal_path']}?token={room['token']}"


async def test_a_room_token_opens_the_room_once(served: Served, settings: Settings) -> None:
    consultation, key = await _call_with_tablet(served)
    room = await _room_token(served, consultation, key)
    async with websockets.connect(_signal_url(served.url, room)) as first:
        assert json.loads(await first.recv())["type"] == "welcome"
        with pytest.raises(websockets.InvalidStatus) as replayed:
            async with websockets.connect(_signal_url(served.url, room)):
                pass
        assert replayed.value.response.status_code == 403
        # Another instance on the same database derives the same key from the stored
        # instance secret, and knows the token was used.
        other = create_app(
            settings.model_copy(update={"mqtt_client_id": f"{settings.mqtt_client_id}-b"})
        )
        server, task, url = await serve(other)
        try:
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(_signal_url(url, room)):
                    pass
            fresh = await _room_token(served, consultation, key)
            async with websockets.connect(_signal_url(url, fresh)) as elsewhere:
                assert json.loads(await elsewhere.recv())["type"] == "welcome"
        finally:
            await stop(server, task)


async def test_a_second_join_replaces_the_first_and_says_so(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    consultation, key = await _call_with_tablet(served)
    room = await _room_token(served, consultation, key)
    async with websockets.connect(_signal_url(served.url, room)) as first:
        assert json.loads(await first.recv())["type"] == "welcome"
        # The tablet's page reloads, asks for a new token and joins again.
        again = await _room_token(served, consultation, key)
        with caplog.at_level(logging.INFO, logger="video.rooms"):
            async with websockets.connect(_signal_url(served.url, again)) as second:
                assert json.loads(await second.recv())["type"] == "welcome"
                told = json.loads(await asyncio.wait_for(first.recv(), timeout=10))
                assert told == {"type": "replaced"}
    assert any("again" in record.getMessage() for record in caplog.records)
