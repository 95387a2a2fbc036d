"""The contract's tables: limits, channels, and every reading and event type with its fields.

The event table is the one place that says which event types are alarms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_BATCH = 500
# Beyond this the device's clock is flagged as wrong; the server's receive time is kept anyway.
CLOCK_SKEW_LIMIT = timedelta(minutes=5)
_MESSAGE_ID_CHARS = "A-Za-z0-9._:-"
MESSAGE_ID_PATTERN = re.compile(f"[{_MESSAGE_ID_CHARS}]{{1,64}}")
MAX_FIRMWARE_LENGTH = 64
# DeadLetter.reason holds 500 characters; a reason never needs more than a sentence or three.
MAX_REASON_LENGTH = 500

Channel = Literal["reading", "event", "status", "raw"]
_DEVICE_CHANNELS: Mapping[str, Channel] = {
    "reading": "reading",
    "event": "event",
    "status": "status",
}
_SERVER_CHANNELS = frozenset({"ack", "cmd"})
_CODEC_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ID_RULE = "id must be 1–64 characters from A–Z, a–z, 0–9 and . _ : -"
# Shown in a reason instead of a long string or a deep structure the device sent.
_CLIP = 40
_MAX_ERRORS_SHOWN = 3


# --- what parsing returns -----------------------------------------------------------------


@dataclass(frozen=True)
class TopicParts:
    """A device topic taken apart: whose it is, which channel, and the codec of ``raw/{codec}``."""

    device_id: str
    channel: Channel
    codec: str | None


@dataclass(frozen=True)
class ReadingIn:
    """One valid reading, values in the contract's units, ``device_ts`` in UTC when sent."""

    message_id: str
    type: str
    values: dict[str, float | int]
    device_ts: datetime | None


@dataclass(frozen=True)
class EventIn:
    """One valid event; ``data`` keeps every key sent, known ones checked."""

    message_id: str
    type: str
    data: dict[str, Any]
    device_ts: datetime | None


@dataclass(frozen=True)
class StatusIn:
    """A device's retained status; ``None`` where a field was not sent."""

    online: bool | None
    battery: int | None
    firmware: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """One unusable item of an otherwise readable payload, kept for a dead letter."""

    message_id: str | None
    reason: str
    raw: bytes


# --- the reading and event types ----------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One value of a reading: its unit and the range that is physically possible."""

    unit: str
    minimum: float
    maximum: float
    required: bool
    description: str
    # Counts (steps) are whole numbers; everything else may have decimals.
    integer: bool = False


@dataclass(frozen=True)
class ReadingSpec:
    """A reading type and its value fields."""

    type: str
    description: str
    fields: Mapping[str, FieldSpec]


@dataclass(frozen=True)
class DataFieldSpec:
    """One known key of an event's ``data``."""

    kind: Literal["string", "number", "object"]
    required: bool
    description: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class EventSpec:
    """An event type, whether it is an alarm, and the known keys of its ``data``."""

    type: str
    description: str
    alarm: bool
    fields: Mapping[str, DataFieldSpec]


def _reading(type_: str, description: str, **fields: FieldSpec) -> ReadingSpec:
    """A reading type with its fields in the order firmware developers read them."""
    return ReadingSpec(type_, description, MappingProxyType(fields))


def _event(type_: str, description: str, *, alarm: bool, **fields: DataFieldSpec) -> EventSpec:
    """An event type with the known keys of its data."""
    return EventSpec(type_, description, alarm, MappingProxyType(fields))


