"""Simulated homes: plausible, reproducible days, and a real service that stores all of it."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from homesim import PlannedAction, SimulatedDevice, SimulatedHome, Simulator
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings
from tests.homesim.test_device import forget_on_broker

# The plausible ranges of docs/mqtt.md, copied from the document rather than the code.
DOC_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "blood_pressure": {
        "systolic": (40, 300),
        "diastolic": (20, 200),
        "pulse": (20, 250),
        "mean_arterial": (30, 250),
    },
    "weight": {"weight": (20, 350), "bmi": (8, 90), "height": (0.5, 2.5)},
    "spo2": {"spo2": (50, 100), "pulse": (20, 250)},
    "heart_rate": {"heart_rate": (20, 250)},
    "temperature": {"temperature": (25, 45)},
    "glucose": {"glucose": (0.5, 50)},
    "steps": {"steps": (0, 100_000)},
}
REQUIRED = {
    "blood_pressure": {"systolic", "diastolic"},
    "weight": {"weight"},
    "spo2": {"spo2"},
    "heart_rate": {"heart_rate"},
    "temperature": {"temperature"},
    "glucose": {"glucose"},
    "steps": {"steps"},
}
# (home, time zone, scenarios, device kinds)
HOMES: list[tuple[str, str, frozenset[str], tuple[str, ...]]] = [
    (
        "Skálholt",
        "Atlantic/Reykjavik",
        frozenset({"fall_at_night"}),
        (
            *("home_hub", "blood_pressure_monitor", "scale", "motion_sensor"),
            *("door_sensor", "bed_sensor", "fall_detector"),
        ),
    ),
    (
        "Bergen",
        "Europe/Oslo",
        frozenset({"hypertensive_crisis", "panic"}),
        (
            *("tablet", "blood_pressure_monitor", "pulse_oximeter", "motion_sensor"),
            *("door_sensor", "bed_sensor", "panic_button", "activity_tracker"),
        ),
    ),
    (
        "Leeds",
        "Europe/London",
        frozenset({"device_goes_silent"}),
        (
            *("home_hub", "thermometer", "glucose_meter", "motion_sensor"),
            *("door_sensor", "bed_sensor", "scale"),
        ),
    ),
]


def offline_homes() -> list[SimulatedHome]:
    """The test homes with made-up credentials, for planning without a broker."""
    return [
        SimulatedHome(
            name,
            zone,
            tuple(SimulatedDevice(f"{name}-{kind}", kind, "pw") for kind in kinds),
            scenarios,
        )
        for name, zone, scenarios, kinds in HOMES
    ]


def last_0200_utc() -> datetime:
    """The most recent 02:00 UTC, which is 02:00 in Reykjavik: the night before a fall."""
    now = datetime.now(UTC)
    start = datetime.combine(now.date(), time(2), tzinfo=UTC)
    return start if start <= now else start - timedelta(days=1)


def check_reading(action: PlannedAction) -> None:
    """A planned reading has exactly the contract's keys, numbers, and values in range."""
    ranges = DOC_RANGES[action.type]
    values = {k: v for k, v in action.content.items() if v is not None}
    assert REQUIRED[action.type] <= set(values) <= set(ranges), action
    for key, value in values.items():
        assert isinstance(value, int | float), action
        assert not isinstance(value, bool), action
        low, high = ranges[key]
        assert low <= value <= high, action
    if action.type == "blood_pressure":
        assert values["systolic"] > values["diastolic"], action
    if action.type == "steps":
        assert isinstance(values["steps"], int), action


