"""Fixtures for attacks on a real ``vaki serve`` and its broker (Mosquitto and amqtt)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from tests.conftest import ServedVaki, vaki_env
from tests.security.broker.attacks import TALLY, Login, Served, World


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print attacks tried / refused per area."""
    if not TALLY:
        return
    terminalreporter.section("attacks tried / refused")
    for area, (tried, refused) in sorted(TALLY.items()):
        terminalreporter.write_line(f"{area}: {tried} tried / {refused} refused")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The server and the test share one SQLite file."""
    return sqlite_url


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    """Provisioned before the server starts, so the broker knows every login."""
    async with sessions() as session:
        resident = care.Resident(full_name="Sigríður Á.")
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        logins = []
        for kind in (
            devices.DeviceKind.PANIC_BUTTON,
            devices.DeviceKind.SMOKE_DETECTOR,
            devices.DeviceKind.SCALE,
            devices.DeviceKind.TABLET,
        ):
            provisioned = await devices.provision_device(
                session, kind=kind, resident_id=resident.id
            )
            logins.append(Login(provisioned.device.id, provisioned.secret))
        await session.commit()
    return World(resident.id, *logins)


@pytest.fixture(params=["mosquitto", "amqtt"])
async def served(
    request: pytest.FixtureRequest, world: World, sqlite_url: str, tmp_path: Path
) -> AsyncIterator[Served]:
    """``vaki serve`` with its own broker: the private Mosquitto, or amqtt."""
    env = vaki_env(tmp_path, database_url=sqlite_url, mqtt_embedded_broker=request.param)
    vaki = ServedVaki(tmp_path, env)
    await asyncio.to_thread(vaki.start)
    try:
        data_dir = Path(env["VAKI_DATA_DIR"])
        address = devices.read_broker_address(data_dir)
        assert address is not None
        service_port = address.port
        if request.param == "mosquitto":
            config = (data_dir / "mosquitto" / "mosquitto.conf").read_text()
            service_port = int(re.findall(r"^listener (\d+) 127\.0\.0\.1$", config, re.M)[0])
        yield Served(
            vaki,
            request.param,
            address.host,
            address.port,
            service_port,
            env["VAKI_MQTT_CLIENT_ID"],
        )
    finally:
        await asyncio.to_thread(vaki.stop)
