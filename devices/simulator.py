"""Virtual homes with realistic daily rhythms, publishing to Vaki as real devices would.

Each home lives a resident's day in its own time zone: getting up, measuring blood pressure,
weight, SpO2, temperature and glucose on a schedule, moving about (more around meals),
going out through the front door, going to bed, now and then getting up at night. Values
come from per-home baselines plus noise and always lie in the ranges of docs/mqtt.md.
Scenarios add a fall at 03:00, a hypertensive crisis, panic presses, or a device whose
battery dies.

Every device is a :class:`~devices.virtual_device.VirtualDevice`, so the simulator exercises
the whole contract: outbox, acks, resends, status and Last Will. All devices share one event
loop and no device has a thread of its own (see the virtual device's module docstring); the
one scheduler below walks a single heap of planned actions for all homes.

Simulated time runs ``speed`` times faster than real time. Timestamps are simulated time,
so at any speed but 1 the server flags readings as having a skewed clock (they are stored
all the same); the server's "last seen" runs on real time, which is why status heartbeats
are also sent by real time.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from devices.virtual_device import MqttVersion, VirtualDevice, utc_now

log = logging.getLogger(__name__)

# The strings of devices.models.DeviceKind, with the doc's "publish at least every" (s).
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
SCENARIOS = frozenset({"fall_at_night", "device_goes_silent", "hypertensive_crisis", "panic"})

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
# Status messages of one device are at least this many real seconds apart, and a heartbeat
# due in simulated time at least this fraction of the kind's interval: at speed 60 and up
# the simulated heartbeats would otherwise flood the service with status messages that the
# real-time silence alarm does not need.
_MIN_STATUS_GAP_S = 1.0
_MIN_HEARTBEAT_FRACTION = 0.05
# The contract's plausible ranges, to keep noise from ever producing a dead letter.
_RANGES: Mapping[str, tuple[float, float]] = {
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


@dataclass(frozen=True)
class SimulatedDevice:
    """A provisioned device of a simulated home: its id, kind and password."""

    device_id: str
    kind: str
    password: str

    def __post_init__(self) -> None:
        """Refuse a kind Vaki does not know."""
        if self.kind not in KINDS:
            raise ValueError(f"unknown device kind {self.kind!r}")


@dataclass(frozen=True)
class SimulatedHome:
    """A home: a name, the time zone its day runs in, its devices and its scenarios."""

    name: str
    time_zone: str
    devices: tuple[SimulatedDevice, ...]
    scenarios: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Refuse unknown scenarios and time zones."""
        unknown = self.scenarios - SCENARIOS
        if unknown:
            raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {sorted(SCENARIOS)}")
        ZoneInfo(self.time_zone)  # fail now, not at the first plan


@dataclass
class SimulatorStats:
    """Messages published and acked per type (reading or event type, and "status")."""

    published: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)
    # Readings and events (not status) published per device id.
    published_by_device: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class PlannedAction:
    """One thing a simulated device will do: a reading, an event, a low battery or silence."""

    at: datetime
    device_id: str
    kind: str
    operation: Literal["reading", "event", "low_battery", "silence"]
    type: str = ""
    content: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Baseline:
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
    def draw(cls, rng: random.Random) -> _Baseline:
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
class _Action:
    """Something a device does at a simulated moment."""

    at: datetime
    seq: int
    device: int = field(compare=False)  # index into Simulator._states
    operation: Operation = field(compare=False)
    type: str = field(compare=False, default="")
    content: Mapping[str, Any] = field(compare=False, default_factory=dict)
    batch: tuple[ReadingItem, ...] = field(compare=False, default=())


@dataclass
class _DeviceState:
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
class _HomeState:
    """A home's resident, random stream and how far its days are planned."""

    spec: SimulatedHome
    zone: ZoneInfo
    rng: random.Random
    baseline: _Baseline
    by_kind: dict[str, list[int]]
    next_day: date
    planned_until: datetime
    crisis_done: bool = False
    silence_planned: bool = False


def _clamp(name: str, value: float, digits: int = 0) -> float:
    """Round and keep a value inside the contract's range; whole numbers go out as integers."""
    low, high = _RANGES[name]
    value = min(max(value, low), high)
    return round(value, digits) if digits else round(value)


