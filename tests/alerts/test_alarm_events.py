"""One table of alarm event types: every alarm the contract names raises an alert through the
real ingestion and rules, and no alarm event is marked handled without an alert."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from server.alarm_path import AlarmPipeline
from server.db import create_engine, session_factory, upgrade_database


@dataclass
class Home:
    """A resident with a pendant, ingestion on SQLite, and the alarm path on its batches."""

    sessions: async_sessionmaker[AsyncSession]
    ingestor: devices.Ingestor
    alarms: AlarmPipeline
    resident_id: int
    device_id: str

    async def publish_event(self, payload: bytes) -> None:
        """A message on the device's event topic, committed and handed to the alarm path."""
        topic = devices.device_topic(self.device_id, "event")
        self.ingestor.submit(
            devices.InboundMessage(topic, payload, 1, False, 1, lane=devices.ALARM_LANE)
        )
        await self.ingestor.drain(within_s=10)

    async def alerts_of_kind(self, kind: str) -> list[alerts.Alert]:
        async with self.sessions() as session:
            found = await session.exec(select(alerts.Alert).where(alerts.Alert.kind == kind))
            return list(found.all())

    async def unhandled_events(self) -> list[devices.Event]:
        async with self.sessions() as session:
            found = await session.exec(
                select(devices.Event).where(col(devices.Event.alarm_handled_at).is_(None))
            )
            return list(found.all())


@pytest.fixture
async def home(sqlite_url: str) -> AsyncIterator[Home]:
    engine = create_engine(sqlite_url)
    await upgrade_database(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        resident = care.Resident(full_name="Kristín Einarsdóttir")
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        pendant = await devices.provision_device(
            session, kind=devices.DeviceKind.PANIC_BUTTON, resident_id=resident.id
        )
        await session.commit()
    lifecycle = alerts.AlertLifecycle(sessions)
    pipeline = AlarmPipeline(
        lifecycle=lifecycle,
        rules=alerts.RuleEngine(sessions),
        escalation=alerts.EscalationEngine(sessions, lifecycle, {}),
        live=None,
    )
    ingestor = devices.Ingestor(engine, ack=lambda _message: None, publish=lambda *_args: None)
    ingestor.subscribe(pipeline.on_batch)
    ingestor.start()
    try:
        yield Home(sessions, ingestor, pipeline, resident.id, pendant.device.id)
    finally:
        await ingestor.stop()
        await engine.dispose()


def _required_data(type_: str) -> dict[str, Any]:
    """The least data an event of this type needs to meet the contract."""
    values = {"string": "x", "number": 0, "object": {}}
    fields = devices.EVENT_TYPES[type_].fields
    return {key: values[spec.kind] for key, spec in fields.items() if spec.required}


def test_the_rules_word_exactly_the_alarm_types_of_the_contract() -> None:
    assert set(alerts.EVENT_ALARMS) == set(devices.ALARM_EVENT_TYPES)
    contract_alarms = {t for t, spec in devices.EVENT_TYPES.items() if spec.alarm}
    assert contract_alarms | {devices.UNREADABLE_EVENT} == devices.ALARM_EVENT_TYPES
    # A new alarm type in the contract rings even unworded; this asks for its words.
    unworded = [t for t, alarm in alerts.EVENT_ALARMS.items() if alarm == alerts.UNWORDED_ALARM]
    assert not unworded, f"give these alarm types a severity and title: {unworded}"


@pytest.mark.parametrize("type_", sorted(devices.ALARM_EVENT_TYPES - {devices.UNREADABLE_EVENT}))
async def test_every_alarm_event_type_raises_its_alert(home: Home, type_: str) -> None:
    payload = {"id": f"{type_}-1", "type": type_, "data": _required_data(type_)}
    await home.publish_event(json.dumps(payload).encode())
    (alert,) = await home.alerts_of_kind(type_)
    severity, title = alerts.EVENT_ALARMS[type_]
    assert (alert.severity, alert.title, alert.resident_id) == (severity, title, home.resident_id)
    assert await home.unhandled_events() == []


async def test_an_unreadable_event_raises_a_critical_alert(home: Home) -> None:
    await home.publish_event(b'{"id": "p-7", "type": "panic", "ts": "yesterday"}')
    (alert,) = await home.alerts_of_kind(devices.UNREADABLE_EVENT)
    assert alert.severity == alerts.AlertSeverity.CRITICAL
    assert await home.unhandled_events() == []


async def test_a_harmless_event_is_handled_without_an_alert(home: Home) -> None:
    await home.publish_event(json.dumps({"id": "d-1", "type": "bed_exit"}).encode())
    assert await home.alerts_of_kind("bed_exit") == []
    assert await home.unhandled_events() == []


async def test_an_alarm_event_of_a_type_nobody_knows_is_not_handled_silently(
    home: Home,
) -> None:
    # Stored unhandled by another version of Vaki, with a type this one has never heard of.
    async with home.sessions() as session:
        session.add(
            devices.Event(
                device_id=home.device_id,
                message_id="seizure-1",
                resident_id=home.resident_id,
                type="seizure",
                data={},
                received_at=care.utcnow() - timedelta(minutes=1),
            )
        )
        await session.commit()
    assert "seizure" not in alerts.EVENT_ALARMS
    await home.alarms.sweep()
    (alert,) = await home.alerts_of_kind("seizure")
    assert (alert.severity, alert.title) == alerts.UNWORDED_ALARM
    assert await home.unhandled_events() == []
