"""Time-proof scheduling: the escalation keeps its times through a wall-clock step.

The wall clock here is injected and jumps; the monotonic clock and the event loop are real,
as are the database and the SMTP server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
from server.wakes import SteadyClock, Waker
from tests.alerts.test_escalation_engine import (
    TierSpec,
    add_tiers,
    build_world,
    mails,
    panic,
    staff,
)
from tests.conftest import Mailbox

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class JumpingWall:
    """A wall clock that runs with a monotonic clock and can be stepped by hand."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        self.start = monotonic()
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=self.monotonic() - self.start) + self.offset


def test_steady_time_ignores_a_step_until_it_lasts() -> None:
    mono = [1000.0]

    def monotonic() -> float:
        return mono[0]

    wall = JumpingWall(monotonic)
    clock = SteadyClock(wall, monotonic, adopt_after=timedelta(minutes=5))
    assert clock() == T0
    mono[0] += 10
    assert clock() == T0 + timedelta(seconds=10)
    # The system clock is set back an hour: steady time goes on.
    wall.offset = -timedelta(hours=1)
    mono[0] += 10
    assert clock() == T0 + timedelta(seconds=20)
    # Corrected after three minutes: nothing happened as far as steady time is concerned.
    mono[0] += 180
    wall.offset = timedelta(0)
    assert clock() == T0 + timedelta(seconds=200)
    # A step forward that stays five minutes is a real correction and is followed.
    wall.offset = timedelta(hours=1)
    mono[0] += 1
    assert clock() == T0 + timedelta(seconds=201)
    mono[0] += 300
    assert clock() == T0 + timedelta(hours=1, seconds=501)
    # Small drift (NTP slewing) is followed as it comes.
    wall.offset = timedelta(hours=1, seconds=1)
    mono[0] += 1
    assert clock() == T0 + timedelta(hours=1, seconds=503)


async def test_a_due_step_fires_on_time_through_wall_clock_steps(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, last_tier_repeats=5)
    await add_tiers(
        sessions,
        world,
        TierSpec(1, [staff(world, "anna")]),
        TierSpec(60, [staff(world, "helga")]),
        TierSpec(60, [staff(world, "jon")]),
    )
    wall = JumpingWall(time.monotonic)
    clock = SteadyClock(wall, time.monotonic)
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    engine = alerts.EscalationEngine(
        sessions,
        lifecycle,
        {"email": alerts.EmailChannel("127.0.0.1", port, sender="vaki@vaki.example")},
        clock=clock,
        instance="vaki-a",
    )
    runs = asyncio.Queue[int]()

    async def run() -> None:
        await engine.run_due()
        runs.put_nowait(len(box.envelopes))
        following = await engine.next_due()
        if following is not None:
            waker.wake_at(following)

    waker = Waker("escalation", run, 0.2, clock=clock)
    lifecycle.on_step_scheduled = waker.wake_at
    waker.start()
    try:
        await lifecycle.raise_alerts([panic(world)])
        while await runs.get() < 1:
            pass
        # Tier 1 went out; tier 2 is due one second later. The system clock is set back an
        # hour: tier 2 must not wait an hour.
        wall.offset = -timedelta(hours=1)
        async with asyncio.timeout(30):
            while await runs.get() < 2:
                pass
        assert [r for r, _ in mails(box)] == ["anna@vaki.example", "helga@vaki.example"]
        # Now set an hour forward: tier 3 is a minute away and must not fire early. The
        # engine looks every 0.2 s; twenty looks later Jón is still not told.
        wall.offset = timedelta(hours=1)
        for _ in range(20):
            assert await runs.get() == 2
    finally:
        await waker.stop()
