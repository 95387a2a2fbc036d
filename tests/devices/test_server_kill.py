"""A device written from docs/mqtt.md alone loses nothing when the server is killed -9."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import devices
from homesim import VirtualDevice
from tests.conftest import PrivateMosquitto, ServedVaki, vaki_env

FAST: dict[str, Any] = {
    "resend_first_s": 0.5,
    "resend_max_s": 2.0,
    "reconnect_min_s": 0.2,
    "reconnect_max_s": 1.0,
}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.mark.slow
async def test_every_reading_is_stored_once_through_a_server_kill(
    private_mosquitto: PrivateMosquitto,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    private_mosquitto.extra_config = "allow_anonymous true\n"
    private_mosquitto.start()
    async with sessions() as session:
        provisioned = await devices.provision_device(
            session, kind=devices.DeviceKind.ACTIVITY_TRACKER, resident_id=None
        )
        await session.commit()
    env = vaki_env(
        tmp_path,
        database_url=sqlite_url,
        mqtt_url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
    )
    server = ServedVaki(tmp_path, env)
    await asyncio.to_thread(server.start)
    device = VirtualDevice(
        provisioned.device.id,
        provisioned.secret,
        "127.0.0.1",
        private_mosquitto.port,
        outbox_path=tmp_path / "outbox.db",
        **FAST,
    )
    await device.start()
    ids: list[str] = []
    try:
        await device.wait_connected(timeout=30)

        async def stream() -> None:
            for n in range(300):
                ids.append(await device.send_reading("heart_rate", {"heart_rate": 50 + n % 90}))
                await asyncio.sleep(0.01)

        streaming = asyncio.create_task(stream())
        while len(ids) < 100:
            await asyncio.sleep(0.05)
        # Killed mid-stream: uncommitted messages were never acked, so nothing is lost.
        await asyncio.to_thread(server.kill)
        while len(ids) < 200:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(server.start)
        async with asyncio.timeout(120):
            await streaming
        await device.wait_until_acked(ids, timeout=120)
        assert device.outbox_size == 0
    finally:
        await device.stop()
        server.stop()
    async with sessions() as session:
        rows = await session.exec(
            select(devices.Reading.message_id, func.count())
            .where(col(devices.Reading.device_id) == provisioned.device.id)
            .group_by(col(devices.Reading.message_id))
        )
        stored = dict(rows.all())
    assert len(ids) == len(set(ids)) == 300
    assert stored == dict.fromkeys(ids, 1)
