"""``vaki bench checkins``: a whole slot of check-ins due at once, due → on the tablet.

Every resident has one plan with three daily times and one tablet; the check-in service,
its pipeline and APScheduler run in this process as ``vaki serve`` runs them, on a real
broker, with a subscriber process standing in for every tablet:

- slot A fell due before the service started, with a one-minute window: it goes out late
  at start, most residents answer it through the pipeline (as the tablet page does), and
  its window closes a few seconds into the run; the rest must become missed-check-in
  alerts, and how late that happens is measured;
- slot B falls due for every resident at the same moment during the run: the time from
  due to the tablet receiving it is the figure the goal is about;
- slot C is later in the day and only has to be planned.

The planner writes every prompt from the plans' "HH:MM" times; the benchmark then moves
slots A and B by the same sub-minute amount each, so a run starts at once instead of
waiting for the clock's next whole minute. Baseline, measured in the same run: a bare paho
publisher (its own process) pushes as many ``cmd`` messages, of the same size, through the
same broker to the same subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
import resource
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.queues import Queue as ProcessQueue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col

import alerts
import care
import devices
from bench.checkin_tablets import bare_publisher, subscribe_as_tablets
from bench.checkin_world import (
    PromptRow,
    World,
    build_world,
    missed_alerts,
    move_slot,
    prompts_of,
    slot_duplicates,
)
from bench.ingest import Target
from server.lifespans import (
    open_alarms,
    open_broker,
    open_checkins,
    open_database,
    open_ingestion,
    open_scheduler,
)
from server.runtime import Runtime
from server.settings import Settings

_SPAWN = multiprocessing.get_context("spawn")
# Tablets answering at once (each is a request to the service, which has ten connections).
_ANSWERING = 8
# The goal: the whole slot on the tablets within this many seconds of its time.
GOAL_S = 10.0


@dataclass(frozen=True)
class CheckinBenchConfig:
    """What one run does."""

    residents: int
    # Share of slot A's prompts the residents answer before its window closes.
    answered_share: float = 0.95
    quick: bool = False

    @property
    def a_closes_after_s(self) -> float:
        """Slot A's window closes this long after the service starts: time to send it and
        take the answers, which the service records at about 100 a second on SQLite here."""
        return max(12.0, self.residents / 100 + 3)

    @property
    def window_min(self) -> int:
        """The plans' answer window: A must have fallen due at least 20 s before the start."""
        return max(1, math.ceil((self.a_closes_after_s + 20) / 60))

    @property
    def b_due_after_s(self) -> float:
        """Slot B falls due this long after the service starts, after A has closed."""
        return self.a_closes_after_s + 5.0


@dataclass(frozen=True)
class Timeline:
    """The moments of one run, in UTC."""

    started: datetime
    a_due: datetime
    a_closes: datetime
    b_due: datetime

    @classmethod
    def starting(cls, started: datetime, config: CheckinBenchConfig) -> Timeline:
        """Slot A due a window before it closes; slot B due during the run."""
        a_closes = started + timedelta(seconds=config.a_closes_after_s)
        return cls(
            started=started,
            a_due=a_closes - timedelta(minutes=config.window_min),
            a_closes=a_closes,
            b_due=started + timedelta(seconds=config.b_due_after_s),
        )


# --- The residents answer -----------------------------------------------------------------