def test_days_are_plausible_and_reproducible() -> None:
    """Three planned days: in range, on schedule, in local time, the same for the same seed."""
    start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # over the spring DST change in Europe
    until = start + timedelta(days=3)
    plan = Simulator(offline_homes(), "127.0.0.1", 1, seed=7, start=start).planned(until)
    again = Simulator(offline_homes(), "127.0.0.1", 1, seed=7, start=start).planned(until)
    other = Simulator(offline_homes(), "127.0.0.1", 1, seed=8, start=start).planned(until)
    assert plan == again
    assert plan != other
    assert all(start <= a.at <= until for a in plan)
    assert plan == sorted(plan, key=lambda a: a.at)

    for action in plan:
        if action.operation == "reading":
            check_reading(action)

    def local(action: PlannedAction) -> datetime:
        """The action's time in its home's time zone."""
        zone = next(ZoneInfo(z) for n, z, _, _ in HOMES if action.device_id.startswith(n))
        return action.at.astimezone(zone)

    by = Counter((a.device_id.split("-")[0], a.type) for a in plan)
    # Three days: blood pressure twice a day, weight every morning, a fall every night.
    assert by["Skálholt", "blood_pressure"] == 6
    assert by["Skálholt", "weight"] == 3
    assert by["Skálholt", "fall"] == 3
    assert all((local(a).hour, local(a).minute) == (3, 0) for a in plan if a.type == "fall"), (
        "the fall is at 03:00 local time"
    )
    # The crisis adds one high reading a day; panic presses come now and then.
    crises = [a for a in plan if a.type == "blood_pressure" and a.content["systolic"] >= 180]
    assert len(crises) == 3
    assert all(a.device_id.startswith("Bergen") for a in crises)
    assert by["Bergen", "panic"] >= 1
    # Getting up in the morning, going to bed at night, motion while awake.
    for action in plan:
        hour = local(action).hour
        if action.type == "bed_enter" and not action.device_id.startswith("Skálholt"):
            assert hour >= 21 or hour < 5, action
        if action.type == "motion":
            # The homes' one motion sensor is in the kitchen: quiet at night.
            assert not 0 <= hour < 5, action
    exits = [local(a).hour for a in plan if a.type == "bed_exit"]
    assert sum(5 <= h < 9 for h in exits) == 9  # every home, every morning
    # Every real quarter hour, also over the 23-hour DST day.
    quarters = [a.at for a in plan if a.device_id.startswith("Bergen") and a.type == "steps"]
    assert len(quarters) == by["Bergen", "heart_rate"] >= 3 * 92
    assert {b - a for a, b in itertools.pairwise(quarters)} == {timedelta(minutes=15)}
    assert by["Leeds", "door_open"] == by["Leeds", "door_closed"] >= 6
    # One device in Leeds dies, once.
    (silence,) = [a for a in plan if a.operation == "silence"]
    assert silence.device_id.startswith("Leeds")
    assert silence.kind == "motion_sensor"


@pytest.fixture
async def service(
    settings: Settings, mosquitto: tuple[str, int]
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], list[SimulatedHome]]]:
    """The real service on the shared Mosquitto, with the test homes provisioned."""
    host, port = mosquitto
    settings.mqtt_url = f"mqtt://{host}:{port}"
    settings.mqtt_session_expiry_s = 60
    app = create_app(settings)
    homes: list[SimulatedHome] = []
    async with AsyncTestClient(app=app):
        # Not the service's engine: the app runs on AsyncTestClient's own loop and thread.
        engine = create_engine(settings.effective_database_url)
        sessions = session_factory(engine)
        try:
            async with sessions() as session:
                for name, zone, scenarios, kinds in HOMES:
                    resident = care.Resident(full_name=f"Resident of {name}")
                    session.add(resident)
                    await session.flush()
                    simulated = []
                    for kind in kinds:
                        provisioned = await devices.provision_device(
                            session,
                            kind=devices.DeviceKind(kind),
                            resident_id=resident.id,
                            device_id=f"sim-{kind[:6]}-{uuid.uuid4().hex[:10]}",
                        )
                        simulated.append(
                            SimulatedDevice(provisioned.device.id, kind, provisioned.secret)
                        )
                    homes.append(SimulatedHome(name, zone, tuple(simulated), scenarios))
                await session.commit()
            yield sessions, homes
        finally:
            ids = [d.device_id for home in homes for d in home.devices]
            await asyncio.to_thread(forget_on_broker, host, port, ids)
            await engine.dispose()


