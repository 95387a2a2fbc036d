"""Rows as ingestion writes them: sender, resident, both clocks, and whether an alarm waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from care import utcnow
from devices.contract import (
    ALARM_EVENT_TYPES,
    CLOCK_SKEW_LIMIT,
    EVENT_TYPES,
    MAX_PAYLOAD_BYTES,
    UNREADABLE_EVENT,
    EventIn,
    ReadingIn,
    StatusIn,
)
from devices.mqtt import InboundMessage
from devices.raw_alarms import ALARM_KINDS

# Of an oversized payload the first bytes are kept: enough to see what it was.
DEAD_LETTER_PAYLOAD_MAX = 2 * MAX_PAYLOAD_BYTES


@dataclass(frozen=True)
class _DeviceInfo:
    """What ingestion needs to know of a device."""

    resident_id: int | None
    revoked: bool
    seen_at: float
    kind: str = ""

    @property
    def alarm_capable(self) -> bool:
        """True for a panic button, fall detector, smoke or water-leak sensor."""
        return self.kind in ALARM_KINDS


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
    # Devices whose unusable raw message raises an alarm in this batch.
    unreadable_raised: set[str] = field(default_factory=set)
    # Echoes of our own clearing of retained messages, seen in this batch.
    echoes: list[str] = field(default_factory=list)

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
                # Bounded, whatever came in (an external broker may pass megabytes).
                "payload": payload[:DEAD_LETTER_PAYLOAD_MAX],
            }
        )

    def ack(self, device_id: str, message_id: str | None) -> None:
        """Owe the device an ack for this id once committed."""
        if message_id is not None:
            self.acks.setdefault(device_id, []).append(message_id)


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


def _unreadable_row(
    message_id: str,
    device_id: str,
    device: _DeviceInfo,
    received_at: datetime,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The event table row of an ``unreadable_event``: it may have been a panic, so it waits
    for the alarm path."""
    return {
        "device_id": device_id,
        "message_id": message_id,
        "resident_id": device.resident_id,
        "type": UNREADABLE_EVENT,
        "data": data,
        "device_ts": None,
        "received_at": received_at,
        "clock_skewed": False,
        "alarm_handled_at": None,
    }


def _device_id_of(topic: str) -> str | None:
    """The device id in a topic shaped like the contract's, for dead letters and lookups."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == "vaki" and parts[1] == "v1" and parts[2] == "d":
        return parts[3][:64] or None
    return None
