"""The MQTT contract v1 as a device sees it, written from docs/mqtt.md alone.

Firmware cannot import the server, so this is the simulated firmware's own copy of what
the public document says: the topic prefix, the size limits, the kinds of device with how
often each must publish, the plausible range of every reading value, and how times,
payloads and raw-payload ids are written. A test compares it with the server's tables so
the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TOPIC_PREFIX = "vaki/v1/d"
MAX_PAYLOAD_BYTES = 65_536
MAX_BATCH_ITEMS = 500
SESSION_EXPIRY_S = 86_400
OFFLINE_STATUS = b'{"online":false}'
BATCH_HEAD, BATCH_TAIL = b'{"batch":[', b"]}"

# The device kinds of docs/mqtt.md, with the doc's "publish at least every" (s).
EXPECTED_INTERVAL_S: Mapping[str, int] = {
    "tablet": 300,
    "home_hub": 300,
    "blood_pressure_monitor": 3600,
    "scale": 3600,
    "pulse_oximeter": 3600,
    "thermometer": 3600,
    "glucose_meter": 3600,
    "activity_tracker": 900,
    "motion_sensor": 900,
    "door_sensor": 900,
    "bed_sensor": 900,
    "panic_button": 900,
    "fall_detector": 900,
    "smoke_detector": 3600,
    "water_leak_sensor": 3600,
}
KINDS = frozenset(EXPECTED_INTERVAL_S)
# The contract's plausible ranges, to keep noise from ever producing a dead letter.
RANGES: Mapping[str, tuple[float, float]] = {
    "systolic": (40, 300),
    "diastolic": (20, 200),
    "pulse": (20, 250),
    "weight": (20, 350),
    "bmi": (8, 90),
    "spo2": (50, 100),
    "heart_rate": (20, 250),
    "temperature": (25, 45),
    "glucose": (0.5, 50),
    "steps": (0, 100_000),
}


def utc_now() -> datetime:
    """The current time in UTC: the default device clock."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """Format a time as the contract wants it: RFC 3339 in UTC with a Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        # The server refuses a time without an offset; fail here, where the bug is.
        raise ValueError("ts has no time zone offset")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def compact_json(document: Any) -> bytes:
    """JSON without spaces: 500 readings only fit in 64 KiB as compact JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def raw_id(payload: bytes) -> str:
    """The id the server acks a raw payload under: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(payload).hexdigest()[:32]
