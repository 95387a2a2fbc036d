"""The alarm path when a part of it fails: raising an alert fails on the database, a rule
throws for another resident, an ack cannot be published, one alarm cannot be raised at
all. Faults are made in the real database (a trigger that refuses alerts), not mocked, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from server.alarm_lanes import lane_plan
from server.alarm_path import AlarmPipeline
from server.db import create_engine, session_factory, upgrade_database
from server.settings import Settings


@dataclass
class Home:
    """Two residents, a pendant and a cuff each, ingestion and the alarm path on SQLite."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    ingestor: devices.Ingestor
    alarms: AlarmPipeline
    residents: list[int]
    pendants: list[str]
    cuffs: list[str]
    doors: list[str]

    def submit(self, device_id: str, channel: str, document: dict[str, Any]) -> None:
        lane = devices.ALARM_LANE if channel == "event" else "main"
        topic = devices.device_topic(device_id, channel)
        payload = json.dumps(document).encode()
        self.ingestor.submit(devices.InboundMessage(topic, payload, 1, False, 1, lane=lane))

    async def alerts(self) -> list[alerts.Alert]:
        async with self.sessions() as session:
            found = await session.exec(select(alerts.Alert).order_by(col(alerts.Alert.id)))
            return list(found.all())

    async def unhandled(self) -> list[devices.Event]:
        async with self.sessions() as session:
            found = await session.exec(
                select(devices.Event).where(col(devices.Event.alarm_handled_at).is_(None))
            )
            return list(found.all())

    async def refuse_alerts(self, when: str = "TRUE") -> None:
        """The database refuses to store an alert (for the alerts ``when`` names)."""
        async with self.engine.begin() as connection:
            if self.engine.dialect.name == "sqlite":
                await connection.execute(
                    text(
                        "CREATE TRIGGER refuse_alerts BEFORE INSERT ON alert "
                        f"WHEN {when} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
                    )
                )
                return
            await connection.execute(
                text(
                    "CREATE FUNCTION refuse_alert() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    f"BEGIN IF {when} THEN RAISE EXCEPTION 'could not write block'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_alerts BEFORE INSERT ON alert "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_alert()"
                )
            )

    async def heal(self) -> None:
        async with self.engine.begin() as connection:
            if self.engine.dialect.name == "sqlite":
                await connection.execute(text("DROP TRIGGER refuse_alerts"))
                return
            await connection.execute(text("DROP TRIGGER refuse_alerts ON alert"))
            await connection.execute(text("DROP FUNCTION refuse_alert()"))

    async def age_events(self) -> None:
        """Let the events' grace time pass (they arrived a minute ago)."""
        async with self.sessions() as session:
            await session.exec(
                update(devices.Event).values(received_at=care.utcnow() - timedelta(minutes=1))
            )
            await session.commit()


def bp(n: int, systolic: int) -> dict[str, Any]:
    return {
        "id": f"bp-{n}",
        "type": "blood_pressure",
        "values": {"systolic": systolic, "diastolic": 80, "pulse": 70},
    }


def panic(n: int) -> dict[str, Any]:
    return {"id": f"p-{n}", "type": "panic"}


async def build_home(
    database_url: str, publish: Callable[[str, bytes, int, bool], None] | None = None
) -> Home:
    engine = create_engine(database_url)
    await upgrade_database(engine)
    sessions = session_factory(engine)
    residents: list[int] = []
    pendants: list[str] = []
    cuffs: list[str] = []
    doors: list[str] = []
    async with sessions() as session:
        for name in ("Kristín Einarsdóttir", "Páll Ólafsson"):
            resident = care.Resident(full_name=name)
            session.add(resident)
            await session.flush()
            assert resident.id is not None
            residents.append(resident.id)
            for kind, found in (
                (devices.DeviceKind.PANIC_BUTTON, pendants),
                (devices.DeviceKind.BLOOD_PRESSURE_MONITOR, cuffs),
                (devices.DeviceKind.DOOR_SENSOR, doors),
            ):
                made = await devices.provision_device(session, kind=kind, resident_id=resident.id)
                found.append(made.device.id)
        await session.commit()
    lifecycle = alerts.AlertLifecycle(sessions)
    pipeline = AlarmPipeline(
        lifecycle=lifecycle,
        rules=alerts.RuleEngine(sessions),
        escalation=alerts.EscalationEngine(sessions, lifecycle, {}),
        live=None,
    )
    ingestor = devices.Ingestor(
        engine, ack=lambda _message: None, publish=publish or (lambda *_args: None)
    )
    ingestor.subscribe(pipeline.on_batch)
    ingestor.start()
    return Home(engine, sessions, ingestor, pipeline, residents, pendants, cuffs, doors)


@pytest.fixture
async def home(database_url: str) -> AsyncIterator[Home]:
    built = await build_home(database_url)
    try:
        yield built
    finally:
        await built.alarms.stop()
        await built.ingestor.stop()
        await built.engine.dispose()


async def test_a_panic_whose_alert_could_not_be_stored_rings_within_seconds(home: Home) -> None:
    heard = asyncio.Event()

    async def listen(change: alerts.AlertChange | alerts.TeamNews) -> None:
        heard.set()

    home.alarms.lifecycle.listen(listen)
    # The minute-long sweep has just run; only the alarm events' own sweep can help.
    home.alarms.start(Settings(escalation_sweep_s=0.2, rules_sweep_s=3600))
    await home.refuse_alerts()
    home.submit(home.pendants[0], "event", panic(1))
    await home.ingestor.drain()
    assert await home.alerts() == []
    assert len(await home.unhandled()) == 1
    await home.heal()
    await home.age_events()
    await asyncio.wait_for(heard.wait(), 10)
    (alert,) = await home.alerts()
    assert (alert.kind, alert.resident_id) == ("panic", home.residents[0])
    assert await home.unhandled() == []


