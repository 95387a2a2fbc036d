"""The device registry and what devices send: readings, events and dead letters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, LargeBinary, String, UniqueConstraint, text
from sqlmodel import Field, Index, SQLModel

from care import BigIntId, UTCDateTime, utcnow


class DeviceKind(StrEnum):
    """What a device is; decides what it may send and how often it should be heard from."""

    TABLET = "tablet"
    HOME_HUB = "home_hub"
    BLOOD_PRESSURE_MONITOR = "blood_pressure_monitor"
    SCALE = "scale"
    PULSE_OXIMETER = "pulse_oximeter"
    THERMOMETER = "thermometer"
    GLUCOSE_METER = "glucose_meter"
    ACTIVITY_TRACKER = "activity_tracker"
    MOTION_SENSOR = "motion_sensor"
    DOOR_SENSOR = "door_sensor"
    BED_SENSOR = "bed_sensor"
    PANIC_BUTTON = "panic_button"
    FALL_DETECTOR = "fall_detector"
    SMOKE_DETECTOR = "smoke_detector"
    WATER_LEAK_SENSOR = "water_leak_sensor"


# How often a device of each kind should be heard from (seconds); silence beyond a
# multiple of this is an alarm. Measuring devices report status hourly even when unused.
EXPECTED_INTERVAL_S: dict[DeviceKind, int] = {
    DeviceKind.TABLET: 300,
    DeviceKind.HOME_HUB: 300,
    DeviceKind.BLOOD_PRESSURE_MONITOR: 3600,
    DeviceKind.SCALE: 3600,
    DeviceKind.PULSE_OXIMETER: 3600,
    DeviceKind.THERMOMETER: 3600,
    DeviceKind.GLUCOSE_METER: 3600,
    DeviceKind.ACTIVITY_TRACKER: 900,
    DeviceKind.MOTION_SENSOR: 900,
    DeviceKind.DOOR_SENSOR: 900,
    DeviceKind.BED_SENSOR: 900,
    DeviceKind.PANIC_BUTTON: 900,
    DeviceKind.FALL_DETECTOR: 900,
    DeviceKind.SMOKE_DETECTOR: 3600,
    DeviceKind.WATER_LEAK_SENSOR: 3600,
}


class Device(SQLModel, table=True):
    """A sensor, measuring device, pendant or tablet in a resident's home."""

    __tablename__ = "device"

    # The device id is also its MQTT username and client id.
    id: str = Field(primary_key=True, max_length=64)
    kind: DeviceKind = Field(sa_type=String(32))
    resident_id: int | None = Field(
        default=None, foreign_key="resident.id", index=True, ondelete="SET NULL"
    )
    label: str = Field(default="", max_length=200)
    secret_hash: str = Field(max_length=255)
    # The same secret as mosquitto_passwd hashes it, for exporting to an external broker.
    broker_password_hash: str | None = Field(default=None, max_length=255)
    expected_interval_s: int = Field(default=900)
    online: bool = Field(default=False)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    battery_pct: int | None = Field(default=None)
    firmware: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Dead letters of this device deleted to keep only the newest (see devices.ingest).
    dead_letters_dropped: int = Field(default=0, sa_type=BigInteger)


class Reading(SQLModel, table=True):
    """One measurement (blood pressure, weight, SpO2, ...) committed from a device."""

    __tablename__ = "reading"
    __table_args__ = (
        UniqueConstraint("device_id", "message_id", name="uq_reading_device_message"),
        Index("ix_reading_resident_type_time", "resident_id", "type", "received_at"),
    )

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    device_id: str = Field(foreign_key="device.id", max_length=64)
    # The device's own id of the message: with device_id, the key that makes ingestion idempotent.
    message_id: str = Field(max_length=64)
    resident_id: int | None = Field(default=None, foreign_key="resident.id")
    type: str = Field(max_length=32)
    values: dict[str, Any] = Field(sa_type=JSON)
    device_ts: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    clock_skewed: bool = Field(default=False)


class Event(SQLModel, table=True):
    """Something that happened at home: panic, fall, door, motion, bed, check-in answer, ..."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("device_id", "message_id", name="uq_event_device_message"),
        Index("ix_event_resident_type_time", "resident_id", "type", "received_at"),
        # Alarm events the alarm path has not yet turned into an alert: kept small.
        Index(
            "ix_event_alarm_unhandled",
            "received_at",
            sqlite_where=text("alarm_handled_at IS NULL"),
            postgresql_where=text("alarm_handled_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    device_id: str = Field(foreign_key="device.id", max_length=64)
    message_id: str = Field(max_length=64)
    resident_id: int | None = Field(default=None, foreign_key="resident.id")
    type: str = Field(max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    device_ts: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    clock_skewed: bool = Field(default=False)
    # Set when the alarm path has seen the event (an alert raised or counted, or nothing to
    # raise); a sweep picks up any alarm event left unhandled, so none is ever lost.
    alarm_handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeadLetter(SQLModel, table=True):
    """A message Vaki could not accept, kept with the reason and its raw bytes."""

    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    topic: str = Field(max_length=1024)
    # No foreign key: the sender may be unknown or the topic outside the contract.
    device_id: str | None = Field(default=None, max_length=64, index=True)
    reason: str = Field(max_length=500)
    payload: bytes = Field(sa_type=LargeBinary)
