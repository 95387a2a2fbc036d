"""What one commit hands on: the readings and events it newly stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
