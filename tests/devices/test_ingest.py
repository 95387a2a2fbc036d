"""Ingestion end to end: a device publishes over a real broker, the service commits and acks."""

from __future__ import annotations

import asyncio
import json
import queue
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from server.app import create_app
from server.db import create_engine, session_factory
from server.runtime import Runtime
from server.settings import Settings
from tests.conftest import MqttProbe


@dataclass
class Home:
    """A running service on Mosquitto, one provisioned device, and that device's client."""

    runtime: Runtime
    sessions: async_sessionmaker[AsyncSession]
    device_id: str
    device: MqttProbe
    resident_id: int

    def topic(self, channel: str) -> str:
        return devices.device_topic(self.device_id, channel)

    def acked_ids(self, count: int, timeout: float = 10) -> list[str]:
        """Collect ``count`` acked ids from the device's ack topic."""
        ids: list[str] = []
        while len(ids) < count:
            message = self.device.next_message(timeout)
            assert message.topic == self.topic("ack")
            ids.extend(json.loads(message.payload)["ids"])
        return ids

    async def settle(self) -> None:
        """Wait until the service has committed everything it received."""
        await asyncio.sleep(0.3)
        assert self.runtime.ingestor is not None
        await self.runtime.ingestor.drain(within_s=10)

    async def rows(self, model: type[devices.Reading] | type[devices.Event]) -> list[Any]:
        async with self.sessions() as session:
            found = await session.exec(
                select(model).where(col(model.device_id) == self.device_id).order_by(col(model.id))
            )
            return list(found.all())

    async def dead_letters(self, device_id: str | None = None) -> list[devices.DeadLetter]:
        async with self.sessions() as session:
            # The shared broker may carry other tests' devices: look at this one only.
            found = await session.exec(
                select(devices.DeadLetter)
                .where(col(devices.DeadLetter.device_id) == (device_id or self.device_id))
                .order_by(col(devices.DeadLetter.id))
            )
            return list(found.all())


@pytest.fixture
async def home(
    settings: Settings, mosquitto: tuple[str, int], database_url: str
) -> AsyncIterator[Home]:
    host, port = mosquitto
    settings.mqtt_url = f"mqtt://{host}:{port}"
    settings.database_url = database_url
    settings.mqtt_session_expiry_s = 60
    app = create_app(settings)
    # The app runs on the test client's own event loop: the test keeps an engine of its own.
    engine = create_engine(database_url)
    async with AsyncTestClient(app=app):
        runtime: Runtime = app.state.runtime
        sessions = session_factory(engine)
        async with sessions() as session:
            resident = care.Resident(full_name="Sigurður G.")
            session.add(resident)
            await session.flush()
            assert resident.id is not None
            provisioned = await devices.provision_device(
                session,
                kind=devices.DeviceKind.BLOOD_PRESSURE_MONITOR,
                resident_id=resident.id,
                device_id=f"bp-{uuid.uuid4().hex[:10]}",
            )
            await session.commit()
        device_id = provisioned.device.id
        probe = MqttProbe(host, port, client_id=device_id)
        assert not probe.connect().is_failure
        probe.subscribe(devices.device_topic(device_id, "ack"))
        yield Home(runtime, sessions, device_id, probe, resident.id)
        probe.close()
    await engine.dispose()