async def _answer_slot_a(
    runtime: Runtime, world: World, timeline: Timeline, config: CheckinBenchConfig
) -> int:
    """Answer the chosen share of slot A's prompts as they go out, as tablets do; return
    how many answers were accepted before the window closed."""
    assert runtime.checkins is not None
    assert runtime.engine is not None
    pipeline = runtime.checkins
    chosen = {
        r for n, r in enumerate(world.resident_ids) if n % 100 < round(config.answered_share * 100)
    }
    prompt = alerts.CheckinPrompt
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    seen: set[int] = set()
    accepted = 0
    stop_at = timeline.a_closes - timedelta(seconds=0.5)

    async def tablet() -> None:
        """One tablet after another taps "I'm fine" on the prompt it shows."""
        nonlocal accepted
        while care.utcnow() < stop_at:
            try:
                prompt_id, resident_id = await asyncio.wait_for(queue.get(), 0.2)
            except TimeoutError:
                continue
            outcome = await pipeline.answer(
                f"p-{prompt_id}", "fine", {}, via="bench", resident_id=resident_id
            )
            accepted += outcome.accepted

    answering = [asyncio.create_task(tablet()) for _ in range(_ANSWERING)]
    while care.utcnow() < stop_at and len(seen) < len(chosen):
        async with runtime.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(col(prompt.id), col(prompt.resident_id)).where(
                        col(prompt.plan_id).in_(world.plan_ids),
                        col(prompt.slot_at) == timeline.a_due,
                        col(prompt.status) == alerts.PromptStatus.SENT,
                    )
                )
            ).all()
        for prompt_id, resident_id in rows:
            if prompt_id is not None and resident_id in chosen and prompt_id not in seen:
                seen.add(prompt_id)
                queue.put_nowait((prompt_id, resident_id))
        await asyncio.sleep(0.2)
    await asyncio.gather(*answering)
    return accepted


# --- Figures --------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _rss_mb() -> float:
    """This process's resident memory now, in MB (Linux), else its peak so far."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        pages = int(statm.read_text().split()[1])
        return pages * resource.getpagesize() / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


async def _sample_rss(peak: list[float]) -> None:
    """Keep the highest resident memory seen, every 100 ms, until cancelled."""
    while True:
        peak[0] = max(peak[0], _rss_mb())
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class _ServiceRun:
    """What the service did with slots A and B, as the database has it afterwards."""

    timeline: Timeline
    answered: int
    a_rows: list[PromptRow]
    b_rows: list[PromptRow]
    missed_at: dict[int, datetime]
    slot_duplicates: int
    rss_mb: tuple[float, float]
    jobs: int


def _seconds(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of a list of seconds, rounded for printing."""
    return {
        "p50": round(_percentile(values, 0.5), 3),
        "p99": round(_percentile(values, 0.99), 3),
        "max": round(max(values, default=0.0), 3),
    }


# --- The run --------------------------------------------------------------------------------


def _target(runtime: Runtime, settings: Settings) -> tuple[Target, tuple[str, str], str]:
    """Where the tablets and the baseline connect, with which login, and the broker's name."""
    if runtime.broker is not None:
        assert runtime.broker.port is not None
        target = Target(runtime.broker.connect_host, runtime.broker.port, "3.1.1")
        return target, (devices.SERVICE_USERNAME, runtime.broker.secret), "embedded (amqtt)"
    assert settings.mqtt_url is not None
    endpoint = devices.MqttEndpoint.from_url(settings.mqtt_url)
    protocol = "3.1.1" if settings.mqtt_protocol == "3.1.1" else "5"
    login = (endpoint.username or "", endpoint.password or "")
    return Target(endpoint.host, endpoint.port, protocol), login, endpoint.describe()