# Plausibility ranges say what a body or a device can physically produce, so that a unit
# mix-up (kPa for mmHg, lb for kg, °F for °C) is caught; they are not clinical thresholds.
_PULSE = FieldSpec("bpm", 20, 250, required=False, description="Pulse rate")
READING_TYPES: Mapping[str, ReadingSpec] = MappingProxyType(
    {
        spec.type: spec
        for spec in (
            _reading(
                "blood_pressure",
                "A blood pressure measurement; systolic must be above diastolic.",
                systolic=FieldSpec("mmHg", 40, 300, required=True, description="Systolic pressure"),
                diastolic=FieldSpec(
                    "mmHg", 20, 200, required=True, description="Diastolic pressure"
                ),
                pulse=_PULSE,
                mean_arterial=FieldSpec(
                    "mmHg", 30, 250, required=False, description="Mean arterial pressure"
                ),
            ),
            _reading(
                "weight",
                "A body weight measurement from a scale.",
                weight=FieldSpec("kg", 20, 350, required=True, description="Body weight"),
                bmi=FieldSpec("kg/m²", 8, 90, required=False, description="Body mass index"),
                height=FieldSpec("m", 0.5, 2.5, required=False, description="Body height"),
            ),
            _reading(
                "spo2",
                "A blood oxygen saturation measurement from a pulse oximeter.",
                spo2=FieldSpec("%", 50, 100, required=True, description="Oxygen saturation"),
                pulse=_PULSE,
            ),
            _reading(
                "heart_rate",
                "A heart rate measurement.",
                heart_rate=FieldSpec("bpm", 20, 250, required=True, description="Heart rate"),
            ),
            _reading(
                "temperature",
                "A body temperature measurement.",
                temperature=FieldSpec("°C", 25, 45, required=True, description="Body temperature"),
            ),
            _reading(
                "glucose",
                "A blood glucose measurement.",
                glucose=FieldSpec(
                    "mmol/L", 0.5, 50, required=True, description="Blood glucose concentration"
                ),
            ),
            _reading(
                "steps",
                "Steps counted since the previous steps reading.",
                steps=FieldSpec(
                    "count",
                    0,
                    100_000,
                    required=True,
                    description="Number of steps",
                    integer=True,
                ),
            ),
        )
    }
)

_DOOR = DataFieldSpec("string", required=False, description='Which door, e.g. "front"')
_PROMPT_ID = DataFieldSpec(
    "string", required=True, description="The id of the prompt from the cmd topic"
)
EVENT_TYPES: Mapping[str, EventSpec] = MappingProxyType(
    {
        spec.type: spec
        for spec in (
            _event("panic", "The resident pressed a panic button or pendant.", alarm=True),
            _event(
                "fall",
                "A fall detector detected a fall.",
                alarm=True,
                confidence=DataFieldSpec(
                    "number",
                    required=False,
                    description="How sure the detector is, from 0 to 1",
                    minimum=0,
                    maximum=1,
                ),
            ),
            _event("help_request", 'The resident pressed "I need help" on the tablet.', alarm=True),
            _event("door_open", "A door was opened.", alarm=False, door=_DOOR),
            _event("door_closed", "A door was closed.", alarm=False, door=_DOOR),
            _event(
                "motion",
                "A motion sensor saw movement.",
                alarm=False,
                room=DataFieldSpec("string", required=False, description='Which room, e.g. "hall"'),
            ),
            _event("bed_exit", "The resident got out of bed.", alarm=False),
            _event("bed_enter", "The resident got into bed.", alarm=False),
            _event("smoke", "A smoke detector went off.", alarm=True),
            _event("water_leak", "A water leak sensor got wet.", alarm=True),
            _event(
                "checkin_answer",
                "The resident answered a check-in prompt on the tablet.",
                alarm=False,
                prompt_id=_PROMPT_ID,
                answer=DataFieldSpec(
                    "string", required=True, description='The answer chosen, e.g. "good"'
                ),
                answers=DataFieldSpec(
                    "object",
                    required=False,
                    description="Answers to the prompt's follow-up questions, by question id",
                ),
            ),
            _event(
                "reminder_ack",
                "The resident confirmed a reminder on the tablet.",
                alarm=False,
                prompt_id=_PROMPT_ID,
            ),
            _event("call_request", "The resident asked the care team to call.", alarm=False),
        )
    }
)

# What an event that could not be read is stored as: it may have been a panic, so it is an alarm.
UNREADABLE_EVENT = "unreadable_event"
# Every event type that is an alarm: the single source for ingestion (which keeps such events
# waiting for the alarm path) and for the alert rules (which raise an alert for each).
ALARM_EVENT_TYPES: frozenset[str] = frozenset(
    {type_ for type_, spec in EVENT_TYPES.items() if spec.alarm} | {UNREADABLE_EVENT}
)