def bp(message_id: str, systolic: int = 142, ts: datetime | None = None) -> dict[str, Any]:
    reading: dict[str, Any] = {
        "id": message_id,
        "type": "blood_pressure",
        "values": {"systolic": systolic, "diastolic": 91, "pulse": 71},
    }
    reading["ts"] = (ts or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return reading


@pytest.mark.mosquitto
async def test_readings_are_stored_once_and_acked_after_commit(home: Home) -> None:
    home.device.publish(home.topic("reading"), json.dumps(bp("r-1")))
    assert home.acked_ids(1) == ["r-1"]
    # The ack came after the commit: the row is there.
    rows = await home.rows(devices.Reading)
    assert [(r.message_id, r.values["systolic"], r.resident_id) for r in rows] == [
        ("r-1", 142, home.resident_id)
    ]
    batch = {"batch": [bp("r-2", 150), bp("r-3", 131), bp("r-1")]}
    home.device.publish(home.topic("reading"), json.dumps(batch))
    assert sorted(home.acked_ids(3)) == ["r-1", "r-2", "r-3"]
    # A resend (lost ack) is acked again and stored nowhere twice.
    home.device.publish(home.topic("reading"), json.dumps(bp("r-2", 150)))
    assert home.acked_ids(1) == ["r-2"]
    await home.settle()
    assert [r.message_id for r in await home.rows(devices.Reading)] == ["r-1", "r-2", "r-3"]


@pytest.mark.mosquitto
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00binary", "UTF-8"),
        (b"x" * (64 * 1024 + 1), "limit is 65536 bytes"),
        (
            json.dumps({"id": "u1", "type": "cholesterol", "values": {"x": 1}}).encode(),
            "cholesterol",
        ),
        (
            json.dumps(
                {"id": "m1", "type": "blood_pressure", "values": {"systolic": 120}}
            ).encode(),
            "diastolic",
        ),
        (json.dumps({"id": "s1", "type": "spo2", "values": {"spo2": 150}}).encode(), "150"),
        (
            json.dumps(
                {"id": "b1", "type": "blood_pressure", "values": {"systolic": 900, "diastolic": 80}}
            ).encode(),
            "900",
        ),
    ],
    ids=[
        "invalid-json",
        "binary",
        "too-large",
        "unknown-type",
        "missing-field",
        "spo2-150",
        "systolic-900",
    ],
)
async def test_bad_readings_become_dead_letters_with_reason_and_bytes(
    home: Home, payload: bytes, reason: str
) -> None:
    home.device.publish(home.topic("reading"), payload)
    await home.settle()
    letters = await home.dead_letters()
    assert len(letters) == 1
    letter = letters[0]
    assert letter.device_id == home.device_id
    assert letter.topic == home.topic("reading")
    assert reason in letter.reason
    # The whole payload, or the one rejected item of it, is kept byte for byte.
    if b'"id"' in payload:
        assert json.loads(letter.payload) == json.loads(payload)
    else:
        assert letter.payload == payload
    assert await home.rows(devices.Reading) == []
    # Items with an id are acked, so the device stops resending what can never be stored.
    if b'"id"' in payload and len(payload) < 1000:
        assert home.acked_ids(1) == [json.loads(payload)["id"]]


@pytest.mark.mosquitto
async def test_an_unreadable_event_still_raises_an_event(home: Home) -> None:
    home.device.publish(home.topic("event"), b'{"id": "e-1", "type": "panik"}')
    home.device.publish(home.topic("event"), b"\x00\x01garbage")
    await home.settle()
    events = await home.rows(devices.Event)
    assert [e.type for e in events] == [devices.UNREADABLE_EVENT] * 2
    assert events[0].message_id == "e-1"
    assert "panik" in events[0].data["reason"]
    assert events[1].message_id == devices.raw_message_id(b"\x00\x01garbage")
    assert len(await home.dead_letters()) == 2
    assert home.acked_ids(1) == ["e-1"]


@pytest.mark.mosquitto
async def test_topic_outside_the_contract_and_unknown_device(home: Home) -> None:
    bad_id, unknown = f"bad${uuid.uuid4().hex[:6]}!", f"nobody-{uuid.uuid4().hex[:6]}"
    home.device.publish(f"vaki/v1/d/{bad_id}/reading", json.dumps(bp("x-1")))
    home.device.publish(f"vaki/v1/d/{unknown}/event", b'{"id": "p", "type": "panic"}')
    await home.settle()
    (outside,) = await home.dead_letters(bad_id)
    assert "device id" in outside.reason
    assert outside.topic == f"vaki/v1/d/{bad_id}/reading"
    (stranger,) = await home.dead_letters(unknown)
    assert stranger.reason == "unknown device"
    assert stranger.payload == b'{"id": "p", "type": "panic"}'