def _blood_pressure(
    rng: random.Random, systolic: float, diastolic: float, pulse: float
) -> dict[str, float | None]:
    """A blood pressure reading; systolic stays above diastolic, as the contract requires."""
    s = _clamp("systolic", systolic)
    d = min(_clamp("diastolic", diastolic), s - 10)
    return {"systolic": s, "diastolic": d, "pulse": _clamp("pulse", pulse + rng.gauss(0, 3))}


class _DayPlanner:
    """Turns one local day of one home into device actions."""

    def __init__(self, home: _HomeState, day: date, first_at: datetime, seq: Iterator[int]) -> None:
        """Plan one local day; nothing before first_at (the start of the simulation)."""
        self.home, self.day, self.first_at, self._seq = home, day, first_at, seq
        self.rng, self.base = home.rng, home.baseline
        self.midnight = datetime(day.year, day.month, day.day, tzinfo=home.zone)
        self.actions: list[_Action] = []

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
            _Action(moment, next(self._seq), device, operation, type, content or {}, batch)
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

    def plan(self) -> list[_Action]:
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


class Simulator:
    """Runs simulated homes against a broker, all on one event loop."""

    def __init__(
        self,
        homes: Sequence[SimulatedHome],
        host: str,
        port: int,
        *,
        speed: float = 60.0,
        outbox_dir: Path | None = None,
        seed: int = 0,
        clock: Callable[[], datetime] = utc_now,
        start: datetime | None = None,
        protocol: MqttVersion = "3.1.1",
        tick_s: float = 0.05,
        settle_s: float = 10.0,
        connect_wait_s: float = 30.0,
        resend_first_s: float = 30.0,
        resend_max_s: float = 600.0,
    ) -> None:
        """Set up the homes' devices; nothing connects before run()."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        ids = [d.device_id for home in homes for d in home.devices]
        if len(ids) != len(set(ids)):
            raise ValueError("a device id appears twice: one connection per device id")
        self.speed = speed
        self.start_at = start or clock()
        if self.start_at.tzinfo is None:
            raise ValueError("start needs a time zone")
        self._tick_s, self._settle_s, self._connect_wait_s = tick_s, settle_s, connect_wait_s
        self._stats = SimulatorStats()
        self._heap: list[_Action] = []
        self._seq = itertools.count()
        self._real_start: float | None = None
        self._ran = False
        self.silenced: dict[str, datetime] = {}
        # Seeded, reproducible, not security relevant.
        master = random.Random(seed)  # noqa: S311
        self._homes: list[_HomeState] = []
        self._states: list[_DeviceState] = []
        for home_index, home in enumerate(homes):
            zone = ZoneInfo(home.time_zone)
            rng = random.Random(master.getrandbits(64))  # noqa: S311
            by_kind: dict[str, list[int]] = {}
            for spec in home.devices:
                by_kind.setdefault(spec.kind, []).append(len(self._states))
                device_index = len(self._states)
                device = VirtualDevice(
                    spec.device_id,
                    spec.password,
                    host,
                    port,
                    outbox_path=outbox_dir / f"{spec.device_id}.db" if outbox_dir else None,
                    protocol=protocol,
                    clock=self.now,
                    resend_first_s=resend_first_s,
                    resend_max_s=resend_max_s,
                    battery=None,  # set below, once the drain model is known
                    fw=f"sim-{spec.kind}-1.0",
                    on_ack=functools.partial(self._acked, device_index),
                    rng=random.Random(master.getrandbits(64)),  # noqa: S311
                )
                state = _DeviceState(
                    spec=spec,
                    home=home_index,
                    device=device,
                    battery_start=master.uniform(60, 100),
                    rssi=master.randint(-78, -45),
                )
                state.last_battery = state.battery(0)
                device.publish_status(battery=state.last_battery, extra=self._extra(state))
                self._states.append(state)
            local_start = self.start_at.astimezone(zone)
            self._homes.append(
                _HomeState(
                    spec=home,
                    zone=zone,
                    rng=rng,
                    baseline=_Baseline.draw(rng),
                    by_kind=by_kind,
                    next_day=local_start.date(),
                    planned_until=self.start_at,
                )
            )

    @property
    def stats(self) -> SimulatorStats:
        """Published and acked counts per message type, live."""
        return self._stats

    @property
    def devices(self) -> Mapping[str, VirtualDevice]:
        """The virtual devices by id."""
        return {state.spec.device_id: state.device for state in self._states}

    def planned(self, until: datetime) -> list[PlannedAction]:
        """What the homes will do from the start until a simulated time (batches as readings)."""
        # Days are planned whole, each home from its own random stream, so asking early
        # changes nothing: the same seed always gives the same days.
        self._plan_until(until)
        found: list[PlannedAction] = []
        for action in sorted(self._heap):
            if action.at > until:
                break
            spec = self._states[action.device].spec
            if action.operation == "batch":
                found.extend(
                    PlannedAction(ts, spec.device_id, spec.kind, "reading", type, values)
                    for type, values, ts in action.batch
                )
            else:
                found.append(
                    PlannedAction(
                        action.at,
                        spec.device_id,
                        spec.kind,
                        action.operation,
                        action.type,
                        action.content,
                    )
                )
        return found

    def now(self) -> datetime:
        """The simulated time: the start plus real time elapsed times speed."""
        if self._real_start is None:
            return self.start_at
        elapsed = asyncio.get_running_loop().time() - self._real_start
        return self.start_at + timedelta(seconds=elapsed * self.speed)

    async def run(self, duration_s: float | None = None) -> None:
        """Run until cancelled, or for duration_s real seconds and then until acked (settle_s)."""
        if self._ran:
            raise RuntimeError("a simulator runs once")
        self._ran = True
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(state.device.start() for state in self._states))
        try:
            await self._wait_connected()
            self._real_start = loop.time()
            while duration_s is None or loop.time() - self._real_start < duration_s:
                await self._tick(loop.time())
                await asyncio.sleep(self._tick_s)
            await self._settle()
        finally:
            live = [s.device for s in self._states if not s.silent]
            await asyncio.gather(*(device.stop() for device in live))

    async def _tick(self, real_now: float) -> None:
        """Do everything due by now: planned actions, status heartbeats, commands."""
        sim_now = self.now()
        # Plan ahead by a tick's worth of simulated time so nothing is planned in the past.
        await self._plan_until_yielding(
            sim_now + timedelta(seconds=max(3600, 4 * self._tick_s * self.speed))
        )
        while self._heap and self._heap[0].at <= sim_now:
            await self._perform(heapq.heappop(self._heap), real_now)
        for state in self._states:
            if not state.silent:
                self._heartbeat(state, sim_now, real_now)
                if not state.device.commands.empty():
                    await self._answer_commands(state)

    def _plan_until(self, horizon: datetime) -> None:
        """Plan every home's days until the horizon."""
        for home in self._homes:
            while self._plan_day(home, horizon):
                pass

    async def _plan_until_yielding(self, horizon: datetime) -> None:
        """Plan like _plan_until, but let the loop run between days: 100 homes take ~0.3 s."""
        for home in self._homes:
            planned = self._plan_day(home, horizon)
            while planned:
                await asyncio.sleep(0)
                planned = self._plan_day(home, horizon)

    def _plan_day(self, home: _HomeState, horizon: datetime) -> bool:
        """Plan the home's next local day if it starts before the horizon; False if not."""
        if home.planned_until >= horizon:
            return False
        day = home.next_day
        planner = _DayPlanner(home, day, self.start_at, self._seq)
        for action in planner.plan():
            heapq.heappush(self._heap, action)
        home.next_day = day + timedelta(days=1)
        home.planned_until = planner.at(24)
        return True

    async def _perform(self, action: _Action, real_now: float) -> None:
        """Have a device do a planned action."""
        state = self._states[action.device]
        if state.silent:
            return
        device = state.device
        if action.operation == "silence":
            # A dead battery says no goodbye: the broker publishes the Last Will.
            state.silent = True
            self.silenced[state.spec.device_id] = action.at
            await device.stop(graceful=False)
            return
        if action.operation == "low_battery":
            state.battery_override = 2
            self._publish_status(state, real_now)
            return
        sent: list[tuple[str, str]] = []
        if action.operation == "reading":
            values = dict(action.content)
            sent.append((await device.send_reading(action.type, values, action.at), action.type))
        elif action.operation == "event":
            sent.append(
                (await device.send_event(action.type, action.content, action.at), action.type)
            )
        else:
            ids = await device.send_batch(action.batch)
            sent.extend((i, item[0]) for i, item in zip(ids, action.batch, strict=True))
        for message_id, type in sent:
            state.pending[message_id] = type
            self._stats.published[type] += 1
            self._stats.published_by_device[state.spec.device_id] += 1
        state.last_publish_real = real_now

    def _acked(self, device_index: int, ids: Sequence[str]) -> None:
        """Count acks by type."""
        state = self._states[device_index]
        for message_id in ids:
            type = state.pending.pop(message_id, None)
            if type is not None:
                self._stats.acked[type] += 1

    def _extra(self, state: _DeviceState) -> dict[str, Any]:
        """Status fields beyond battery: signal strength, and uptime for tablet and hub."""
        extra: dict[str, Any] = {"rssi": state.rssi}
        if state.spec.kind in ("tablet", "home_hub"):
            elapsed = (self.now() - self.start_at).total_seconds()
            extra["uptime_s"] = int(elapsed)
        return extra

    def _heartbeat(self, state: _DeviceState, sim_now: datetime, real_now: float) -> None:
        """Status when due in simulated time or when the battery changed, never too often."""
        interval = EXPECTED_INTERVAL_S[state.spec.kind]
        elapsed_h = (sim_now - self.start_at).total_seconds() / 3600
        battery = state.battery(elapsed_h)
        due = state.next_status_at is None or sim_now >= state.next_status_at
        # The server's silence alarm runs on real time: slow runs need real-time heartbeats.
        overdue = real_now - max(state.last_publish_real, state.last_status_real) > interval / 2
        since = real_now - state.last_status_real
        spaced = since >= _MIN_STATUS_GAP_S
        heartbeat = due and since >= interval * _MIN_HEARTBEAT_FRACTION
        if heartbeat or (battery != state.last_battery and spaced) or overdue:
            state.last_battery = battery
            state.next_status_at = sim_now + timedelta(seconds=interval)
            self._publish_status(state, real_now)

    def _publish_status(self, state: _DeviceState, real_now: float) -> None:
        """Publish a device's status now (only when connected; it goes out on connect anyway)."""
        elapsed_h = (self.now() - self.start_at).total_seconds() / 3600
        if state.device.publish_status(battery=state.battery(elapsed_h), extra=self._extra(state)):
            self._stats.published["status"] += 1
            state.last_status_real = real_now

    async def _answer_commands(self, state: _DeviceState) -> None:
        """The resident answers check-ins and confirms reminders on the tablet."""
        while not state.device.commands.empty():
            command = state.device.commands.get_nowait()
            command_id, kind = command.get("id"), command.get("type")
            if state.spec.kind != "tablet" or not isinstance(command_id, str):
                continue
            if kind == "checkin_prompt":
                data = {"prompt_id": command.get("prompt_id", command_id), "answer": "fine"}
                message_id = await state.device.send_event("checkin_answer", data)
                state.pending[message_id] = "checkin_answer"
                self._stats.published["checkin_answer"] += 1
                self._stats.published_by_device[state.spec.device_id] += 1
            elif kind == "reminder":
                message_id = await state.device.send_event(
                    "reminder_ack", {"prompt_id": command.get("prompt_id", command_id)}
                )
                state.pending[message_id] = "reminder_ack"
                self._stats.published["reminder_ack"] += 1
                self._stats.published_by_device[state.spec.device_id] += 1

    async def _wait_connected(self) -> None:
        """Let the homes come online before their day starts (up to connect_wait_s)."""
        waiting = [s.device.wait_connected(self._connect_wait_s) for s in self._states]
        results = await asyncio.gather(*waiting, return_exceptions=True)
        late = sum(isinstance(result, TimeoutError) for result in results)
        if late:
            log.warning("%d of %d devices are not connected; starting anyway", late, len(results))

    async def _settle(self) -> None:
        """After the run, wait (up to settle_s) until every live device's outbox is acked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle_s
        while loop.time() < deadline:
            if all(s.silent or s.device.outbox_size == 0 for s in self._states):
                return
            await asyncio.sleep(0.05)
        waiting = sum(s.device.outbox_size for s in self._states if not s.silent)
        log.warning("simulator stopped with %d messages not acked", waiting)
