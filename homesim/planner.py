"""The day planner: one local day of one home turned into what its devices do, and when.

A resident's day runs around per-home baselines plus noise: getting up, measurements on a
schedule, moving about (more around meals), going out, going to bed, now and then getting
up at night; scenarios add a fall at 03:00, a hypertensive crisis, panic presses or a
device that goes silent. Values always lie in the contract's ranges.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from homesim.contract import RANGES
from homesim.device import VirtualDevice
from homesim.homes import SimulatedDevice, SimulatedHome

# Battery drain in % per simulated hour; None is mains power. The tablet is recharged.
_DRAIN_PER_H: Mapping[str, float | None] = {
    "tablet": 3.0,
    "home_hub": None,
    "activity_tracker": 0.8,
    "blood_pressure_monitor": 0.02,
    "scale": 0.01,
    "pulse_oximeter": 0.02,
    "thermometer": 0.01,
    "glucose_meter": 0.02,
    "motion_sensor": 0.03,
    "door_sensor": 0.02,
    "bed_sensor": 0.03,
    "panic_button": 0.01,
    "fall_detector": 0.05,
    "smoke_detector": 0.005,
    "water_leak_sensor": 0.005,
}
# The device that dies in "device_goes_silent": the first of these kinds the home has.
_SILENCE_PREFERENCE = (
    "motion_sensor",
    "door_sensor",
    "bed_sensor",
    "panic_button",
    "fall_detector",
    "activity_tracker",
    "smoke_detector",
    "water_leak_sensor",
)
_MOTION_ROOMS = ("kitchen", "hall", "living_room", "bathroom", "bedroom")


@dataclass(frozen=True)
class Baseline:
    """One resident's normal values and habits; each day varies around them."""

    systolic: float
    diastolic: float
    pulse: float
    weight: float
    height: float
    spo2: float
    temperature: float
    glucose: float
    wake_h: float
    bed_h: float
    night_exit_chance: float

    @classmethod
    def draw(cls, rng: random.Random) -> Baseline:
        """A plausible resident aged 60+."""
        systolic = rng.uniform(118, 158)
        return cls(
            systolic=systolic,
            diastolic=systolic * rng.uniform(0.55, 0.65),
            pulse=rng.uniform(60, 80),
            weight=rng.uniform(55, 98),
            height=rng.uniform(1.55, 1.85),
            spo2=rng.uniform(94, 98),
            temperature=rng.uniform(36.3, 36.9),
            glucose=rng.uniform(5.0, 7.8),
            wake_h=rng.uniform(6.0, 7.5),
            bed_h=rng.uniform(21.5, 23.0),
            night_exit_chance=rng.uniform(0.3, 0.8),
        )


Operation = Literal["reading", "batch", "event", "low_battery", "silence"]
ReadingItem = tuple[str, Mapping[str, float | None], datetime]


@dataclass(frozen=True, order=True)
class Action:
    """Something a device does at a simulated moment."""

    at: datetime
    seq: int
    device: int = field(compare=False)  # index into Simulator._states
    operation: Operation = field(compare=False)
    type: str = field(compare=False, default="")
    content: Mapping[str, Any] = field(compare=False, default_factory=dict)
    batch: tuple[ReadingItem, ...] = field(compare=False, default=())


@dataclass
class DeviceState:
    """A running device and what the scheduler needs to know about it."""

    spec: SimulatedDevice
    home: int
    device: VirtualDevice
    battery_start: float
    rssi: int
    silent: bool = False
    battery_override: int | None = None
    last_battery: int | None = None
    next_status_at: datetime | None = None
    last_status_real: float = -math.inf
    last_publish_real: float = -math.inf
    pending: dict[str, str] = field(default_factory=dict)  # message id -> type, until acked

    def battery(self, elapsed_h: float) -> int | None:
        """Battery in % after elapsed_h simulated hours; None on mains power."""
        if self.battery_override is not None:
            return self.battery_override
        drain = _DRAIN_PER_H[self.spec.kind]
        if drain is None:
            return None
        # A sawtooth between 100 and 20: someone charges it or changes the batteries.
        used = (100 - self.battery_start + drain * elapsed_h) % 80
        return round(100 - used)