async def _wait_for(check: Any, within_s: float) -> bool:
    """Poll ``check()`` every 100 ms until it is true or the time is up."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _run_service(
    runtime: Runtime,
    world: World,
    config: CheckinBenchConfig,
    received: Synchronized[int],
) -> _ServiceRun:
    """Start the service with slot A overdue, answer most of A, wait for B and the misses."""
    assert runtime.engine is not None
    engine = runtime.engine
    gc.collect()
    timeline = Timeline.starting(care.utcnow(), config)
    moved_a = await move_slot(engine, world, world.slot_a, timeline.a_due, config.window_min)
    moved_b = await move_slot(engine, world, world.slot_b, timeline.b_due, config.window_min)
    rss_before = _rss_mb()
    peak = [rss_before]
    sampler = asyncio.create_task(_sample_rss(peak), name="bench-rss")
    async with contextlib.AsyncExitStack() as service:
        # As the app opens them (server.lifespans.RESOURCES), without the web app.
        for open_resource in (open_scheduler, open_alarms, open_checkins, open_ingestion):
            await service.enter_async_context(open_resource(runtime))
        answered = await _answer_slot_a(runtime, world, timeline, config)
        # Every tablet has both slots (or the time is up), and A's window has closed.
        within = (timeline.b_due - care.utcnow()).total_seconds() + 120
        await _wait_for(lambda: received.value >= moved_a + moved_b, max(within, 5.0))
        a_rows: list[PromptRow] = []
        for _ in range(300):
            a_rows = await prompts_of(engine, world, [timeline.a_due])
            if all(row.status not in ("scheduled", "sent") for row in a_rows):
                break
            await asyncio.sleep(0.2)
        missed = {row.resident_id for row in a_rows if row.status == alerts.PromptStatus.MISSED}
        missed_at: dict[int, datetime] = {}
        for _ in range(300):
            missed_at = await missed_alerts(engine, world)
            if missed <= missed_at.keys():
                break
            await asyncio.sleep(0.2)
        assert runtime.scheduler is not None
        jobs = len(runtime.scheduler.get_jobs())
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    return _ServiceRun(
        timeline=timeline,
        answered=answered,
        a_rows=a_rows,
        b_rows=await prompts_of(engine, world, [timeline.b_due]),
        missed_at=missed_at,
        slot_duplicates=await slot_duplicates(engine, world),
        rss_mb=(rss_before, peak[0]),
        jobs=jobs,
    )


async def run_checkin_bench(settings: Settings, config: CheckinBenchConfig) -> dict[str, Any]:
    """Build the world, run the service through slots A and B, then the baseline."""
    runtime = Runtime(settings=settings)
    ready, stop = _SPAWN.Event(), _SPAWN.Event()
    received: Synchronized[int] = _SPAWN.Value("q", 0)
    sample: ProcessQueue[bytes] = _SPAWN.Queue()
    arrivals_queue: ProcessQueue[list[tuple[str, str, float]]] = _SPAWN.Queue()
    bare_queue: ProcessQueue[float] = _SPAWN.Queue()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(open_database(runtime))
        await stack.enter_async_context(open_broker(runtime))
        target, login, broker_name = _target(runtime, settings)
        world = await build_world(runtime, config.residents, config.window_min)
        tablets = _SPAWN.Process(
            target=subscribe_as_tablets,
            args=(target, login),
            kwargs={
                "ready": ready,
                "stop": stop,
                "received": received,
                "sample": sample,
                "results": arrivals_queue,
            },
            daemon=True,
        )
        tablets.start()
        stack.callback(tablets.join, 30)
        stack.callback(stop.set)
        if not await asyncio.to_thread(ready.wait, 30):
            raise RuntimeError("the tablets' subscriber did not connect to the broker")

        measured = await _run_service(runtime, world, config, received)

        # Baseline: as many commands, of a prompt's size, through the same broker to the
        # same tablets, from a bare paho publisher.
        template = json.loads(await asyncio.to_thread(sample.get, True, 10))
        before = received.value
        bare = _SPAWN.Process(
            target=bare_publisher,
            args=(target, login, world.device_ids, template, bare_queue),
            daemon=True,
        )
        bare.start()
        bare_first = await asyncio.to_thread(bare_queue.get, True, 300)
        await asyncio.to_thread(bare.join, 30)
        await _wait_for(lambda: received.value >= before + len(world.device_ids), 60)
        stop.set()
        arrivals = await asyncio.to_thread(arrivals_queue.get, True, 60)
    return _figures(
        config,
        world,
        measured,
        broker_name=broker_name,
        database=settings.effective_database_url.split(":", 1)[0].split("+")[0],
        arrivals=arrivals,
        bare_first=bare_first,
    )


def _figures(
    config: CheckinBenchConfig,
    world: World,
    run: _ServiceRun,
    *,
    broker_name: str,
    database: str,
    arrivals: list[tuple[str, str, float]],
    bare_first: float,
) -> dict[str, Any]:
    """The printed figures, from what the tablets saw and what the database holds."""
    timeline, a_rows, b_rows, missed_at = run.timeline, run.a_rows, run.b_rows, run.missed_at
    copies = Counter((device, command) for device, command, _ in arrivals)
    first_arrival: dict[str, float] = {}
    for _, command, arrived in arrivals:
        first_arrival.setdefault(command, arrived)
    bare_last = max((t for _, c, t in arrivals if c.startswith("bare-")), default=bare_first)
    bare_s = bare_last - bare_first

    b_due = timeline.b_due.timestamp()
    b_sent = [
        first_arrival[f"p-{row.id}"] - b_due for row in b_rows if f"p-{row.id}" in first_arrival
    ]
    b_db = [(row.sent_at - timeline.b_due).total_seconds() for row in b_rows if row.sent_at]
    a_start = timeline.started.timestamp()
    a_sent = [
        first_arrival[f"p-{row.id}"] - a_start for row in a_rows if f"p-{row.id}" in first_arrival
    ]
    missed = [row for row in a_rows if row.status == alerts.PromptStatus.MISSED]
    detection = [
        (missed_at[row.resident_id] - row.closes_at).total_seconds()
        for row in missed
        if row.resident_id in missed_at
    ]
    closing = [(row.closed_at - row.closes_at).total_seconds() for row in missed if row.closed_at]
    slot_s = max(b_sent, default=0.0)
    vaki_per_s = len(b_sent) / slot_s if slot_s > 0 else 0.0
    bare_per_s = len(world.device_ids) / bare_s if bare_s > 0 else 0.0
    sent, db, late, lateness = (
        _seconds(b_sent),
        _seconds(b_db),
        _seconds(a_sent),
        _seconds(detection),
    )
    return {
        "residents": config.residents,
        "quick": config.quick,
        "broker": broker_name,
        "database": database,
        "prompts_planned": world.planned,
        "planning_s": round(world.planning_s, 2),
        "slot_prompts": len(b_rows),
        "slot_received": len(b_sent),
        "slot_sent_p50_s": sent["p50"],
        "slot_sent_p99_s": sent["p99"],
        "slot_sent_max_s": sent["max"],
        "slot_db_sent_p50_s": db["p50"],
        "slot_db_sent_p99_s": db["p99"],
        "slot_db_sent_max_s": db["max"],
        "slot_per_s": round(vaki_per_s, 1),
        "bare_publisher_s": round(bare_s, 3),
        "bare_publisher_per_s": round(bare_per_s, 1),
        "ratio": round(vaki_per_s / bare_per_s, 3) if bare_per_s else None,
        "goal_s": GOAL_S,
        "goal_met": bool(b_sent) and len(b_sent) == len(b_rows) and slot_s <= GOAL_S,
        "duplicates": sum(n - 1 for n in copies.values()) + run.slot_duplicates,
        "late_slot_prompts": len(a_rows),
        "late_slot_received": len(a_sent),
        "late_slot_sent_after_start_p50_s": late["p50"],
        "late_slot_sent_after_start_max_s": late["max"],
        "late_slot_answered": run.answered,
        "missed": len(missed),
        "missed_detected": sum(row.resident_id in missed_at for row in missed),
        "missed_detection_lateness_p50_s": lateness["p50"],
        "missed_detection_lateness_p99_s": lateness["p99"],
        "missed_detection_lateness_max_s": lateness["max"],
        "missed_window_closed_lateness_max_s": _seconds(closing)["max"],
        "scheduler_rss_growth_mb": round(run.rss_mb[1] - run.rss_mb[0], 1),
        "scheduler_jobs": run.jobs,
    }