async def rows(
    sessions: async_sessionmaker[AsyncSession],
    model: type[devices.Reading] | type[devices.Event] | type[devices.DeadLetter],
    device_ids: list[str],
) -> list[Any]:
    """The rows of a table from the given devices."""
    async with sessions() as session:
        found = await session.exec(select(model).where(col(model.device_id).in_(device_ids)))
        return list(found.all())


@pytest.mark.mosquitto
async def test_three_homes_at_two_hours_a_second(
    service: tuple[async_sessionmaker[AsyncSession], list[SimulatedHome]],
    mosquitto: tuple[str, int],
) -> None:
    """Ten simulated hours of three homes are stored exactly once, with their scenarios."""
    sessions, homes = service
    start = last_0200_utc()
    simulator = Simulator(
        homes, *mosquitto, speed=7200, seed=3, start=start, settle_s=60, resend_first_s=2.0
    )
    # 5 real seconds are 10 simulated hours: 02:00 to about noon in Reykjavik.
    async with asyncio.timeout(180):
        await simulator.run(duration_s=5.0)

    ids = [d.device_id for home in homes for d in home.devices]
    assert await rows(sessions, devices.DeadLetter, ids) == []
    readings = await rows(sessions, devices.Reading, ids)
    events = await rows(sessions, devices.Event, ids)
    reading_types = {r.type for r in readings}
    event_types = {e.type for e in events}
    assert {"blood_pressure", "weight", "spo2", "temperature", "glucose"} <= reading_types
    assert {"steps", "heart_rate"} <= reading_types
    assert {"motion", "door_open", "door_closed", "bed_exit", "fall", "panic"} <= event_types

    # Everything published was acked and stored exactly once, device by device.
    stats = simulator.stats
    (silent_id,) = simulator.silenced
    stored = Counter(row.device_id for row in [*readings, *events])
    for device_id, device in simulator.devices.items():
        if device_id != silent_id:
            assert device.outbox_size == 0, device_id
            assert stored[device_id] == stats.published_by_device[device_id], device_id
    assert stats.published["status"] > 0

    # fall_at_night: the fall detector in Skálholt, at 03:00 there.
    skalholt = {d.device_id: d.kind for d in homes[0].devices}
    (fall,) = [e for e in events if e.type == "fall"]
    assert skalholt[fall.device_id] == "fall_detector"
    assert fall.device_ts == start + timedelta(hours=1)
    assert 0 <= fall.data["confidence"] <= 1
    # hypertensive_crisis in Bergen.
    bergen = {d.device_id for d in homes[1].devices}
    assert any(
        r.type == "blood_pressure" and r.values["systolic"] >= 180 and r.device_id in bergen
        for r in readings
    )
    # device_goes_silent: a Leeds device died without a goodbye and sent nothing after.
    assert silent_id in {d.device_id for d in homes[2].devices}
    assert not any(
        row.device_id == silent_id and row.device_ts > simulator.silenced[silent_id]
        for row in [*readings, *events]
    )
    async with sessions() as session:
        silent = await session.get(devices.Device, silent_id)
        assert silent is not None
        assert not silent.online
        assert silent.battery_pct is not None
        assert silent.battery_pct <= 5


def test_each_motion_sensor_reports_its_own_room() -> None:
    """Motion sensors are in the kitchen, the hall, ... in order; each reports only its room."""
    sensors = tuple(SimulatedDevice(f"m{n}", "motion_sensor", "pw") for n in range(3))
    home = SimulatedHome("Akureyri", "Atlantic/Reykjavik", sensors)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    plan = Simulator([home], "127.0.0.1", 1, start=start).planned(start + timedelta(days=2))
    rooms = {(a.device_id, a.content["room"]) for a in plan if a.type == "motion"}
    assert rooms == {("m0", "kitchen"), ("m1", "hall"), ("m2", "living_room")}
