"""The ``Ingestor``: messages queued from paho's thread, written in batches, acked after commit.

Alarm-lane messages (events) have a writer of their own, so no reading waits ahead of a
panic. A batch the database refuses is retried with backoff and nothing is acknowledged
meanwhile: the broker keeps the rest.

Each lane's queue is bounded (``LANE_CAPACITY``): paho's thread waits in ``admit`` for room
before it hands a message over, so a full queue stops paho reading from its socket and the
broker holds the rest unacknowledged. Backpressure, never a drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from care import utcnow
from devices.ingest.batches import BatchSubscriber, IngestedBatch
from devices.ingest.dead_letters import DEAD_LETTERS_PER_DEVICE
from devices.ingest.metrics import BACKLOG, BATCH_SECONDS, COMMITTED, HANDLED
from devices.ingest.planning import _Planning
from devices.ingest.rows import (
    _device_id_of,
    _DeviceInfo,
)
from devices.ingest.storing import store_plan
from devices.models import Device
from devices.mqtt import InboundMessage
from devices.raw_alarms import UnreadableWindow
from devices.topics import device_topic

log = logging.getLogger(__name__)

# Technical limits of one write: enough to amortise a commit, small enough to keep latency.
BATCH_MAX_MESSAGES = 1000
ALARM_LANE = "alarm"
BATCH_LINGER_S = 0.005
_RETRY_MAX_S = 5.0
_DEVICE_CACHE_TTL_S = 60.0
# Messages each lane holds between paho and the database: a few batches' worth of readings,
# and room for many more alarms than any home sends at once.
LANE_CAPACITY = {"main": 4 * BATCH_MAX_MESSAGES, ALARM_LANE: BATCH_MAX_MESSAGES}


class Ingestor(_Planning):
    """Turns MQTT messages into committed rows; acks only what is committed."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ack: Callable[[InboundMessage], None],
        publish: Callable[[str, bytes, int, bool], None],
        clock: Callable[[], datetime] = utcnow,
        dead_letters_per_device: int = DEAD_LETTERS_PER_DEVICE,
        capacity: Mapping[str, int] = LANE_CAPACITY,
    ) -> None:
        """``ack`` PUBACKs a message to the broker; ``publish`` sends the device acks;
        ``capacity`` bounds each lane's queue."""
        self._engine = engine
        self.dead_letters_per_device = dead_letters_per_device
        self._unreadable = UnreadableWindow()
        self._ack_broker = ack
        self._publish = publish
        self._clock = clock
        self._pending: deque[InboundMessage] = deque()
        # Alarm-lane messages (events) jump the queue: they are written in batches of
        # their own, ahead of any readings waiting.
        self._pending_alarms: deque[InboundMessage] = deque()
        self._wakeup = asyncio.Event()
        self._devices: dict[str, _DeviceInfo] = {}
        self._subscribers: list[BatchSubscriber] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._alarm_wakeup = asyncio.Event()
        self.database_ok = True
        self.last_error: str | None = None
        self.committed_messages = 0
        self._busy = 0
        self._cleared: set[str] = set()
        # Room left in each lane's queue; paho's thread takes it, the writer gives it back.
        self._room = {lane: threading.BoundedSemaphore(size) for lane, size in capacity.items()}
        self._stopping = threading.Event()

    def subscribe(self, subscriber: BatchSubscriber) -> None:
        """Call ``subscriber`` with every committed batch (after the commit)."""
        self._subscribers.append(subscriber)

    @property
    def backlog(self) -> int:
        """Messages received and not yet committed."""
        return len(self._pending) + len(self._pending_alarms)

    def admit(self, message: InboundMessage) -> None:
        """On paho's thread, before ``submit``: wait for room in the message's lane.

        Waiting here stops paho reading its socket, so the broker holds what follows
        (unacknowledged, so nothing is lost); after ``stop`` nothing waits any longer.
        """
        room = self._room["main" if message.lane != ALARM_LANE else ALARM_LANE]
        while not room.acquire(timeout=0.5):
            if self._stopping.is_set():
                return

    def _give_back(self, lane: str, count: int) -> None:
        """Room for ``count`` more messages in ``lane`` (their batch is committed)."""
        room = self._room[lane]
        for _ in range(count):
            with contextlib.suppress(ValueError):  # submitted without ``admit`` (tests)
                room.release()

    def submit(self, message: InboundMessage) -> None:
        """Take a message (on the event loop); the writer task picks it up."""
        if message.lane == ALARM_LANE:
            self._pending_alarms.append(message)
            self._alarm_wakeup.set()
        else:
            self._pending.append(message)
            self._wakeup.set()
        BACKLOG.inc()

    def start(self) -> None:
        """Start the two writers: readings and the rest, and the alarm lane."""
        self._tasks = [
            asyncio.create_task(self._run(self._pending, self._wakeup), name="ingest-writer"),
            asyncio.create_task(
                self._run(self._pending_alarms, self._alarm_wakeup), name="ingest-alarm-writer"
            ),
        ]

    async def stop(self) -> None:
        """Stop the writers; uncommitted messages stay unacked, so the broker keeps them."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self, within_s: float = 10.0) -> None:
        """Wait until every submitted message is committed (tests and shutdown)."""
        deadline = time.monotonic() + within_s
        while self.backlog or self._busy:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.backlog} messages still waiting")
            await asyncio.sleep(0.01)

    async def _run(self, queue: deque[InboundMessage], wakeup: asyncio.Event) -> None:
        """One writer loop: batch, write, commit, ack; retry with backoff while the DB is down.

        The alarm lane has a writer of its own, so a panic is never stuck behind a batch
        of readings being written.
        """
        delay = 0.1
        while True:
            if not queue:
                wakeup.clear()
                await wakeup.wait()
                if queue is self._pending:
                    await asyncio.sleep(BATCH_LINGER_S)
            batch = [queue[i] for i in range(min(len(queue), BATCH_MAX_MESSAGES))]
            self._busy += 1
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # keep going: nothing is acked, so nothing is lost
                self.database_ok = False
                self.last_error = f"{type(err).__name__}: {err}"[:300]
                log.error(
                    "ingest batch of %s failed, retrying in %.1fs: %s",
                    len(batch),
                    delay,
                    self.last_error,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
                self._devices.clear()
                continue
            finally:
                self._busy -= 1
            for _ in batch:
                queue.popleft()
            BACKLOG.dec(len(batch))
            self._give_back(ALARM_LANE if queue is self._pending_alarms else "main", len(batch))
            delay = 0.1
            if not self.database_ok:
                log.info("database is back; ingestion resumed")
            self.database_ok, self.last_error = True, None

    async def _write(self, batch: list[InboundMessage]) -> None:
        """Validate, write and commit one batch, then acknowledge and notify."""
        started = time.perf_counter()
        senders = await self._load_devices(batch)
        cleared = frozenset(self._cleared)
        # Validating a big batch is CPU work: off the event loop, so the alarm lane and the
        # web requests go on meanwhile. It reads only the copies it is handed.
        if len(batch) > 32:
            plan = await asyncio.to_thread(self._plan, batch, senders, cleared)
        else:
            plan = self._plan(batch, senders, cleared)
        async with self._engine.begin() as connection:
            readings, events = await store_plan(connection, plan, self.dead_letters_per_device)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        # Committed: now, and only now, the broker and the devices may forget these (and a
        # batch retried after a failed commit still recognises the echoes it holds). Nothing
        # from here on may fail the batch: a retry would find duplicates and tell no one.
        self._cleared.difference_update(plan.echoes)
        self._unreadable.record(plan.unreadable_raised)
        try:
            for message in batch:
                self._ack_broker(message)
            for device_id, ids in plan.acks.items():
                self._publish(
                    device_topic(device_id, "ack"), json.dumps({"ids": ids}).encode(), 0, False
                )
            for topic in plan.retained_to_clear:
                self._cleared.add(topic)
                self._publish(topic, b"", 1, True)
        except Exception:  # the devices resend what was not acked; it is stored once
            log.exception("acknowledging a committed batch failed")
        self.committed_messages += len(batch)
        HANDLED.inc(len(batch))
        COMMITTED.labels("reading").inc(len(readings))
        COMMITTED.labels("event").inc(len(events))
        if readings or events:
            committed = IngestedBatch(tuple(readings), tuple(events))
            for subscriber in self._subscribers:
                try:
                    await subscriber(committed)
                except Exception:
                    log.exception("a subscriber failed on a committed batch")

    async def _load_devices(self, batch: list[InboundMessage]) -> dict[str, _DeviceInfo]:
        """Fill the device cache for the senders in the batch that it lacks or holds too long;
        return the batch's senders (a copy, for planning off the loop)."""
        now = time.monotonic()
        wanted = set()
        senders = set()
        for message in batch:
            device_id = _device_id_of(message.topic)
            if device_id is None:
                continue
            senders.add(device_id)
            cached = self._devices.get(device_id)
            if cached is None or now - cached.seen_at > _DEVICE_CACHE_TTL_S:
                wanted.add(device_id)
        if wanted:
            await self._fetch_devices(wanted, now)
        return {d: info for d in senders if (info := self._devices.get(d)) is not None}

    async def _fetch_devices(self, wanted: set[str], now: float) -> None:
        """Read the wanted devices into the cache."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(
                    col(Device.id),
                    col(Device.resident_id),
                    col(Device.revoked_at),
                    col(Device.kind),
                ).where(col(Device.id).in_(wanted))
            )
        for device_id, resident_id, revoked_at, kind in rows:
            self._devices[device_id] = _DeviceInfo(
                resident_id, revoked_at is not None, now, str(kind)
            )
