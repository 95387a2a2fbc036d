"""A flood of wrong machine secrets (tablet keys, API tokens) at 300 a second against a real
server: every one refused, argon2 never on the event loop, a repeated wrong key checked
once; the loop's stalls are counted and printed (figures for the report, not asserted)."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

import care
import devices
from care.secrets import machine_secret_stats
from tests.security.conftest import Served

RATE = 300  # wrong attempts a second
SECONDS = 4


async def test_wrong_machine_secrets_do_not_stall_the_event_loop(served: Served) -> None:
    async with served.sessions() as session:
        tablet = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=served.world.resident
        )
        token = await care.create_api_token(session, "helga", "integration")
        await session.commit()
    prefix = token.rsplit("_", 1)[0]
    # A third distinct wrong keys, a third distinct wrong tokens, a third one stale key again.
    stale = devices.tablet_key(tablet.device.id, care.new_secret())
    attempts: list[tuple[str, str]] = []
    for n in range(RATE * SECONDS):
        if n % 3 == 0:
            attempts.append(("/api/tablet/home", devices.tablet_key(tablet.device.id, f"w{n}")))
        elif n % 3 == 1:
            attempts.append(("/api/alerts/", f"{prefix}_wrong{n}"))
        else:
            attempts.append(("/api/tablet/home", stale))
    before = (machine_secret_stats.argon2_runs, machine_secret_stats.argon2_runs_on_a_loop)

    statuses: list[int] = []
    done = threading.Event()

    def flood() -> None:
        """Send the attempts at RATE a second from other threads, as outside clients do."""
        with (
            httpx.Client(base_url=served.url, timeout=30) as client,
            ThreadPoolExecutor(32) as pool,
        ):
            start = time.monotonic()
            futures = []
            for n, (path, secret) in enumerate(attempts):
                delay = start + n / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing the attacker, not waiting for the server
                futures.append(
                    pool.submit(client.get, path, headers={"Authorization": f"Bearer {secret}"})
                )
            statuses.extend(f.result().status_code for f in futures)
        done.set()

    lags: list[float] = []
    loop = asyncio.get_running_loop()
    flooding = loop.run_in_executor(None, flood)
    tick = 0.005
    while not done.is_set():
        asked = time.monotonic()
        await asyncio.sleep(tick)
        lags.append(time.monotonic() - asked - tick)
    await flooding

    runs = machine_secret_stats.argon2_runs - before[0]
    on_loop = machine_secret_stats.argon2_runs_on_a_loop - before[1]
    lags_ms = sorted(lag * 1000 for lag in lags)
    print(
        f"{len(attempts)} wrong machine secrets at {RATE}/s: statuses {set(statuses)}, "
        f"argon2 runs {runs} (on the loop {on_loop}), "
        f"loop lag p50 {statistics.median(lags_ms):.1f} ms, "
        f"p99 {lags_ms[int(len(lags_ms) * 0.99)]:.1f} ms, max {lags_ms[-1]:.1f} ms, "
        f"stalls >20 ms {sum(lag > 20 for lag in lags_ms)}, "
        f">100 ms {sum(lag > 100 for lag in lags_ms)} of {len(lags_ms)} ticks"
    )
    assert set(statuses) == {401}
    assert on_loop == 0
    # Each distinct wrong secret costs one argon2 run; the stale key is checked once.
    assert runs <= 2 * RATE * SECONDS // 3 + 1
