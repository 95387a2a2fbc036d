"""Ingestion: MQTT messages → committed readings, events, status and dead letters.

paho's thread hands each message to the event loop (``submit``); one writer task takes
them in batches, validates them against the contract, writes the batch in one transaction
(SQLAlchemy Core, idempotent on (device id, message id)), and only after the commit
acknowledges them: PUBACK to the broker and ``vaki/v1/d/{id}/ack`` to each device. When the
database is down nothing is acknowledged, the batch is retried, and the broker holds the
rest: backpressure, never dropping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

import firmware_bridge
from care import UTCDateTime, utcnow
from devices.contract import (
    ALARM_EVENT_TYPES,
    CLOCK_SKEW_LIMIT,
    EVENT_TYPES,
    UNREADABLE_EVENT,
    ContractError,
    EventIn,
    ReadingIn,
    Rejected,
    StatusIn,
    parse_event,
    parse_readings,
    parse_status,
    parse_topic,
    raw_message_id,
)
from devices.models import DeadLetter, Device, Event, Reading
from devices.mqtt import InboundMessage
from devices.topics import device_topic

log = logging.getLogger(__name__)

# Technical limits of one write: enough to amortise a commit, small enough to keep latency.
BATCH_MAX_MESSAGES = 1000
ALARM_LANE = "alarm"
BATCH_LINGER_S = 0.005
_RETRY_MAX_S = 5.0
_DEVICE_CACHE_TTL_S = 60.0

MESSAGES = Counter(
    "vaki_ingest_messages_total",
    "MQTT messages taken in, by channel and outcome",
    ["channel", "outcome"],
)
DEAD_LETTERS = Counter("vaki_dead_letters_total", "Messages or items kept as dead letters")
COMMITTED = Counter("vaki_ingest_committed_total", "Rows committed", ["kind"])
BATCH_SECONDS = Histogram(
    "vaki_ingest_batch_seconds",
    "Time to validate, write and commit one batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BACKLOG = Gauge("vaki_ingest_backlog", "Messages received and not yet committed")


@dataclass(frozen=True)
class CommittedEvent:
    """An event newly stored (not a resend), for the alarm path."""

    id: int
    device_id: str
    resident_id: int | None
    type: str
    data: dict[str, Any]
    device_ts: datetime | None
    received_at: datetime


@dataclass(frozen=True)
class CommittedReading:
    """A reading newly stored (not a resend), for the rules."""

    id: int
    device_id: str
    resident_id: int | None
    type: str
    values: dict[str, Any]
    device_ts: datetime | None
    received_at: datetime


@dataclass(frozen=True)
class IngestedBatch:
    """What one commit added: handed to subscribers after the commit."""

    readings: tuple[CommittedReading, ...]
    events: tuple[CommittedEvent, ...]


BatchSubscriber = Callable[[IngestedBatch], Awaitable[None]]


@dataclass(frozen=True)
class _DeviceInfo:
    """What ingestion needs to know of a device."""

    resident_id: int | None
    revoked: bool
    seen_at: float


@dataclass
class _Plan:
    """The rows one batch will write, and the acknowledgements owed after the commit."""

    readings: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, StatusIn] = field(default_factory=dict)
    seen: dict[str, datetime] = field(default_factory=dict)
    acks: dict[str, list[str]] = field(default_factory=dict)
    retained_to_clear: list[str] = field(default_factory=list)

    def dead_letter(
        self, message: InboundMessage, reason: str, device_id: str | None, payload: bytes
    ) -> None:
        """Keep something unusable with its reason."""
        self.dead_letters.append(
            {
                "received_at": utcnow(),
                "topic": message.topic[:1024],
                "device_id": device_id,
                "reason": reason[:500],
                "payload": payload,
            }
        )

    def ack(self, device_id: str, message_id: str | None) -> None:
        """Owe the device an ack for this id once committed."""
        if message_id is not None:
            self.acks.setdefault(device_id, []).append(message_id)


class Ingestor:
    """Turns MQTT messages into committed rows; acks only what is committed."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ack: Callable[[InboundMessage], None],
        publish: Callable[[str, bytes, int, bool], None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``ack`` PUBACKs a message to the broker; ``publish`` sends the device acks."""
        self._engine = engine
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

    def subscribe(self, subscriber: BatchSubscriber) -> None:
        """Call ``subscriber`` with every committed batch (after the commit)."""
        self._subscribers.append(subscriber)

    @property
    def backlog(self) -> int:
        """Messages received and not yet committed."""
        return len(self._pending) + len(self._pending_alarms)

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
            delay = 0.1
            if not self.database_ok:
                log.info("database is back; ingestion resumed")
            self.database_ok, self.last_error = True, None

    async def _write(self, batch: list[InboundMessage]) -> None:
        """Validate, write and commit one batch, then acknowledge and notify."""
        started = time.perf_counter()
        await self._load_devices(batch)
        # Validating a big batch is CPU work: off the event loop, so the alarm lane and the
        # web requests go on meanwhile.
        plan = await asyncio.to_thread(self._plan, batch) if len(batch) > 32 else self._plan(batch)
        async with self._engine.begin() as connection:
            readings, events = await self._store(connection, plan)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        # Committed: now, and only now, the broker and the devices may forget these.
        for message in batch:
            self._ack_broker(message)
        for device_id, ids in plan.acks.items():
            self._publish(
                device_topic(device_id, "ack"), json.dumps({"ids": ids}).encode(), 0, False
            )
        for topic in plan.retained_to_clear:
            self._cleared.add(topic)
            self._publish(topic, b"", 1, True)
        self.committed_messages += len(batch)
        COMMITTED.labels("reading").inc(len(readings))
        COMMITTED.labels("event").inc(len(events))
        if readings or events:
            committed = IngestedBatch(tuple(readings), tuple(events))
            for subscriber in self._subscribers:
                try:
                    await subscriber(committed)
                except Exception:
                    log.exception("a subscriber failed on a committed batch")

    async def _load_devices(self, batch: list[InboundMessage]) -> None:
        """Fill the device cache for the senders in the batch that it lacks or holds too long."""
        now = time.monotonic()
        wanted = set()
        for message in batch:
            device_id = _device_id_of(message.topic)
            cached = self._devices.get(device_id) if device_id else None
            if device_id and (cached is None or now - cached.seen_at > _DEVICE_CACHE_TTL_S):
                wanted.add(device_id)
        if not wanted:
            return
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(col(Device.id), col(Device.resident_id), col(Device.revoked_at)).where(
                    col(Device.id).in_(wanted)
                )
            )
        for device_id, resident_id, revoked_at in rows:
            self._devices[device_id] = _DeviceInfo(resident_id, revoked_at is not None, now)

    def _plan(self, batch: Iterable[InboundMessage]) -> _Plan:
        """Sort each message into rows, dead letters and acks."""
        plan = _Plan()
        for message in batch:
            self._plan_message(plan, message)
        return plan

    def _plan_message(self, plan: _Plan, message: InboundMessage) -> None:
        """One message: check topic and sender, then its channel's payload."""
        received_at = self._clock()
        try:
            topic = parse_topic(message.topic)
        except ContractError as err:
            _count("unknown", "dead_letter")
            plan.dead_letter(message, err.reason, _device_id_of(message.topic), message.payload)
            return
        if topic.channel != "status":
            if message.retain:
                # A retained reading or event replays to every new subscriber: it is stale.
                # Clear it from the broker and keep nothing.
                _count(topic.channel, "retained_ignored")
                plan.retained_to_clear.append(message.topic)
                return
            if not message.payload and message.topic in self._cleared:
                # The broker's echo of our own clearing of a retained message.
                self._cleared.discard(message.topic)
                return
        device_id = topic.device_id
        device = self._devices.get(device_id)
        if device is None and message.retain:
            # A retained status of a device that was never registered here (or was deleted)
            # replays on every start; one dead letter per start would say nothing new.
            _count(topic.channel, "retained_unknown")
            return
        if device is None or device.revoked:
            _count(topic.channel, "dead_letter")
            reason = "unknown device" if device is None else "device is revoked"
            plan.dead_letter(message, reason, device_id, message.payload)
            return
        if topic.channel != "status":
            plan.seen[device_id] = received_at
        if topic.channel == "reading":
            self._plan_readings(
                plan, message, device_id=device_id, device=device, received_at=received_at
            )
        elif topic.channel == "event":
            self._plan_event(
                plan, message, device_id=device_id, device=device, received_at=received_at
            )
        elif topic.channel == "status":
            self._plan_status(plan, message, device_id=device_id, received_at=received_at)
        else:
            self._plan_raw(
                plan,
                message,
                device_id=device_id,
                device=device,
                received_at=received_at,
                codec=topic.codec or "",
            )

    def _plan_status(
        self, plan: _Plan, message: InboundMessage, *, device_id: str, received_at: datetime
    ) -> None:
        """A status: online, battery, firmware; a Last Will is not a sign of life."""
        try:
            status = parse_status(message.payload)
        except ContractError as err:
            _count("status", "dead_letter")
            plan.dead_letter(message, err.reason, device_id, message.payload)
            return
        _count("status", "stored")
        plan.statuses[device_id] = status
        # A Last Will is the broker speaking for a device that is gone: not a sign of life.
        if status.online is not False:
            plan.seen[device_id] = received_at

    def _plan_readings(
        self,
        plan: _Plan,
        message: InboundMessage,
        device_id: str,
        device: _DeviceInfo,
        received_at: datetime,
    ) -> None:
        """A reading or a batch of readings; bad items become dead letters, still acked."""
        try:
            items = parse_readings(message.payload)
        except ContractError as err:
            _count("reading", "dead_letter")
            plan.dead_letter(message, err.reason, device_id, message.payload)
            return
        for item in items:
            if isinstance(item, Rejected):
                _count("reading", "dead_letter")
                plan.dead_letter(message, item.reason, device_id, item.raw)
                plan.ack(device_id, item.message_id)
                continue
            _count("reading", "stored")
            plan.readings.append(_reading_row(item, device_id, device, received_at))
            plan.ack(device_id, item.message_id)

    def _plan_event(
        self,
        plan: _Plan,
        message: InboundMessage,
        device_id: str,
        device: _DeviceInfo,
        received_at: datetime,
    ) -> None:
        """An event; an unreadable one is stored as ``unreadable_event`` so the alarm stays."""
        try:
            event = parse_event(message.payload)
        except ContractError as err:
            _count("event", "unreadable")
            plan.dead_letter(message, err.reason, device_id, message.payload)
            message_id = err.message_id or raw_message_id(message.payload)
            plan.events.append(
                {
                    "device_id": device_id,
                    "message_id": message_id,
                    "resident_id": device.resident_id,
                    "type": UNREADABLE_EVENT,
                    "data": {"reason": err.reason},
                    "device_ts": None,
                    "received_at": received_at,
                    "clock_skewed": False,
                    "alarm_handled_at": None,  # it may have been a panic
                }
            )
            plan.ack(device_id, err.message_id)
            return
        _count("event", "stored")
        plan.events.append(_event_row(event, device_id, device, received_at))
        plan.ack(device_id, event.message_id)

    def _plan_raw(
        self,
        plan: _Plan,
        message: InboundMessage,
        *,
        device_id: str,
        device: _DeviceInfo,
        received_at: datetime,
        codec: str,
    ) -> None:
        """Vendor bytes through firmware_bridge into canonical readings, events and status."""
        try:
            decoded = firmware_bridge.decode(codec, message.payload)
        except firmware_bridge.FirmwareBridgeError as err:
            _count("raw", "dead_letter")
            plan.dead_letter(message, f"cannot decode {codec}: {err}", device_id, message.payload)
            return
        message_id = raw_message_id(message.payload)
        for index, output in enumerate(decoded):
            item_id = message_id if len(decoded) == 1 else f"{message_id}.{index}"
            if isinstance(output, firmware_bridge.DecodedStatus):
                plan.statuses[device_id] = StatusIn(
                    online=True, battery=output.battery, firmware=None, extra={}
                )
                continue
            # Decoded values pass the same contract as JSON ones: a vendor's 20,000 mmHg is
            # as implausible as anybody's. GATT time stamps carry no zone, so none is kept.
            if isinstance(output, firmware_bridge.DecodedReading):
                document = {"id": item_id, "type": output.type, "values": dict(output.values)}
                encoded = json.dumps(document).encode()
                (item,) = parse_readings(encoded)
                if isinstance(item, Rejected):
                    _count("raw", "dead_letter")
                    plan.dead_letter(message, f"{codec}: {item.reason}", device_id, encoded)
                    continue
                plan.readings.append(_reading_row(item, device_id, device, received_at))
            else:
                document = {"id": item_id, "type": output.type, "data": dict(output.data)}
                try:
                    event = parse_event(json.dumps(document).encode())
                except ContractError as err:
                    _count("raw", "dead_letter")
                    plan.dead_letter(message, f"{codec}: {err.reason}", device_id, message.payload)
                    continue
                plan.events.append(_event_row(event, device_id, device, received_at))
        _count("raw", "stored")
        plan.ack(device_id, message_id)

    async def _store(
        self, connection: AsyncConnection, plan: _Plan
    ) -> tuple[list[CommittedReading], list[CommittedEvent]]:
        """Write the plan's rows in the open transaction; return what was new."""
        readings = [
            CommittedReading(*row)
            for row in await _insert_new(connection, Reading, Reading.values, plan.readings)
        ]
        events = [
            CommittedEvent(*row)
            for row in await _insert_new(connection, Event, Event.data, plan.events)
        ]
        if plan.dead_letters:
            await connection.execute(insert(DeadLetter), plan.dead_letters)
            DEAD_LETTERS.inc(len(plan.dead_letters))
        if plan.seen:
            await connection.execute(
                update(Device)
                .where(col(Device.id) == bindparam("device"))
                # The server's receive time, never the device's clock: a device whose
                # clock runs ahead cannot look alive in the future.
                .values(online=True, last_seen_at=bindparam("seen", type_=UTCDateTime)),
                [{"device": d, "seen": t} for d, t in plan.seen.items()],
            )
        for device_id, status in plan.statuses.items():
            values: dict[str, Any] = {}
            if status.online is not None:
                values["online"] = status.online
            if status.battery is not None:
                values["battery_pct"] = status.battery
            if status.firmware is not None:
                values["firmware"] = status.firmware
            if values:
                await connection.execute(
                    update(Device).where(col(Device.id) == device_id).values(**values)
                )
        return readings, events


async def _insert_new(
    connection: AsyncConnection,
    table: type[Reading] | type[Event],
    payload: Any,
    rows: list[dict[str, Any]],
) -> list[Any]:
    """Insert the rows whose (device id, message id) is not stored yet; return those, as
    (id, device, resident, type, payload, device time, receive time)."""
    if not rows:
        return []
    dialect = connection.dialect.name
    statement = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(table)
    result = await connection.execute(
        statement.on_conflict_do_nothing(index_elements=["device_id", "message_id"]).returning(
            *(col(c) for c in (table.id, table.device_id, table.resident_id, table.type)),
            col(payload),
            col(table.device_ts),
            col(table.received_at),
        ),
        rows,
    )
    return list(result)


def _skewed(device_ts: datetime | None, received_at: datetime) -> bool:
    """True when the device's clock is more than the limit off the server's."""
    return device_ts is not None and abs(device_ts - received_at) > CLOCK_SKEW_LIMIT


def _row(
    item: ReadingIn | EventIn, device_id: str, device: _DeviceInfo, received_at: datetime
) -> dict[str, Any]:
    """What readings and events share in their rows: sender, resident, both clocks."""
    return {
        "device_id": device_id,
        "message_id": item.message_id,
        "resident_id": device.resident_id,
        "type": item.type,
        "device_ts": item.device_ts,
        "received_at": received_at,
        "clock_skewed": _skewed(item.device_ts, received_at),
    }


def _reading_row(
    item: ReadingIn, device_id: str, device: _DeviceInfo, received_at: datetime
) -> dict[str, Any]:
    """The reading table row of a validated reading."""
    return {**_row(item, device_id, device, received_at), "values": item.values}


def _event_row(
    item: EventIn, device_id: str, device: _DeviceInfo, received_at: datetime
) -> dict[str, Any]:
    """The event table row of a validated event; only alarms wait for the alarm path."""
    is_alarm = item.type in ALARM_EVENT_TYPES or item.type not in EVENT_TYPES
    return {
        **_row(item, device_id, device, received_at),
        "data": item.data,
        "alarm_handled_at": None if is_alarm else received_at,
    }


def _device_id_of(topic: str) -> str | None:
    """The device id in a topic shaped like the contract's, for dead letters and lookups."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == "vaki" and parts[1] == "v1" and parts[2] == "d":
        return parts[3][:64] or None
    return None


def _count(channel: str, outcome: str) -> None:
    """Count one message by channel and outcome."""
    MESSAGES.labels(channel, outcome).inc()
