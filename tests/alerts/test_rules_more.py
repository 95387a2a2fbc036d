"""Sustained vital-sign conditions, out of bed at night, and residents' own rules turning
defaults off: real rows in the database, a fixed ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices

# 2026-11-23 is a Monday; Helsinki is UTC+2 in November, Reykjavik UTC+0.
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HELSINKI_MIDNIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)

SUSTAINED_SPO2 = {"type": "spo2", "field": "spo2", "min": 90, "for_min": 10}


async def _home(
    sessions: async_sessionmaker[AsyncSession],
    kind: devices.DeviceKind,
    time_zone: str = "Atlantic/Reykjavik",
) -> tuple[int, str]:
    async with sessions() as session:
        resident = care.Resident(full_name="Jóhann Kristjánsson", time_zone=time_zone)
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        device = await devices.provision_device(session, kind=kind, resident_id=resident.id)
        await session.commit()
    return resident.id, device.device.id


async def _own_rule(
    sessions: async_sessionmaker[AsyncSession],
    resident_id: int,
    kind: str,
    subject: str,
    params: dict[str, Any],
    *,
    enabled: bool = True,
) -> None:
    async with sessions() as session:
        session.add(
            alerts.AlertRule(
                resident_id=resident_id,
                kind=kind,
                subject=subject,
                severity=alerts.AlertSeverity.HIGH,
                params=params,
                enabled=enabled,
            )
        )
        await session.commit()


async def _readings(
    sessions: async_sessionmaker[AsyncSession],
    resident_id: int,
    device_id: str,
    type_: str,
    timed: list[tuple[datetime, dict[str, Any]]],
) -> list[devices.CommittedReading]:
    rows = []
    async with sessions() as session:
        for at, values in timed:
            row = devices.Reading(
                device_id=device_id,
                message_id=f"{type_}-{at.timestamp()}",
                resident_id=resident_id,
                type=type_,
                values=values,
                received_at=at,
            )
            session.add(row)
            rows.append(row)
        await session.commit()
    return [
        devices.CommittedReading(
            r.id or 0, r.device_id, r.resident_id, r.type, r.values, None, r.received_at
        )
        for r in rows
    ]


def _spo2(
    start: datetime, minutes: list[float], values: list[int]
) -> list[tuple[datetime, dict[str, Any]]]:
    return [
        (start + timedelta(minutes=m), {"spo2": v}) for m, v in zip(minutes, values, strict=True)
    ]


async def _bed_event(
    sessions: async_sessionmaker[AsyncSession],
    resident_id: int,
    device_id: str,
    type_: str,
    at: datetime,
) -> None:
    async with sessions() as session:
        session.add(
            devices.Event(
                device_id=device_id,
                message_id=f"{type_}-{at.timestamp()}",
                resident_id=resident_id,
                type=type_,
                received_at=at,
                alarm_handled_at=at,
            )
        )
        await session.commit()


async def _bed_alarms(engine: alerts.RuleEngine, now: datetime) -> list[alerts.AlertCandidate]:
    found, _cleared = await engine.sweep(now)
    return [c for c in found if c.kind == "bed_exit_no_return"]


async def test_sustained_low_spo2_needs_the_whole_span_outside(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.PULSE_OXIMETER)
    await _own_rule(sessions, resident_id, "vital_range", "spo2", SUSTAINED_SPO2)
    engine = alerts.RuleEngine(sessions)
    # Low for eight minutes: not yet ten.
    first = await _readings(
        sessions, resident_id, device_id, "spo2", _spo2(NOON, [0, 2, 4, 6, 8], [88] * 5)
    )
    assert await engine.on_batch(devices.IngestedBatch(tuple(first), ())) == []
    # Low for ten minutes, every reading of them: it rings.
    tenth = await _readings(sessions, resident_id, device_id, "spo2", _spo2(NOON, [10], [87]))
    (candidate,) = await engine.on_batch(devices.IngestedBatch(tuple(tenth), ()))
    assert candidate.kind == "vital_range"
    assert candidate.title == "SpO2 87 %"
    assert candidate.dedupe_key == f"resident:{resident_id}:vital:spo2"
    assert candidate.details is not None
    assert candidate.details["reading_id"] == tenth[0].id


async def test_one_reading_back_in_range_calls_the_sustained_condition_off(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.PULSE_OXIMETER)
    await _own_rule(sessions, resident_id, "vital_range", "spo2", SUSTAINED_SPO2)
    engine = alerts.RuleEngine(sessions)
    batch = await _readings(
        sessions,
        resident_id,
        device_id,
        "spo2",
        _spo2(NOON, [0, 2, 4, 6, 8, 10], [88, 87, 86, 93, 88, 87]),
    )
    assert await engine.on_batch(devices.IngestedBatch(tuple(batch), ())) == []
    # Twelve minutes on, the window (2-12) is all low again, but 93 at 6 is still in it.
    more = await _readings(sessions, resident_id, device_id, "spo2", _spo2(NOON, [12], [86]))
    assert await engine.on_batch(devices.IngestedBatch(tuple(more), ())) == []
    # Once the good reading has left the window and the low run spans ten minutes, it rings.
    later = await _readings(
        sessions, resident_id, device_id, "spo2", _spo2(NOON, [14, 16, 18], [86, 85, 85])
    )
    assert len(await engine.on_batch(devices.IngestedBatch(tuple(later), ()))) == 1


async def test_a_low_reading_just_before_the_window_counts_a_stale_one_does_not(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.PULSE_OXIMETER)
    await _own_rule(sessions, resident_id, "vital_range", "spo2", SUSTAINED_SPO2)
    engine = alerts.RuleEngine(sessions)
    # A spot check two hours ago was low, then nothing until four low readings now (6 min):
    # the old one says nothing about the two hours between.
    stale = await _readings(
        sessions,
        resident_id,
        device_id,
        "spo2",
        _spo2(NOON, [-120, 0, 2, 4, 6], [88, 88, 87, 87, 86]),
    )
    assert await engine.on_batch(devices.IngestedBatch(tuple(stale), ())) == []
    # Readings every three minutes never land on the window's edge (since = 11.5 here);
    # the low one at 9 shows the value was already out when the window opened.
    steady = await _readings(
        sessions, resident_id, device_id, "spo2", _spo2(NOON, [9, 12.5, 15.5, 18.5, 21.5], [87] * 5)
    )
    assert len(await engine.on_batch(devices.IngestedBatch(tuple(steady[-1:]), ()))) == 1


async def test_consecutive_and_for_min_together_need_both(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.PULSE_OXIMETER)
    await _own_rule(
        sessions, resident_id, "vital_range", "spo2", {**SUSTAINED_SPO2, "consecutive": 3}
    )
    engine = alerts.RuleEngine(sessions)
    # Ten minutes low, but only two readings: the count is not met.
    two = await _readings(sessions, resident_id, device_id, "spo2", _spo2(NOON, [0, 10], [88, 88]))
    assert await engine.on_batch(devices.IngestedBatch(tuple(two), ())) == []
    third = await _readings(sessions, resident_id, device_id, "spo2", _spo2(NOON, [11], [88]))
    assert len(await engine.on_batch(devices.IngestedBatch(tuple(third), ()))) == 1


async def test_out_of_bed_at_night_rings_after_the_rules_minutes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Midnight in Helsinki is 22:00 UTC: night for the resident, not yet in UTC.
    resident_id, bed_id = await _home(sessions, devices.DeviceKind.BED_SENSOR, "Europe/Helsinki")
    engine = alerts.RuleEngine(sessions)
    await _bed_event(
        sessions, resident_id, bed_id, "bed_enter", HELSINKI_MIDNIGHT - timedelta(hours=1)
    )
    await _bed_event(sessions, resident_id, bed_id, "bed_exit", HELSINKI_MIDNIGHT)
    assert await _bed_alarms(engine, HELSINKI_MIDNIGHT + timedelta(minutes=30)) == []
    (candidate,) = await _bed_alarms(engine, HELSINKI_MIDNIGHT + timedelta(minutes=45))
    assert candidate.title == "Out of bed for 45 min at night"
    assert candidate.dedupe_key == f"resident:{resident_id}:bed_exit_no_return"
    assert candidate.severity == "high"
    assert (candidate.resident_id, candidate.device_id) == (resident_id, bed_id)
    assert not candidate.auto_resolves


async def test_back_in_bed_or_up_in_the_daytime_is_no_alarm(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, bed_id = await _home(sessions, devices.DeviceKind.BED_SENSOR, "Europe/Helsinki")
    engine = alerts.RuleEngine(sessions)
    await _bed_event(sessions, resident_id, bed_id, "bed_exit", HELSINKI_MIDNIGHT)
    await _bed_event(
        sessions, resident_id, bed_id, "bed_enter", HELSINKI_MIDNIGHT + timedelta(minutes=20)
    )
    assert await _bed_alarms(engine, HELSINKI_MIDNIGHT + timedelta(hours=2)) == []
    # Up at 14:00 Helsinki time the next day and not back for hours: an ordinary day.
    tomorrow_noon = NOON + timedelta(days=1)
    await _bed_event(sessions, resident_id, bed_id, "bed_exit", tomorrow_noon)
    assert await _bed_alarms(engine, tomorrow_noon + timedelta(hours=3)) == []
    # 22:00 UTC is midnight in Helsinki but 22:00 in Reykjavik: the resident's time zone
    # decides, not UTC's.
    reykjavik_id, reykjavik_bed = await _home(sessions, devices.DeviceKind.BED_SENSOR)
    await _bed_event(sessions, reykjavik_id, reykjavik_bed, "bed_exit", HELSINKI_MIDNIGHT)
    assert await _bed_alarms(engine, HELSINKI_MIDNIGHT + timedelta(hours=1)) == []


async def test_a_residents_own_bed_rule_changes_the_wait(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, bed_id = await _home(sessions, devices.DeviceKind.BED_SENSOR, "Europe/Helsinki")
    # Walks about at night as a habit: an hour before anyone is worried.
    await _own_rule(sessions, resident_id, "bed_exit_no_return", "bed", {"minutes": 60})
    engine = alerts.RuleEngine(sessions)
    await _bed_event(sessions, resident_id, bed_id, "bed_exit", HELSINKI_MIDNIGHT)
    assert await _bed_alarms(engine, HELSINKI_MIDNIGHT + timedelta(minutes=45)) == []
    (candidate,) = await _bed_alarms(engine, HELSINKI_MIDNIGHT + timedelta(minutes=61))
    assert candidate.title == "Out of bed for 61 min at night"


async def test_a_residents_disabled_rule_turns_a_default_off(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, bed_id = await _home(sessions, devices.DeviceKind.BED_SENSOR, "Europe/Helsinki")
    other_id, other_bed = await _home(sessions, devices.DeviceKind.BED_SENSOR, "Europe/Helsinki")
    await _own_rule(
        sessions, resident_id, "bed_exit_no_return", "bed", {"minutes": 30}, enabled=False
    )
    engine = alerts.RuleEngine(sessions)
    async with sessions() as session:
        kinds = {r.kind for r in await engine.rules_for(session, resident_id)}
        assert "bed_exit_no_return" not in kinds
        assert "no_motion" in kinds  # the other defaults still apply
    for resident, bed in ((resident_id, bed_id), (other_id, other_bed)):
        await _bed_event(sessions, resident, bed, "bed_exit", HELSINKI_MIDNIGHT)
    found = await _bed_alarms(engine, HELSINKI_MIDNIGHT + timedelta(hours=1))
    assert [c.resident_id for c in found] == [other_id]


async def test_a_disabled_vital_rule_turns_its_default_off(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.THERMOMETER)
    engine = alerts.RuleEngine(sessions)
    fever = await _readings(
        sessions, resident_id, device_id, "temperature", [(NOON, {"temperature": 39.1})]
    )
    assert len(await engine.on_batch(devices.IngestedBatch(tuple(fever), ()))) == 1
    await _own_rule(sessions, resident_id, "vital_range", "temperature", {}, enabled=False)
    again = await _readings(
        sessions,
        resident_id,
        device_id,
        "temperature",
        [(NOON + timedelta(hours=1), {"temperature": 39.4})],
    )
    assert await engine.on_batch(devices.IngestedBatch(tuple(again), ())) == []


async def test_a_resolved_bed_alarm_does_not_ring_again_for_the_same_exit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, bed_id = await _home(sessions, devices.DeviceKind.BED_SENSOR, "Europe/Helsinki")
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        nurse = await care.add_staff_user(
            session,
            username="nurse",
            full_name="Helga Björnsdóttir",
            password="x" * 12,
            role=care.StaffRole.NURSE,
            organisation=org,
        )
        await session.commit()
        assert nurse.id is not None
        nurse_id = nurse.id
    now = HELSINKI_MIDNIGHT + timedelta(minutes=40)
    lifecycle = alerts.AlertLifecycle(sessions, clock=lambda: now)
    engine = alerts.RuleEngine(sessions)
    await _bed_event(sessions, resident_id, bed_id, "bed_exit", HELSINKI_MIDNIGHT)
    (raised,) = await lifecycle.raise_alerts(await _bed_alarms(engine, now))
    # While it is open, the sweep finding the same exit again changes nothing: no count
    # climbing every minute, no change for the consoles.
    again = await _bed_alarms(engine, now + timedelta(minutes=1))
    assert [c.dedupe_key for c in again] == [raised_key := again[0].dedupe_key]
    assert await lifecycle.raise_alerts(again) == []
    async with sessions() as session:
        alert = await session.get(alerts.Alert, raised.alert_id)
        assert alert is not None
        assert (alert.dedupe_key, alert.count, alert.status) == (raised_key, 1, "open")
    # The nurse phoned: sitting in the kitchen with tea. Resolved; this exit is dealt with.
    await lifecycle.resolve(raised.alert_id, nurse_id, outcome="resident fine")
    assert await _bed_alarms(engine, now + timedelta(minutes=30)) == []
    # The next night's exit is a new condition and rings again.
    next_night = HELSINKI_MIDNIGHT + timedelta(days=1)
    await _bed_event(sessions, resident_id, bed_id, "bed_enter", next_night - timedelta(hours=1))
    await _bed_event(sessions, resident_id, bed_id, "bed_exit", next_night)
    (candidate,) = await _bed_alarms(engine, next_night + timedelta(minutes=31))
    assert candidate.title == "Out of bed for 31 min at night"