@dataclass
class HomeState:
    """A home's resident, random stream and how far its days are planned."""

    spec: SimulatedHome
    zone: ZoneInfo
    rng: random.Random
    baseline: Baseline
    by_kind: dict[str, list[int]]
    next_day: date
    planned_until: datetime
    crisis_done: bool = False
    silence_planned: bool = False


def _clamp(name: str, value: float, digits: int = 0) -> float:
    """Round and keep a value inside the contract's range; whole numbers go out as integers."""
    low, high = RANGES[name]
    value = min(max(value, low), high)
    return round(value, digits) if digits else round(value)


def _blood_pressure(
    rng: random.Random, systolic: float, diastolic: float, pulse: float
) -> dict[str, float | None]:
    """A blood pressure reading; systolic stays above diastolic, as the contract requires."""
    s = _clamp("systolic", systolic)
    d = min(_clamp("diastolic", diastolic), s - 10)
    return {"systolic": s, "diastolic": d, "pulse": _clamp("pulse", pulse + rng.gauss(0, 3))}


class DayPlanner:
    """Turns one local day of one home into device actions."""

    def __init__(self, home: HomeState, day: date, first_at: datetime, seq: Iterator[int]) -> None:
        """Plan one local day; nothing before first_at (the start of the simulation)."""
        self.home, self.day, self.first_at, self._seq = home, day, first_at, seq
        self.rng, self.base = home.rng, home.baseline
        self.midnight = datetime(day.year, day.month, day.day, tzinfo=home.zone)
        self.actions: list[Action] = []

    def at(self, hour: float) -> datetime:
        """The UTC moment of a local hour of this day (wall clock, so DST days work)."""
        return (self.midnight + timedelta(hours=hour)).astimezone(UTC)

    def device(self, kind: str, index: int = 0) -> int | None:
        """The home's index-th device of a kind, if it has one."""
        found = self.home.by_kind.get(kind, [])
        return found[index] if index < len(found) else None

    def add(
        self,
        moment: datetime,
        kind: str,
        operation: Operation,
        type: str = "",
        content: Mapping[str, Any] | None = None,
        *,
        batch: tuple[ReadingItem, ...] = (),
        index: int = 0,
    ) -> None:
        """Plan an action for the home's device of a kind; skipped when it has none or too early."""
        device = self.device(kind, index)
        if device is None or moment < self.first_at:
            return
        self.actions.append(
            Action(moment, next(self._seq), device, operation, type, content or {}, batch)
        )

    def reading(self, hour: float, kind: str, type: str, values: dict[str, float | None]) -> None:
        """Plan a reading at a local hour."""
        self.add(self.at(hour), kind, "reading", type, values)

    def event(
        self,
        hour: float,
        kind: str,
        type: str,
        data: dict[str, Any] | None = None,
        *,
        index: int = 0,
    ) -> None:
        """Plan an event at a local hour for the home's index-th device of a kind."""
        self.add(self.at(hour), kind, "event", type, data or {}, index=index)

    def motion(self, hour: float, room: str) -> None:
        """Movement in a room, seen by the motion sensor there, if any."""
        # A home's motion sensors are in the rooms of _MOTION_ROOMS, in that order.
        sensors = len(self.home.by_kind.get("motion_sensor", []))
        if room in _MOTION_ROOMS[:sensors]:
            index = _MOTION_ROOMS.index(room)
            self.event(hour, "motion_sensor", "motion", {"room": room}, index=index)

    def plan(self) -> list[Action]:
        """The whole day: night, morning routine, outings, meals, evening, bed."""
        rng, base = self.rng, self.base
        wake = base.wake_h + rng.gauss(0, 0.25)
        bed = base.bed_h + rng.gauss(0, 0.3)
        meals = [wake + rng.uniform(0.6, 1.0), rng.uniform(11.8, 12.8), rng.uniform(17.5, 18.5)]
        self.night(wake)
        outings = self.outings()
        self.morning(wake)
        self.evening(bed)
        self.movement(wake, bed, meals, outings)
        self.activity(wake, bed, outings)
        self.scenarios(wake, bed)
        return self.actions

    def night(self, wake: float) -> None:
        """An occasional trip to the bathroom; with fall_at_night, a fall at 03:00."""
        rng = self.rng
        if "fall_at_night" in self.home.spec.scenarios:
            self.event(2.9, "bed_sensor", "bed_exit")
            self.motion(2.93, "hall")
            self.event(
                3.0, "fall_detector", "fall", {"confidence": round(rng.uniform(0.86, 0.98), 2)}
            )
            self.event(3.6, "bed_sensor", "bed_enter")
        elif rng.random() < self.base.night_exit_chance:
            up = rng.uniform(1.0, min(4.5, wake - 0.5))
            self.event(up, "bed_sensor", "bed_exit")
            self.motion(up + 0.02, "bathroom")
            self.motion(up + 0.1, "hall")
            self.event(up + rng.uniform(0.12, 0.3), "bed_sensor", "bed_enter")

    def outings(self) -> list[tuple[float, float]]:
        """Going out through the front door: a morning walk or errand, sometimes an afternoon."""
        rng = self.rng
        trips = [(rng.uniform(9.5, 11.0), rng.uniform(0.75, 2.0))]
        if rng.random() < 0.5:
            trips.append((rng.uniform(14.5, 16.5), rng.uniform(0.5, 1.5)))
        spans = []
        for leave, length in trips:
            back = leave + length
            self.motion(leave - 0.03, "hall")
            self.event(leave, "door_sensor", "door_open", {"door": "front"})
            self.event(
                leave + rng.uniform(0.008, 0.02), "door_sensor", "door_closed", {"door": "front"}
            )
            self.event(back, "door_sensor", "door_open", {"door": "front"})
            self.event(
                back + rng.uniform(0.005, 0.015), "door_sensor", "door_closed", {"door": "front"}
            )
            self.motion(back + 0.03, "hall")
            spans.append((leave, back))
        return spans

    def morning(self, wake: float) -> None:
        """Getting up and the morning measurements, before breakfast."""
        rng, base = self.rng, self.base
        self.event(wake, "bed_sensor", "bed_exit")
        self.motion(wake + 0.03, "bathroom")
        glucose = base.glucose + rng.gauss(0, 0.5)
        self.reading(
            wake + 0.2, "glucose_meter", "glucose", {"glucose": _clamp("glucose", glucose, 1)}
        )
        weight = base.weight + rng.gauss(0, 0.4)
        self.reading(
            wake + 0.3,
            "scale",
            "weight",
            {
                "weight": _clamp("weight", weight, 1),
                "bmi": _clamp("bmi", weight / base.height**2, 1),
            },
        )
        self.measure_bp(wake + 0.5, morning=True)
        self.measure_spo2(wake + 0.55)
        temperature = base.temperature + rng.gauss(0, 0.15)
        self.reading(
            wake + 0.6,
            "thermometer",
            "temperature",
            {"temperature": _clamp("temperature", temperature, 1)},
        )

    def evening(self, bed: float) -> None:
        """Glucose before dinner, blood pressure and SpO2 in the evening, then bed."""
        rng, base = self.rng, self.base
        glucose = base.glucose + rng.uniform(0.3, 1.5) + rng.gauss(0, 0.5)
        self.reading(
            rng.uniform(17.2, 17.5),
            "glucose_meter",
            "glucose",
            {"glucose": _clamp("glucose", glucose, 1)},
        )
        evening = rng.uniform(19.5, min(21.0, bed - 0.3))
        self.measure_bp(evening, morning=False)
        self.measure_spo2(evening + 0.05)
        self.motion(bed - 0.1, "bathroom")
        self.event(bed, "bed_sensor", "bed_enter")

    def measure_bp(self, hour: float, *, morning: bool) -> None:
        """A blood pressure reading; mornings run a little higher."""
        rng, base = self.rng, self.base
        lift = 5.0 if morning else 0.0
        values = _blood_pressure(
            rng,
            base.systolic + lift + rng.gauss(0, 7),
            base.diastolic + lift / 2 + rng.gauss(0, 5),
            base.pulse,
        )
        self.reading(hour, "blood_pressure_monitor", "blood_pressure", values)

    def measure_spo2(self, hour: float) -> None:
        """A spot check with the pulse oximeter."""
        rng, base = self.rng, self.base
        values: dict[str, float | None] = {
            "spo2": _clamp("spo2", base.spo2 + rng.gauss(0, 1)),
            "pulse": _clamp("pulse", base.pulse + rng.gauss(0, 4)),
        }
        self.reading(hour, "pulse_oximeter", "spo2", values)

    def movement(
        self, wake: float, bed: float, meals: list[float], outings: list[tuple[float, float]]
    ) -> None:
        """Motion while awake at home: a Poisson process, three times as busy around meals."""
        rng = self.rng
        quiet, busy = 3.0, 10.0  # events per hour
        hour = wake + 0.1
        while True:
            hour += rng.expovariate(busy)
            if hour >= bed - 0.15:
                return
            if any(leave <= hour <= back for leave, back in outings):
                continue
            near_meal = any(abs(hour - meal) < 0.75 for meal in meals)
            if rng.random() > (busy if near_meal else quiet) / busy:
                continue
            if near_meal:
                room = rng.choice(("kitchen", "kitchen", "kitchen", "hall", "living_room"))
            else:
                room = rng.choice(
                    ("living_room", "living_room", "hall", "bathroom", "bedroom", "kitchen")
                )
            self.motion(hour, room)

    def activity(self, wake: float, bed: float, outings: list[tuple[float, float]]) -> None:
        """The wrist tracker: steps and heart rate every 15 minutes, as one batch."""
        rng, base = self.rng, self.base
        # Real quarter hours, so a 23- or 25-hour DST day gets 92 or 100 of them.
        moment, end = self.at(0), self.at(24)
        while (moment := moment + timedelta(minutes=15)) <= end:
            local = moment.astimezone(self.home.zone)
            hour = local.hour + local.minute / 60
            if any(leave <= hour <= back + 0.25 for leave, back in outings):
                steps, heart_rate = rng.uniform(600, 1500), base.pulse + rng.uniform(15, 30)
            elif wake <= hour <= bed:
                steps, heart_rate = rng.uniform(20, 300), base.pulse + rng.gauss(4, 4)
            else:
                steps, heart_rate = rng.uniform(0, 6), base.pulse - rng.uniform(5, 12)
            batch: tuple[ReadingItem, ...] = (
                ("steps", {"steps": _clamp("steps", steps)}, moment),
                ("heart_rate", {"heart_rate": _clamp("heart_rate", heart_rate)}, moment),
            )
            self.add(moment, "activity_tracker", "batch", batch=batch)

    def scenarios(self, wake: float, bed: float) -> None:
        """Crisis, panic and a dying battery; the first of each comes soon after the start."""
        rng, home, base = self.rng, self.home, self.base
        scenarios = home.spec.scenarios
        start_h = (self.first_at - self.at(0)).total_seconds() / 3600
        if "hypertensive_crisis" in scenarios:
            hour = rng.uniform(wake + 1, bed - 1)
            if not home.crisis_done:
                # The first crisis soon after the start, so that short runs show it.
                hour, home.crisis_done = max(start_h, 0) + rng.uniform(0.1, 0.6), True
            values = _blood_pressure(
                rng, 195 + rng.gauss(0, 4), 118 + rng.gauss(0, 3), base.pulse + 20
            )
            self.reading(hour, "blood_pressure_monitor", "blood_pressure", values)
        if "panic" in scenarios:
            presses = [rng.uniform(0, 24) for _ in range(rng.randint(0, 2))]
            if start_h > 0:
                presses.append(start_h + rng.uniform(0.2, 1.0))
            for hour in presses:
                self.event(hour, "panic_button", "panic", {"battery": 80})
        if "device_goes_silent" in scenarios and not home.silence_planned:
            kind = next((k for k in _SILENCE_PREFERENCE if k in home.by_kind), None)
            if kind is not None:
                home.silence_planned = True
                dies = max(start_h, 0) + rng.uniform(1.0, 2.5)
                self.add(self.at(dies - 0.3), kind, "low_battery")
                self.add(self.at(dies), kind, "silence")
