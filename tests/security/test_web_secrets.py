"""A flood of wrong machine secrets (tablet keys, API tokens) at 300 a second against a real
server: every one refused, argon2 never on the event loop, a repeated wrong key checked
once; the loop's stalls are counted and printed (figures for the report, not asserted)."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

import care
import devices
from care.secrets import machine_secret_stats
from tests.security.conftest import Served

RATE = 300  # wrong attempts a second
SECONDS = 4
# The attacker: reads (path, key) pairs on stdin, sends them at RATE a second from a pool of
# threads, prints the status codes.
_FLOOD = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import httpx
url, rate = sys.argv[1], int(sys.argv[2])
attempts = json.load(sys.stdin)
with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(32) as pool:
    start, futures = time.monotonic(), []
    for n, (path, key) in enumerate(attempts):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        headers = {"Authorization": "Bearer " + key}
        futures.append(pool.submit(client.get, path, headers=headers))
    print(json.dumps([f.result().status_code for f in futures]))
"""


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

    # The attacker is another process, so its threads take no time from the server's.
    attacker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _FLOOD,
        served.url,
        str(RATE),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    finished = asyncio.create_task(attacker.communicate(json.dumps(attempts).encode()))
    lags: list[float] = []
    tick = 0.005
    while not finished.done():
        asked = time.monotonic()
        await asyncio.sleep(tick)
        lags.append(time.monotonic() - asked - tick)
    out, _ = await finished
    statuses = json.loads(out)

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