@pytest.mark.mosquitto
async def test_retained_readings_are_not_ingested_and_are_cleared(
    settings: Settings,
    mosquitto: tuple[str, int],
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A retained reading replays to every new subscriber: it is stale, not a measurement."""
    host, port = mosquitto
    async with sessions() as session:
        provisioned = await devices.provision_device(
            session,
            kind=devices.DeviceKind.SCALE,
            resident_id=None,
            device_id=f"scale-{uuid.uuid4().hex[:10]}",
        )
        await session.commit()
    topic = devices.device_topic(provisioned.device.id, "reading")
    firmware_bug = MqttProbe(host, port, client_id=provisioned.device.id)
    assert not firmware_bug.connect().is_failure
    firmware_bug.publish(topic, json.dumps(bp("stale-1")), retain=True)
    firmware_bug.close()

    settings.mqtt_url = f"mqtt://{host}:{port}"
    settings.database_url = database_url
    settings.mqtt_session_expiry_s = 60
    app = create_app(settings)
    async with AsyncTestClient(app=app):
        runtime: Runtime = app.state.runtime
        assert runtime.ingestor is not None
        await asyncio.sleep(1.0)
        await runtime.ingestor.drain(within_s=10)
    async with sessions() as session:
        stored = await session.exec(
            select(devices.Reading).where(col(devices.Reading.device_id) == provisioned.device.id)
        )
        assert stored.all() == []
    # The service cleared it, so the next subscriber does not get it either.
    late = MqttProbe(host, port, client_id=f"late-{uuid.uuid4().hex[:6]}")
    assert not late.connect().is_failure
    late.subscribe(topic)
    with pytest.raises(queue.Empty):
        late.next_message(timeout=1)
    late.close()


@pytest.mark.mosquitto
async def test_status_last_will_and_clock_skew(home: Home) -> None:
    home.device.publish(
        home.topic("status"), b'{"online": true, "battery": 64, "fw": "1.4.2"}', retain=True
    )
    future = datetime.now(UTC) + timedelta(hours=3)
    home.device.publish(home.topic("reading"), json.dumps(bp("skew-1", ts=future)))
    assert home.acked_ids(1) == ["skew-1"]
    await home.settle()
    async with home.sessions() as session:
        device = await session.get(devices.Device, home.device_id)
        assert device is not None
        assert (device.online, device.battery_pct, device.firmware) == (True, 64, "1.4.2")
        assert device.last_seen_at is not None
        # The device's clock is three hours ahead: flagged, and last seen stays "now".
        assert device.last_seen_at < datetime.now(UTC) + timedelta(seconds=5)
    (reading,) = await home.rows(devices.Reading)
    assert reading.clock_skewed
    assert reading.device_ts is not None
    assert abs(reading.device_ts - future) < timedelta(seconds=1)
    # The broker publishes the Last Will when the device vanishes without saying goodbye.
    host, port = home.device.host, home.device.port
    pendant = MqttProbe(host, port, client_id=f"{home.device_id}-lw")
    pendant.client.will_set(home.topic("status"), b'{"online": false}', qos=1, retain=True)
    assert not pendant.connect().is_failure
    connection = pendant.client.socket()
    assert connection is not None
    connection.close()  # no DISCONNECT: a crash or a lost connection
    pendant.client.loop_stop()
    for _ in range(50):
        await asyncio.sleep(0.2)
        async with home.sessions() as session:
            device = await session.get(devices.Device, home.device_id)
            assert device is not None
            if not device.online:
                break
    assert device.online is False


@pytest.mark.postgres
@pytest.mark.mosquitto
async def test_database_outage_holds_acks_and_loses_nothing(
    settings: Settings, mosquitto: tuple[str, int], postgres_url: str, postgres_admin: str
) -> None:
    """While PostgreSQL refuses connections nothing is acked; then all is stored once."""
    import psycopg

    host, port = mosquitto
    settings.mqtt_url = f"mqtt://{host}:{port}"
    settings.database_url = postgres_url
    settings.mqtt_session_expiry_s = 60
    name = postgres_url.rsplit("/", 1)[1]
    app = create_app(settings)
    engine = create_engine(postgres_url)
    async with AsyncTestClient(app=app) as client:
        runtime: Runtime = app.state.runtime
        sessions = session_factory(engine)
        async with sessions() as session:
            provisioned = await devices.provision_device(
                session,
                kind=devices.DeviceKind.SCALE,
                resident_id=None,
                device_id=f"scale-{uuid.uuid4().hex[:10]}",
            )
            await session.commit()
        device_id = provisioned.device.id
        device = MqttProbe(host, port, client_id=device_id)
        assert not device.connect().is_failure
        device.subscribe(devices.device_topic(device_id, "ack"))

        def weight(message_id: str) -> bytes:
            return json.dumps(
                {"id": message_id, "type": "weight", "values": {"weight": 71.5}}
            ).encode()

        with psycopg.connect(postgres_admin, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            for n in range(5):
                device.publish(devices.device_topic(device_id, "reading"), weight(f"w-{n}"))
            # Down: no ack reaches the device, and /readyz says so.
            with pytest.raises(queue.Empty):
                device.next_message(timeout=2)
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"]["ok"] is False
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        acked: list[str] = []
        while len(acked) < 5:
            acked.extend(json.loads(device.next_message(timeout=30).payload)["ids"])
        assert sorted(acked) == [f"w-{n}" for n in range(5)]
        assert runtime.ingestor is not None
        await runtime.ingestor.drain(within_s=10)
        async with sessions() as session:
            rows = await session.exec(
                select(devices.Reading).where(col(devices.Reading.device_id) == device_id)
            )
            assert sorted(r.message_id for r in rows.all()) == [f"w-{n}" for n in range(5)]
        assert (await client.get("/readyz")).status_code == 200
        device.close()
    await engine.dispose()


@pytest.mark.mosquitto
async def test_raw_vendor_payloads_are_decoded_checked_and_acked_by_content_id(home: Home) -> None:
    # GATT Blood Pressure Measurement, kPa: flags 01 | 16.0 | 10.7 | 12.5 kPa (SFLOAT, exp -1)
    gatt = bytes.fromhex("01 a0f0 6bf0 7df0")
    home.device.publish(home.topic("raw/gatt-2a35"), gatt)
    assert home.acked_ids(1) == [devices.raw_message_id(gatt)]
    # Zigbee2MQTT contact sensor: the door opened; battery 81 %.
    z2m = b'{"contact": false, "battery": 81, "linkquality": 120}'
    home.device.publish(home.topic("raw/z2m"), z2m)
    assert home.acked_ids(1) == [devices.raw_message_id(z2m)]
    # A decodable but implausible measurement: systolic SFLOAT 0x10C8 = 200 x 10 = 2000 mmHg.
    absurd = bytes.fromhex("00 c810 5000 5d00")
    home.device.publish(home.topic("raw/gatt-2a35"), absurd)
    # Bytes the codec cannot read, and a codec nobody knows.
    home.device.publish(home.topic("raw/gatt-2a35"), b"\x00\x01")
    home.device.publish(home.topic("raw/acme-9000"), b"\x01\x02\x03")
    await home.settle()
    (reading,) = await home.rows(devices.Reading)
    assert reading.type == "blood_pressure"
    assert reading.values == {"systolic": 120.0, "diastolic": 80.3, "mean_arterial": 93.8}
    assert reading.message_id == devices.raw_message_id(gatt)
    (event,) = await home.rows(devices.Event)
    assert event.type == "door_open"
    async with home.sessions() as session:
        device = await session.get(devices.Device, home.device_id)
        assert device is not None
        assert device.battery_pct == 81
    reasons = [letter.reason for letter in await home.dead_letters()]
    assert len(reasons) == 3
    assert any("2000" in reason for reason in reasons)
    assert any("acme-9000" in reason for reason in reasons)
