"""The demo world's past: a month of readings, a week of movement, doors and bed, and the
check-ins answered on the tablet, all marked as already dealt with at the time."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices

if TYPE_CHECKING:
    from server.demo import DemoDevice

DAYS_OF_HISTORY = 30
# Movement, doors and bed are kept for the last week only (the console shows the latest).
DAYS_OF_EVENTS = 7
WEIGHT_RULE_DAYS = 3


def add_answered_checkins(
    session: AsyncSession,
    rng: random.Random,
    resident: care.Resident,
    plans: list[alerts.CheckinPlan],
    now: datetime,
) -> None:
    """The plans' past slots: most answered on the tablet within minutes, a few missed."""
    zone = ZoneInfo(resident.time_zone)
    today = now.astimezone(zone).date()
    for plan in plans:
        assert plan.id is not None
        assert resident.id is not None
        window = timedelta(minutes=plan.window_min)
        for back in range(DAYS_OF_HISTORY, 0, -1):
            day = today - timedelta(days=back)
            for clock in plan.times:
                hour, minute = (int(part) for part in clock.split(":"))
                slot = datetime.combine(day, time(hour, minute), zone).astimezone(
                    care.utcnow().tzinfo
                )
                missed = rng.random() < 0.04
                answered = slot + timedelta(minutes=rng.randint(1, 25))
                if plan.kind != alerts.CheckinKind.WELLBEING:
                    answer = "taken"
                else:
                    answer = "fine" if rng.random() < 0.9 else "not_so_good"
                session.add(
                    alerts.CheckinPrompt(
                        plan_id=plan.id,
                        resident_id=resident.id,
                        kind=plan.kind,
                        slot_at=slot,
                        closes_at=slot + window,
                        status=alerts.PromptStatus.MISSED
                        if missed
                        else alerts.PromptStatus.ANSWERED,
                        sent_at=slot,
                        answered_at=None if missed else answered,
                        answered_via=None if missed else "tablet",
                        answer=None if missed else answer,
                        closed_at=slot + window if missed else answered,
                        # History: the team was told of it at the time.
                        reported_at=slot + window if missed else answered,
                    )
                )


async def add_history(
    session: AsyncSession,
    *,
    rng: random.Random,
    resident: care.Resident,
    demo_devices: list[DemoDevice],
    conditions: tuple[str, ...],
    now: datetime,
) -> None:
    """A week of readings and events that follow the resident's day in their time zone."""
    zone = ZoneInfo(resident.time_zone)
    by_kind = {d.kind: d.device_id for d in demo_devices}
    readings: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    today = now.astimezone(zone).date()
    systolic_base = rng.randint(128, 150) if "hypertension" in conditions else rng.randint(115, 132)
    weight_base = round(rng.uniform(58, 92), 1)
    spo2_base = rng.randint(91, 94) if "copd" in conditions else rng.randint(95, 98)
    glucose_base = rng.uniform(6.5, 9.0)

    def at(day: date, hour: int, minute: int) -> datetime:
        """A local wall-clock time on ``day`` as aware UTC."""
        return datetime.combine(day, time(hour, minute), zone).astimezone(care.utcnow().tzinfo)

    def reading(
        device_kind: devices.DeviceKind, when: datetime, kind: str, values: dict[str, float]
    ) -> None:
        """Queue one reading if the resident has the device and it is in the past."""
        if device_kind in by_kind and when < now:
            readings.append(
                {
                    "device_id": by_kind[device_kind],
                    "message_id": f"demo-{len(readings)}",
                    "resident_id": resident.id,
                    "type": kind,
                    "values": values,
                    "device_ts": when,
                    "received_at": when + timedelta(seconds=rng.randint(1, 4)),
                    "clock_skewed": False,
                }
            )

    def event(device_kind: devices.DeviceKind, when: datetime, kind: str) -> None:
        """Queue one event if the resident has the device and it is in the past."""
        if device_kind in by_kind and when < now:
            events.append(
                {
                    "device_id": by_kind[device_kind],
                    "message_id": f"demo-{len(events)}",
                    "resident_id": resident.id,
                    "type": kind,
                    "data": {},
                    "device_ts": when,
                    "received_at": when + timedelta(seconds=rng.randint(1, 3)),
                    "clock_skewed": False,
                    # History: nothing for the alarm path to raise at start-up.
                    "alarm_handled_at": when + timedelta(seconds=5),
                }
            )

    kinds = devices.DeviceKind
    for back in range(DAYS_OF_HISTORY, -1, -1):
        day = today - timedelta(days=back)
        for hour in (8, 19):
            when = at(day, hour, rng.randint(0, 40))
            systolic = round(rng.gauss(systolic_base, 7))
            reading(
                kinds.BLOOD_PRESSURE_MONITOR,
                when,
                "blood_pressure",
                {
                    "systolic": systolic,
                    "diastolic": round(systolic * rng.uniform(0.55, 0.65)),
                    "pulse": rng.randint(58, 84),
                },
            )
            reading(
                kinds.PULSE_OXIMETER,
                when + timedelta(minutes=5),
                "spo2",
                {
                    "spo2": min(100, round(rng.gauss(spo2_base, 1))),
                    "pulse": rng.randint(60, 90),
                },
            )
            reading(
                kinds.GLUCOSE_METER,
                when - timedelta(minutes=20),
                "glucose",
                {
                    "glucose": round(rng.gauss(glucose_base, 1.1), 1),
                },
            )
        weight_base += rng.uniform(-0.3, 0.35 if "heart_failure" in conditions else 0.3)
        # The simulated scale weighs from its own baseline: the history stops before the
        # "weight up 2 kg in 3 days" rule's window, so the two are never compared.
        if back > WEIGHT_RULE_DAYS:
            reading(
                kinds.SCALE,
                at(day, 7, rng.randint(10, 50)),
                "weight",
                {"weight": round(weight_base, 1)},
            )
        reading(
            kinds.THERMOMETER,
            at(day, 9, rng.randint(0, 59)),
            "temperature",
            {"temperature": round(rng.gauss(36.7, 0.25), 1)},
        )
        if back > DAYS_OF_EVENTS:
            continue
        # The day's rhythm: up around seven, about at home, a walk, in bed by eleven.
        wake = at(day, 6, 30) + timedelta(minutes=rng.randint(0, 90))
        event(kinds.BED_SENSOR, wake, "bed_exit")
        for hour in range(7, 22):
            for _ in range(rng.randint(1, 3)):
                event(kinds.MOTION_SENSOR, at(day, hour, rng.randint(0, 59)), "motion")
        out = at(day, 13, rng.randint(0, 59))
        event(kinds.DOOR_SENSOR, out, "door_open")
        event(kinds.DOOR_SENSOR, out + timedelta(minutes=1), "door_closed")
        back_home = out + timedelta(minutes=rng.randint(20, 70))
        event(kinds.DOOR_SENSOR, back_home, "door_open")
        event(kinds.DOOR_SENSOR, back_home + timedelta(minutes=1), "door_closed")
        event(kinds.BED_SENSOR, at(day, 22, rng.randint(0, 59)), "bed_enter")
    connection = await session.connection()
    if readings:
        await connection.execute(insert(devices.Reading), readings)
    if events:
        await connection.execute(insert(devices.Event), events)
