"""Canonical outputs of the decoders, matching the MQTT contract's type names, keys and units."""

from dataclasses import dataclass, field
from datetime import datetime

# Reading types and their value keys: systolic/diastolic/mean_arterial (mmHg), pulse and
# heart_rate (bpm), weight (kg), bmi (kg/m²), height (m), spo2 (%), temperature (°C),
# glucose (mmol/L), steps (count).
READING_TYPES: tuple[str, ...] = (
    "blood_pressure",
    "weight",
    "spo2",
    "heart_rate",
    "temperature",
    "glucose",
    "steps",
)
EVENT_TYPES: tuple[str, ...] = ("door_open", "door_closed", "motion", "water_leak", "smoke")


@dataclass(frozen=True)
class DecodedReading:
    """One measurement in canonical units.

    ``ts`` is the device's own wall-clock time when the payload carries one: GATT Date Time has
    no time zone, so it is naive and in the device's local time. ``None`` means "use the time
    of receipt". ``meta`` holds what is not a value: user id, status flags, sample location...
    """

    type: str
    values: dict[str, float]
    ts: datetime | None = None
    meta: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DecodedEvent:
    """Something that happened in the home (a door opened, motion, a leak, smoke)."""

    type: str
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DecodedStatus:
    """Device health as reported alongside its data: battery percentage and link quality."""

    battery: int | None = None
    battery_low: bool | None = None
    link_quality: int | None = None


Decoded = DecodedReading | DecodedEvent | DecodedStatus
