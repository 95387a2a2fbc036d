"""Rules on committed batches and in the sweep; the alert lifecycle they drive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _home(
    sessions: async_sessionmaker[AsyncSession], kind: devices.DeviceKind
) -> tuple[int, str]:
    async with sessions() as session:
        resident = care.Resident(full_name="Jóhann Kristjánsson")
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        device = await devices.provision_device(session, kind=kind, resident_id=resident.id)
        await session.commit()
    return resident.id, device.device.id


async def _readings(
    sessions: async_sessionmaker[AsyncSession],
    resident_id: int,
    device_id: str,
    type_: str,
    values: list[dict[str, Any]],
    start: datetime,
    step: timedelta,
) -> list[devices.CommittedReading]:
    rows = []
    async with sessions() as session:
        for n, value in enumerate(values):
            row = devices.Reading(
                device_id=device_id,
                message_id=f"{type_}-{n}-{start.timestamp()}",
                resident_id=resident_id,
                type=type_,
                values=value,
                received_at=start + n * step,
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


async def test_spo2_needs_two_consecutive_low_readings(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.PULSE_OXIMETER)
    engine = alerts.RuleEngine(sessions)
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    one_low = await _readings(
        sessions,
        resident_id,
        device_id,
        "spo2",
        [{"spo2": 95}, {"spo2": 86}],
        start,
        timedelta(minutes=5),
    )
    assert await engine.on_batch(devices.IngestedBatch((one_low[-1],), ())) == []
    two_low = await _readings(
        sessions,
        resident_id,
        device_id,
        "spo2",
        [{"spo2": 87}],
        start + timedelta(hours=1),
        timedelta(minutes=5),
    )
    (candidate,) = await engine.on_batch(devices.IngestedBatch(tuple(two_low), ()))
    assert candidate.kind == "vital_range"
    assert candidate.title == "SpO2 87 %"
    assert candidate.dedupe_key == f"resident:{resident_id}:vital:spo2"


async def test_a_residents_own_rule_replaces_the_default(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.PULSE_OXIMETER)
    async with sessions() as session:
        # A COPD patient whose normal is 88-92 %: alarm only below 85, on one reading.
        session.add(
            alerts.AlertRule(
                resident_id=resident_id,
                kind="vital_range",
                subject="spo2",
                severity=alerts.AlertSeverity.HIGH,
                params={"type": "spo2", "field": "spo2", "min": 85, "consecutive": 1},
            )
        )
        await session.commit()
    engine = alerts.RuleEngine(sessions)
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    usual = await _readings(
        sessions,
        resident_id,
        device_id,
        "spo2",
        [{"spo2": 88}, {"spo2": 87}],
        start,
        timedelta(minutes=5),
    )
    assert await engine.on_batch(devices.IngestedBatch(tuple(usual), ())) == []
    low = await _readings(
        sessions,
        resident_id,
        device_id,
        "spo2",
        [{"spo2": 83}],
        start + timedelta(hours=1),
        timedelta(minutes=1),
    )
    assert len(await engine.on_batch(devices.IngestedBatch(tuple(low), ()))) == 1


async def test_weight_gain_of_two_kilos_in_three_days(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.SCALE)
    engine = alerts.RuleEngine(sessions)
    start = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    week = await _readings(
        sessions,
        resident_id,
        device_id,
        "weight",
        [{"weight": 80.0}, {"weight": 80.6}, {"weight": 81.4}, {"weight": 82.3}],
        start,
        timedelta(days=1),
    )
    assert await engine.on_batch(devices.IngestedBatch(tuple(week[:3]), ())) == []
    (candidate,) = await engine.on_batch(devices.IngestedBatch((week[3],), ()))
    assert candidate.title == "Weight up 2.3 kg in 3 days"


async def test_repeats_count_up_and_panic_never_resolves_itself(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.PANIC_BUTTON)
    clock = Clock()
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    panic = alerts.AlertCandidate(
        kind="panic",
        severity="critical",
        title="Panic button pressed",
        dedupe_key=f"resident:{resident_id}:panic",
        resident_id=resident_id,
        device_id=device_id,
    )
    (first,) = await lifecycle.raise_alerts([panic])
    clock.now += timedelta(seconds=30)
    (second,) = await lifecycle.raise_alerts([panic])
    assert (first.change, second.change) == ("raised", "repeated")
    assert second.alert_id == first.alert_id
    assert second.count == 2
    with pytest.raises(alerts.AlertStateError, match="never resolves itself"):
        await lifecycle.resolve(first.alert_id, None, outcome="cleared")
    assert await lifecycle.resolve_condition(panic.dedupe_key, "cleared") is None
    async with sessions() as session:
        timeline = (
            await session.exec(
                select(alerts.AlertTimelineEntry.kind)
                .where(alerts.AlertTimelineEntry.alert_id == first.alert_id)
                .order_by(col(alerts.AlertTimelineEntry.id))
            )
        ).all()
        # Without a team, nobody could be told: that, too, is on the timeline.
        assert list(timeline) == ["raised", "no_policy", "repeated"]


async def test_silent_device_alert_clears_and_flapping_reopens(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    resident_id, device_id = await _home(sessions, devices.DeviceKind.DOOR_SENSOR)
    clock = Clock()
    async with sessions() as session:
        device = await session.get(devices.Device, device_id)
        assert device is not None
        device.last_seen_at = clock.now - timedelta(hours=2)  # expected every 15 min
        device.battery_pct = 12
        session.add(device)
        await session.commit()
    engine = alerts.RuleEngine(sessions)
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    found, cleared = await engine.sweep(clock.now)
    assert sorted(c.kind for c in found) == ["device_silent", "low_battery"]
    assert cleared == []
    changes = await lifecycle.raise_alerts(found)
    assert all(c.severity == "technical" for c in changes)
    # The device speaks again, its battery at 20 %: silence clears, the battery does not
    # (20 % is between the alarm and the all-clear levels).
    async with sessions() as session:
        device = await session.get(devices.Device, device_id)
        assert device is not None
        device.last_seen_at, device.battery_pct = clock.now, 20
        session.add(device)
        await session.commit()
    found, cleared = await engine.sweep(clock.now)
    assert found == []
    assert cleared == [f"device:{device_id}:silent"]
    resolved = await lifecycle.resolve_condition(cleared[0], "back online")
    assert resolved is not None
    assert resolved.status == "resolved"
    # Silent again five minutes later: the same alert reopens instead of a new one ringing.
    clock.now += timedelta(minutes=5)
    again = alerts.AlertCandidate(
        kind="device_silent",
        severity="technical",
        title="door sensor silent",
        dedupe_key=f"device:{device_id}:silent",
        resident_id=resident_id,
        device_id=device_id,
        auto_resolves=True,
    )
    (reopened,) = await lifecycle.raise_alerts([again])
    assert reopened.change == "reopened"
    assert reopened.alert_id == resolved.alert_id
