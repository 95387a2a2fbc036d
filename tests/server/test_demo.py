"""``vaki serve --demo`` as a newcomer runs it: the same logins and demo tablet on every start
from the same data directory, a ready-paired tablet, and a world with history and no alarms
left over from it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

import alerts
import care
import devices
from server.db import session_factory
from server.demo import kept_world, load_demo_world, simulated_demo_homes
from server.demo_history import DAYS_OF_HISTORY
from tests.conftest import vaki_env

VAKI = str(Path(sys.executable).parent / "vaki")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_demo_once(tmp_path: Path, port: int, run: int) -> list[str]:
    """Start ``vaki serve --demo`` until it is ready, stop it, and give what it printed."""
    env = vaki_env(tmp_path)
    out = tmp_path / f"serve-{run}.out"
    with out.open("w") as log, (tmp_path / f"serve-{run}.err").open("w") as err:
        process = subprocess.Popen(
            [VAKI, "serve", "--demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=err,
            text=True,
        )
        try:
            deadline = time.monotonic() + 180
            ready = False
            while time.monotonic() < deadline and process.poll() is None and not ready:
                try:
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).is_success
                except httpx.HTTPError:
                    time.sleep(0.3)
            assert ready, (tmp_path / f"serve-{run}.err").read_text()
            tablet = out.read_text().splitlines()[-1]
            address = tablet.split(": ", 1)[1]
            page = httpx.get(address.split("#", 1)[0], timeout=10)
            assert page.status_code == 200
            key = address.split("#key=", 1)[1]
            home = httpx.get(
                f"http://127.0.0.1:{port}/api/tablet/home",
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert home.status_code == 200, home.text
            assert home.json()["resident"]["name"] == "Guðrún"
        finally:
            process.terminate()
            process.wait(timeout=30)
    return out.read_text().splitlines()


@pytest.mark.slow
def test_serve_demo_twice_prints_the_same_logins_and_a_paired_tablet(tmp_path: Path) -> None:
    port = _free_port()
    first = serve_demo_once(tmp_path, port, 1)
    assert any(line.strip().startswith("helga ") for line in first)
    assert f"Console: http://127.0.0.1:{port}/login" in first
    assert first[-1].startswith(f"Demo tablet of Guðrún Sigurðardóttir: http://127.0.0.1:{port}")
    second = serve_demo_once(tmp_path, port, 2)
    assert second == first


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_the_world_opens_with_history_and_nothing_left_to_raise(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        world = await load_demo_world(session, data_dir=tmp_path)
        await session.commit()
    assert kept_world(tmp_path) == world
    assert (tmp_path / "demo-world.json").stat().st_mode & 0o777 == 0o600
    async with sessions() as session:
        # No history event waits for the alarm path ("500 alarm events had no alert yet").
        unhandled = await devices.unhandled_alarm_events(session, care.utcnow())
        assert unhandled == []
        # Every resident has a month of answered check-ins, told to the team at the time.
        answered = await session.exec(
            select(alerts.CheckinPrompt.resident_id, func.count())
            .where(col(alerts.CheckinPrompt.status) == alerts.PromptStatus.ANSWERED)
            .group_by(col(alerts.CheckinPrompt.resident_id))
        )
        counts = dict(answered.all())
        assert len(counts) == 25
        assert min(counts.values()) >= DAYS_OF_HISTORY * 0.8
        unreported = await session.exec(
            select(func.count()).where(col(alerts.CheckinPrompt.reported_at).is_(None))
        )
        assert unreported.one() == 0
        # The homes run with the kept keys; the demo tablet is left to a person.
        homes = await simulated_demo_homes(session, 25, tmp_path)
    kept = {d.device_id: d.password for r in world.residents for d in r.devices}
    simulated = {d.device_id: d.password for home in homes for d in home.devices}
    assert world.demo_tablet is not None
    person_tablet = world.demo_tablet[1].split(".")[1]
    assert person_tablet not in simulated
    assert simulated == {k: v for k, v in kept.items() if k != person_tablet}
    assert sum(1 for home in homes if home.scenarios) == 3
