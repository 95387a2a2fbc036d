"""The alert lifecycle against alarm fatigue and silence: a second press rings again, a
lasting state does not count up, technical alerts stay with technicians, an outage is one
incident."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _team_home(
    sessions: async_sessionmaker[AsyncSession], homes: int = 1
) -> tuple[int, int, list[int], int]:
    """A team whose policy tells the nurse on the console and, then, the relatives by SMS;
    ``homes`` residents in it with a daughter who receives alerts. (team, nurse, residents,
    policy)."""
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        team = care.CareTeam(name="Ólafsfjörður")
        session.add(team)
        nurse = await care.add_staff_user(
            session,
            username=f"nurse-{uuid.uuid4().hex[:6]}",
            full_name="Helga Björnsdóttir",
            password="x" * 12,
            role=care.StaffRole.NURSE,
            organisation=org,
        )
        await session.flush()
        assert team.id is not None
        assert nurse.id is not None
        session.add(care.TeamMembership(team_id=team.id, staff_id=nurse.id))
        residents = []
        for n in range(homes):
            resident = care.Resident(full_name=f"Íbúi {n}")
            session.add(resident)
            await session.flush()
            assert resident.id is not None
            residents.append(resident.id)
            session.add_all(
                [
                    care.ResidentTeam(resident_id=resident.id, team_id=team.id),
                    care.Contact(
                        resident_id=resident.id,
                        name="Anna",
                        relationship="daughter",
                        phone="+354 899 1111",
                        receives_alerts=True,
                    ),
                ]
            )
        policy = alerts.EscalationPolicy(team_id=team.id, name="Day and night")
        session.add(policy)
        await session.flush()
        assert policy.id is not None
        session.add_all(
            [
                alerts.EscalationTier(
                    policy_id=policy.id,
                    position=1,
                    timeout_s=60,
                    recipients=[{"kind": "team"}],
                    channels=["console"],
                ),
                alerts.EscalationTier(
                    policy_id=policy.id,
                    position=2,
                    timeout_s=60,
                    recipients=[{"kind": "relatives"}],
                    channels=["sms"],
                ),
            ]
        )
        await session.commit()
        return team.id, nurse.id, residents, policy.id


async def _panic_event(
    sessions: async_sessionmaker[AsyncSession], resident_id: int, device_id: str, at: datetime
) -> devices.Event:
    async with sessions() as session:
        event = devices.Event(
            device_id=device_id,
            message_id=uuid.uuid4().hex[:12],
            resident_id=resident_id,
            type="panic",
            received_at=at,
        )
        session.add(event)
        await session.commit()
        await session.refresh(event)
        return event


async def _timeline(sessions: async_sessionmaker[AsyncSession], alert_id: int) -> list[str]:
    async with sessions() as session:
        rows = await session.exec(
            select(alerts.AlertTimelineEntry.kind)
            .where(alerts.AlertTimelineEntry.alert_id == alert_id)
            .order_by(col(alerts.AlertTimelineEntry.id))
        )
        return list(rows.all())


async def _steps(
    sessions: async_sessionmaker[AsyncSession], alert_id: int
) -> list[tuple[str, int, int, str]]:
    async with sessions() as session:
        rows = await session.exec(
            select(alerts.EscalationStep)
            .where(alerts.EscalationStep.alert_id == alert_id)
            .order_by(col(alerts.EscalationStep.id))
        )
        return [(s.kind, s.round, s.tier, s.status) for s in rows.all()]


async def test_a_panic_pressed_again_after_acknowledgement_opens_and_escalates_from_tier_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, nurse, (resident,), _ = await _team_home(sessions)
    async with sessions() as session:
        pendant = await devices.provision_device(
            session, kind=devices.DeviceKind.PANIC_BUTTON, resident_id=resident
        )
        await session.commit()
        device_id = pendant.device.id
    clock = Clock()
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    heard: list[alerts.AlertChange | alerts.TeamNews] = []

    async def listener(change: alerts.AlertChange | alerts.TeamNews) -> None:
        heard.append(change)

    lifecycle.listen(listener)
    first = await _panic_event(sessions, resident, device_id, clock.now)
    (raised,) = await lifecycle.raise_alerts([c for c in [alerts.event_alarm(first)] if c])
    clock.now += timedelta(minutes=2)
    await lifecycle.acknowledge(raised.alert_id, nurse)
    assert await _steps(sessions, raised.alert_id) == [
        ("notify", 1, 1, "cancelled"),
        ("retrigger", 2, 0, "pending"),
    ]
    clock.now += timedelta(minutes=3)
    second = await _panic_event(sessions, resident, device_id, clock.now)
    (again,) = await lifecycle.raise_alerts([c for c in [alerts.event_alarm(second)] if c])
    assert (again.change, again.alert_id, again.status, again.count) == (
        "pressed_again",
        raised.alert_id,
        "open",
        2,
    )
    assert again.escalation == "active"
    # The retrigger waiting for "acknowledged but not resolved" is replaced by a new climb.
    assert await _steps(sessions, raised.alert_id) == [
        ("notify", 1, 1, "cancelled"),
        ("retrigger", 2, 0, "cancelled"),
        ("notify", 3, 1, "pending"),
    ]
    assert await _timeline(sessions, raised.alert_id) == ["raised", "acknowledged", "pressed_again"]
    assert [c.change for c in heard] == ["raised", "acknowledged", "pressed_again"]
    async with sessions() as session:
        alert = await session.get(alerts.Alert, raised.alert_id)
        assert alert is not None
        assert (alert.acknowledged_by, alert.acknowledged_at) == (None, None)
    # A third press while it is open again only counts: it is already ringing.
    third = await _panic_event(sessions, resident, device_id, clock.now)
    (repeat,) = await lifecycle.raise_alerts([c for c in [alerts.event_alarm(third)] if c])
    assert (repeat.change, repeat.count) == ("repeated", 3)


async def test_technical_alerts_go_to_technicians_not_through_the_clinical_policy(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    team, _, (resident,), _ = await _team_home(sessions)
    clock = Clock()
    async with sessions() as session:
        sensor = await devices.provision_device(
            session, kind=devices.DeviceKind.MOTION_SENSOR, resident_id=resident
        )
        sensor.device.last_seen_at = clock.now - timedelta(hours=3)
        sensor.device.battery_pct = 9
        await session.commit()
    engine = alerts.RuleEngine(sessions)
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    found, _ = await engine.sweep(clock.now)
    assert sorted(c.kind for c in found) == ["device_silent", "low_battery"]
    changes = await lifecycle.raise_alerts(found)
    assert sorted(c.change for c in changes) == ["raised", "raised"]
    for change in changes:
        assert (change.team_id, change.escalation) == (team, "none")
        assert await _timeline(sessions, change.alert_id) == ["raised", "for_technicians"]
        assert await _steps(sessions, change.alert_id) == []
    # Every sweep finds the same states again: nothing counts up, nobody hears of it again.
    for _ in range(3):
        clock.now += timedelta(minutes=1)
        found, _ = await engine.sweep(clock.now)
        assert len(found) == 2
        assert await lifecycle.raise_alerts(found) == []
    async with sessions() as session:
        counts = (await session.exec(select(alerts.Alert.count))).all()
        assert list(counts) == [1, 1]
        assert (await session.exec(select(alerts.Notification))).all() == []


async def test_many_devices_silent_at_once_are_one_incident_that_clears_as_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    team, _, residents, _ = await _team_home(sessions, homes=5)
    clock = Clock()
    ids = []
    async with sessions() as session:
        for resident in residents:
            sensor = await devices.provision_device(
                session, kind=devices.DeviceKind.MOTION_SENSOR, resident_id=resident
            )
            sensor.device.last_seen_at = clock.now - timedelta(minutes=5)
            ids.append(sensor.device.id)
        await session.commit()
    engine = alerts.RuleEngine(sessions)
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    assert (await engine.sweep(clock.now))[0] == []
    # The gateway goes down: an hour later every sensor is past its silence limit.
    clock.now += timedelta(hours=1)
    found, cleared = await engine.sweep(clock.now)
    assert [(c.kind, c.team_id, c.severity) for c in found] == [
        ("devices_silent", team, "technical")
    ]
    assert found[0].details is not None
    assert found[0].details["devices"] == sorted(ids)
    assert cleared == []
    (incident,) = await lifecycle.raise_alerts(found)
    assert (incident.team_id, incident.escalation) == (team, "none")
    # The gateway is back: the incident clears by itself.
    async with sessions() as session:
        for device_id in ids:
            device = await session.get(devices.Device, device_id)
            assert device is not None
            device.last_seen_at = clock.now
            session.add(device)
        await session.commit()
    found, cleared = await engine.sweep(clock.now)
    assert found == []
    assert cleared == [f"team:{team}:outage"]
    resolved = await lifecycle.resolve_condition(cleared[0], "back online")
    assert resolved is not None
    assert resolved.alert_id == incident.alert_id
