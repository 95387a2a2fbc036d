"""Killing the server in the middle of a check-in window neither loses nor duplicates a
prompt: the real service, a real broker, a tablet written from docs/mqtt.md alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from homesim import VirtualDevice
from tests.conftest import PrivateMosquitto, ServedVaki, vaki_env


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def next_command(tablet: VirtualDevice, within_s: float) -> dict[str, Any]:
    return await asyncio.wait_for(tablet.commands.get(), within_s)


async def prompt_rows(sessions: async_sessionmaker[AsyncSession]) -> list[alerts.CheckinPrompt]:
    async with sessions() as session:
        rows = await session.exec(
            select(alerts.CheckinPrompt).order_by(col(alerts.CheckinPrompt.slot_at))
        )
        return list(rows.all())


@pytest.mark.slow
async def test_a_restart_mid_window_neither_loses_nor_duplicates_a_prompt(
    private_mosquitto: PrivateMosquitto,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    private_mosquitto.extra_config = "allow_anonymous true\n"
    private_mosquitto.start()
    now = datetime.now(UTC)
    first = now.replace(second=0, microsecond=0)  # due already: goes out at start-up
    # The second slot falls due while the server is down.
    second = first + timedelta(minutes=1 if now.second < 40 else 2)
    async with sessions() as session:
        resident = care.Resident(full_name="Jón Jónsson", language="en", time_zone="UTC")
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        tablet_device = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=resident.id
        )
        # Stored as is: two slots a minute apart, which the editor would refuse.
        session.add(
            alerts.CheckinPlan(
                resident_id=resident.id,
                kind=alerts.CheckinKind.WELLBEING,
                title="How are you today?",
                times=[f"{first:%H:%M}", f"{second:%H:%M}"],
                window_min=30,
                created_at=first - timedelta(minutes=5),
            )
        )
        await session.commit()
    env = vaki_env(
        tmp_path,
        database_url=sqlite_url,
        mqtt_url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
        checkin_sweep_s="1",
    )
    server = ServedVaki(tmp_path, env)
    tablet = VirtualDevice(
        tablet_device.device.id,
        tablet_device.secret,
        "127.0.0.1",
        private_mosquitto.port,
        outbox_path=tmp_path / "outbox.db",
        resend_first_s=0.5,
        resend_max_s=2.0,
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
    )
    await tablet.start()
    received: list[dict[str, Any]] = []
    try:
        await tablet.wait_connected(timeout=30)
        await asyncio.to_thread(server.start)
        received.append(await next_command(tablet, 30))
        # Killed the moment the first prompt is out: maybe before it was marked as sent.
        await asyncio.to_thread(server.kill)
        wait = (second - datetime.now(UTC)).total_seconds() + 2
        await asyncio.sleep(max(wait, 0))
        await asyncio.to_thread(server.start)
        deadline = asyncio.get_running_loop().time() + 60
        while {c["prompt_id"] for c in received} != {f"p-{n}" for n in (1, 2)}:
            remaining = deadline - asyncio.get_running_loop().time()
            received.append(await next_command(tablet, max(remaining, 0.1)))

        # The first is answered over MQTT, the second on the tablet page's API.
        await tablet.send_event("checkin_answer", {"prompt_id": "p-1", "answer": "fine"})
        key = devices.tablet_key(tablet_device.device.id, tablet_device.secret)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            answered = await client.post("/api/tablet/prompts/p-2/answer", json={"answer": "fine"})
            assert answered.json() == {
                "prompt_id": "p-2",
                "accepted": True,
                "answer": "fine",
                "late": False,
            }
            for _ in range(100):
                rows = await prompt_rows(sessions)
                if all(row.answered_at is not None for row in rows[:2]):
                    break
                await asyncio.sleep(0.1)
            # The MQTT answer came first: the page's later answer is not taken.
            again = await client.post("/api/tablet/prompts/p-1/answer", json={"answer": "call_me"})
            assert again.json()["accepted"] is False
            left = await client.get("/api/tablet/prompts")
            assert left.json() == {"prompts": []}
            stranger = await client.get(
                "/api/tablet/prompts", headers={"Authorization": "Bearer vakid.x.y"}
            )
            assert stranger.status_code == 401
    finally:
        await tablet.stop()
        await asyncio.to_thread(server.stop)

    rows = await prompt_rows(sessions)
    today = [row for row in rows if row.slot_at <= second]
    assert [(row.slot_at, row.status, row.answer, row.answered_via) for row in today] == [
        (first, "answered", "fine", "mqtt"),
        (second, "answered", "fine", "tablet"),
    ]
    # A command may arrive twice under its own id (the contract allows it); never as a
    # second prompt for the same slot.
    assert {c["id"] for c in received} == {"p-1", "p-2"}
    assert all(c["type"] == "checkin_prompt" for c in received)
