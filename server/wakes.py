"""Time-proof scheduling: work that wakes on the monotonic clock and asks the database.

APScheduler computes its wakes from the wall clock: set the system clock back an hour and
every interval job sleeps an hour. Here a ``Waker`` runs its job at least every
``interval_s`` seconds of the event loop's monotonic clock, and sooner when asked for a
moment; each run re-reads what is due from the database. A ``SteadyClock`` gives the time
the due moments are compared with: it follows the wall clock, but not a sudden step of it,
until the step has lasted long enough to be a correction rather than a glitch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from care import utcnow

log = logging.getLogger(__name__)


class SteadyClock:
    """UTC time that moves with the monotonic clock and follows the wall clock's drift.

    A wall-clock step larger than ``tolerance`` is not followed: timeouts would fire early
    on a step forward and stall on a step back. When the wall clock stays off for
    ``adopt_after``, the step is taken as a real correction and followed.
    """

    def __init__(
        self,
        wall: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        tolerance: timedelta = timedelta(seconds=2),
        adopt_after: timedelta = timedelta(minutes=5),
    ) -> None:
        """Anchor the steady time to the wall clock now."""
        self._wall = wall
        self._monotonic = monotonic
        self._tolerance = tolerance
        self._adopt_after_s = adopt_after.total_seconds()
        self._anchor = (wall(), monotonic())
        self._off_since: float | None = None

    def __call__(self) -> datetime:
        """The time now."""
        wall, mono = self._wall(), self._monotonic()
        anchor_wall, anchor_mono = self._anchor
        steady = anchor_wall + timedelta(seconds=mono - anchor_mono)
        if abs(wall - steady) <= self._tolerance:
            self._anchor, self._off_since = (wall, mono), None
            return wall
        if self._off_since is None:
            self._off_since = mono
            log.warning(
                "the system clock stepped by %.0f s; keeping steady time until it settles",
                (wall - steady).total_seconds(),
            )
        elif mono - self._off_since >= self._adopt_after_s:
            log.warning("the system clock stayed %s off; following it", wall - steady)
            self._anchor, self._off_since = (wall, mono), None
            return wall
        return steady


class Waker:
    """Runs ``job`` every ``interval_s`` of monotonic time, and at a moment when asked."""

    def __init__(
        self,
        name: str,
        job: Callable[[], Awaitable[object]],
        interval_s: float,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Nothing runs before ``start``; the first run is at once."""
        self.name = name
        self.interval_s = interval_s
        self._job = job
        self._clock = clock
        self._next = 0.0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self.last_run: float | None = None

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._task = asyncio.create_task(self._loop(), name=f"wake-{self.name}")

    async def stop(self, within_s: float = 10.0) -> None:
        """Stop; a run in progress (a step being delivered) gets ``within_s`` to finish."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._changed.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def wake_at(self, due: datetime) -> None:
        """Run at ``due`` (at once when it is past); the wait is measured on the monotonic
        clock from now, so a later wall-clock step does not move it."""
        delay = min(max((due - self._clock()).total_seconds(), 0.0), self.interval_s)
        at = time.monotonic() + delay
        if at < self._next:
            self._next = at
            self._changed.set()

    def age_s(self) -> float | None:
        """Seconds since the last run started (None before the first)."""
        return None if self.last_run is None else time.monotonic() - self.last_run

    async def _loop(self) -> None:
        """Wait for the next run, run, repeat; a failing run is logged and the loop goes on."""
        while not self._stopping:
            wait = self._next - time.monotonic()
            if wait > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
                continue
            self._next = time.monotonic() + self.interval_s
            # Counted from the start: a run that hangs (a black-holed database) shows as stale.
            self.last_run = time.monotonic()
            self._idle.clear()
            try:
                await self._job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s run failed; trying again at the next wake", self.name)
            finally:
                self._idle.set()