async def test_a_rule_that_throws_for_one_resident_holds_back_no_alarm_of_the_batch(
    home: Home,
) -> None:
    # Páll's time zone cannot be read, so the night-door rule throws for him.
    async with home.sessions() as session:
        pall = await session.get(care.Resident, home.residents[1])
        assert pall is not None
        pall.time_zone = "Atlantic/Nowhere"
        session.add(pall)
        await session.commit()
    home.submit(home.doors[1], "event", {"id": "d-1", "type": "door_open"})
    home.submit(home.pendants[0], "event", panic(1))
    home.submit(home.cuffs[0], "reading", bp(1, 200))
    await home.ingestor.drain()
    found = {(a.kind, a.resident_id) for a in await home.alerts()}
    assert found == {("panic", home.residents[0]), ("vital_range", home.residents[0])}
    assert [e.type for e in await home.unhandled()] == []


async def test_a_vital_alarm_whose_alert_could_not_be_stored_is_raised_again(home: Home) -> None:
    await home.refuse_alerts()
    home.submit(home.cuffs[0], "reading", bp(1, 200))
    await home.ingestor.drain()
    assert await home.alerts() == []
    assert home.alarms.batches_to_retry == 1
    # Still refused: kept for the next sweep.
    await home.alarms.sweep_alarms()
    assert home.alarms.batches_to_retry == 1
    await home.heal()
    await home.alarms.sweep_alarms()
    (alert,) = await home.alerts()
    assert (alert.kind, alert.resident_id) == ("vital_range", home.residents[0])
    assert home.alarms.batches_to_retry == 0


async def test_the_alarm_path_hears_a_batch_whose_acks_could_not_be_published(
    sqlite_url: str,
) -> None:
    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        raise devices.MqttUnavailableError("the link is stopping")

    built = await build_home(sqlite_url, publish)
    try:
        built.submit(built.cuffs[0], "reading", bp(1, 200))
        built.submit(built.pendants[0], "event", panic(1))
        await built.ingestor.drain()
        kinds = sorted(a.kind for a in await built.alerts())
        assert kinds == ["panic", "vital_range"]
        assert await built.unhandled() == []
    finally:
        await built.ingestor.stop()
        await built.engine.dispose()


async def test_one_alarm_that_cannot_be_raised_holds_back_no_other(home: Home) -> None:
    # Both pendants' alarms were missed by the batch path; the database refuses Kristín's.
    await home.refuse_alerts(f"NEW.device_id = '{home.pendants[0]}'")
    home.submit(home.pendants[0], "event", panic(1))
    home.submit(home.pendants[1], "event", panic(2))
    await home.ingestor.drain()
    assert {a.device_id for a in await home.alerts()} == {home.pendants[1]}
    # A new press from Páll is stored behind Kristín's, unhandled, with a low battery.
    async with home.sessions() as session:
        session.add(
            devices.Event(
                device_id=home.pendants[1],
                message_id="p-3",
                resident_id=home.residents[1],
                type="fall",
                data={},
            )
        )
        cuff = await session.get(devices.Device, home.cuffs[1])
        assert cuff is not None
        cuff.battery_pct = 5
        session.add(cuff)
        await session.commit()
    await home.age_events()
    told: list[str] = []

    async def listen(change: alerts.AlertChange | alerts.TeamNews) -> None:
        if isinstance(change, alerts.AlertChange):
            told.append(change.kind)

    home.alarms.lifecycle.listen(listen)
    await home.alarms.sweep()
    kinds = sorted(a.kind for a in await home.alerts())
    assert kinds == ["fall", "low_battery", "panic"]
    assert [e.device_id for e in await home.unhandled()] == [home.pendants[0]]
    assert sorted(told) == ["fall", "low_battery"]


async def test_a_chunk_with_an_alarm_that_cannot_be_raised_raises_the_rest(home: Home) -> None:
    await home.refuse_alerts("NEW.dedupe_key = 'poison'")
    candidates = [
        alerts.AlertCandidate(
            kind="panic",
            severity="critical",
            title="Panic button pressed",
            dedupe_key=key,
            resident_id=home.residents[0],
        )
        for key in ("first", "poison", "last")
    ]
    with pytest.raises(alerts.AlertStateError, match="poison"):
        await home.alarms.lifecycle.raise_alerts(candidates)
    assert [a.dedupe_key for a in await home.alerts()] == ["first", "last"]


def test_raw_payloads_come_on_the_unshared_alarm_lane() -> None:
    topic = devices.device_topic("z2m-smoke-1", "raw/z2m")
    plan = {lane: subs for lane, subs, _, _ in lane_plan(Settings(), "vaki")}
    alarm = [t for t, _ in plan[devices.ALARM_LANE] if mqtt.topic_matches_sub(t, topic)]
    main = [t for t, _ in plan["main"] if mqtt.topic_matches_sub(t.split("/", 2)[2], topic)]
    assert alarm == ["vaki/v1/d/+/raw/+"]
    assert main == []
