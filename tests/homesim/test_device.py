"""The virtual device, written from docs/mqtt.md alone, against the real service and Mosquitto.

Every test acks through the real service (``create_app`` in-process), never a fake server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from homesim import VirtualDevice
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings
from tests.conftest import MqttProbe, PrivateMosquitto

# The limits docs/mqtt.md recommends for Mosquitto in front of the service.
BROKER_CONFIG = "allow_anonymous true\nmax_inflight_messages 1000\nmax_queued_messages 100000\n"
# The doc's example: a GATT blood pressure measurement and the id the server acks it under.
GATT_BP = bytes.fromhex("048e005b006c004700")
GATT_BP_ID = "8455c115f474e9f96eee166ac0b802e5"
# Fast timings so that resends and reconnects happen within a test.
FAST: dict[str, Any] = {
    "resend_first_s": 0.5,
    "resend_max_s": 2.0,
    "reconnect_min_s": 0.2,
    "reconnect_max_s": 1.0,
}


@dataclass
class Vaki:
    """The real service running in-process on a broker, and a look into its database."""

    sessions: async_sessionmaker[AsyncSession]
    host: str
    port: int
    resident_id: int
    device_ids: list[str] = field(default_factory=list)

    async def provision(
        self, kind: devices.DeviceKind = devices.DeviceKind.HOME_HUB
    ) -> tuple[str, str]:
        """Register a device for the resident; returns its id and password."""
        async with self.sessions() as session:
            provisioned = await devices.provision_device(
                session,
                kind=kind,
                resident_id=self.resident_id,
                device_id=f"vd-{uuid.uuid4().hex[:12]}",
            )
            await session.commit()
        self.device_ids.append(provisioned.device.id)
        return provisioned.device.id, provisioned.secret

    def device(self, device_id: str, password: str, **options: Any) -> VirtualDevice:
        """A virtual device on this service's broker."""
        return VirtualDevice(device_id, password, self.host, self.port, **options)

    async def stored(self, device_id: str) -> dict[str, int]:
        """How many rows each message id has in the reading and event tables together."""
        counts: dict[str, int] = {}
        async with self.sessions() as session:
            for model in (devices.Reading, devices.Event):
                rows = await session.exec(
                    select(model.message_id, func.count())
                    .where(col(model.device_id) == device_id)
                    .group_by(col(model.message_id))
                )
                for message_id, count in rows.all():
                    counts[message_id] = counts.get(message_id, 0) + count
        return counts

    async def dead_letters(self, device_id: str) -> list[devices.DeadLetter]:
        """What the service could not use from this device."""
        async with self.sessions() as session:
            found = await session.exec(
                select(devices.DeadLetter).where(col(devices.DeadLetter.device_id) == device_id)
            )
            return list(found.all())

    async def device_row(self, device_id: str) -> devices.Device:
        """The device's registry row as the service last wrote it."""
        async with self.sessions() as session:
            device = await session.get(devices.Device, device_id)
            assert device is not None
            return device


def forget_on_broker(host: str, port: int, device_ids: Iterable[str]) -> None:
    """Clear the retained status and the persistent session each device left on a broker.

    Every service that starts on the shared Mosquitto receives all retained statuses there,
    so leftovers from old runs slow down everyone's tests.
    """
    for device_id in device_ids:
        # A clean-session login with the device's client id discards its stored session.
        probe = MqttProbe(host, port, client_id=device_id)
        if not probe.connect().is_failure:
            probe.publish(devices.device_topic(device_id, "status"), b"", retain=True)
        probe.close()


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    """Poll until check() is true; fail with what after within_s seconds."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(what)
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_vaki(settings: Settings, broker: tuple[str, int] | None) -> AsyncIterator[Vaki]:
    """Start the real service with a resident: on a broker, or on its embedded one (None)."""
    if broker is not None:
        settings.mqtt_url = f"mqtt://{broker[0]}:{broker[1]}"
        settings.mqtt_session_expiry_s = 60
    app = create_app(settings)
    # AsyncTestClient runs the app on an event loop of its own, in another thread: the
    # service's engine must not be used from the test's loop (its pool would be shared
    # across two loops, and a checkout can hang while the service is busy writing).
    async with AsyncTestClient(app=app):
        engine = create_engine(settings.effective_database_url)
        if broker is None:
            address = devices.read_broker_address(settings.data_dir)
            assert address is not None
            host, port = address.host, address.port
        else:
            host, port = broker
        sessions = session_factory(engine)
        try:
            async with sessions() as session:
                resident = care.Resident(full_name="Guðrún Á.")
                session.add(resident)
                await session.commit()
                assert resident.id is not None
                resident_id = resident.id
            yield Vaki(sessions, host, port, resident_id)
        finally:
            await engine.dispose()


@pytest.fixture
async def vaki(
    settings: Settings, mosquitto: tuple[str, int], database_url: str
) -> AsyncIterator[Vaki]:
    """The service on the shared Mosquitto, on SQLite and on PostgreSQL."""
    settings.database_url = database_url
    async with running_vaki(settings, mosquitto) as service:
        try:
            yield service
        finally:
            await asyncio.to_thread(forget_on_broker, *mosquitto, service.device_ids)


@pytest.fixture
async def own_broker(private_mosquitto: PrivateMosquitto) -> PrivateMosquitto:
    """A Mosquitto of this test's own with persistence, started; conftest stops it after."""
    private_mosquitto.extra_config = BROKER_CONFIG
    await asyncio.to_thread(private_mosquitto.start)
    return private_mosquitto


@pytest.mark.mosquitto
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_readings_batch_event_and_raw_are_acked_and_stored_once(
    vaki: Vaki, tmp_path: Path, protocol: str
) -> None:
    """Every kind of message is acked after its commit and stored once, on MQTT 3.1.1 and 5."""
    device_id, password = await vaki.provision()
    device = vaki.device(
        device_id, password, outbox_path=tmp_path / "outbox.db", protocol=protocol, fw="2.3.0"
    )
    await device.start()
    try:
        await device.wait_connected(timeout=30)
        ids = [
            await device.send_reading(
                "blood_pressure", {"systolic": 142, "diastolic": 91, "pulse": 71}
            )
        ]
        ids += await device.send_batch(
            [
                ("weight", {"weight": 81.4, "bmi": None}, None),
                ("spo2", {"spo2": 96, "pulse": 68}, None),
                ("temperature", {"temperature": 36.8}, None),
                ("glucose", {"glucose": 6.1}, None),
                ("steps", {"steps": 412}, None),
                ("heart_rate", {"heart_rate": 64}, None),
            ]
        )
        ids.append(await device.send_event("panic"))
        ids.append(await device.send_event("door_open", {"door": "front", "vendor_code": 7}))
        raw = await device.send_raw("gatt-2a35", GATT_BP)
        assert raw == GATT_BP_ID
        ids.append(raw)
        assert len(set(ids)) == len(ids) == 10
        await device.wait_until_acked(ids, timeout=60)
        assert device.outbox_size == 0
        assert set(ids) <= device.acked_ids

        async def status_stored() -> bool:
            """The status published after connect is in the registry (status is not acked)."""
            row = await vaki.device_row(device_id)
            return (row.online, row.battery_pct, row.firmware) == (True, 100, "2.3.0")

        await eventually(status_stored, 30, "the device's status never reached the registry")
    finally:
        await device.stop()
    assert await vaki.stored(device_id) == dict.fromkeys(ids, 1)
    assert await vaki.dead_letters(device_id) == []

    async def offline() -> bool:
        """The registry has the device offline."""
        return not (await vaki.device_row(device_id)).online

    # A graceful stop says offline itself (a clean DISCONNECT fires no Last Will).
    await eventually(offline, 30, "the device is still online after a graceful stop")


@pytest.mark.mosquitto
async def test_commands_are_queued_once_per_id(vaki: Vaki) -> None:
    """A command delivered twice is acted on once; an unreadable one is dropped."""
    device_id, password = await vaki.provision(devices.DeviceKind.TABLET)
    device = vaki.device(device_id, password)
    await device.start()
    server = MqttProbe(vaki.host, vaki.port, client_id=f"cmd-{uuid.uuid4().hex[:8]}")
    assert not server.connect().is_failure
    try:
        await device.wait_connected(timeout=30)
        topic = devices.device_topic(device_id, "cmd")
        # The subscription is made right after CONNACK; the first command may race it.
        for _attempt in range(100):
            await asyncio.to_thread(
                server.publish, topic, json.dumps({"id": "c-1", "type": "checkin_prompt"})
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    first = await device.commands.get()
                    break
        else:
            pytest.fail("no command arrived in 100 tries")
        await asyncio.to_thread(server.publish, topic, b"{not json")
        await asyncio.to_thread(
            server.publish, topic, json.dumps({"id": "c-2", "type": "reminder", "new": 1})
        )
        async with asyncio.timeout(30):
            second = await device.commands.get()
        assert first == {"id": "c-1", "type": "checkin_prompt"}
        # The repeats of c-1 and the unreadable payload were dropped.
        assert second == {"id": "c-2", "type": "reminder", "new": 1}
        assert device.commands.empty()
    finally:
        server.close()
        await device.stop()


def stop_broker(broker: PrivateMosquitto, how: str) -> None:
    """SIGTERM, as a service manager stops it, or SIGKILL: a crash that loses PUBACKed messages."""
    if how == "sigkill":
        assert broker.process is not None
        broker.process.kill()
        broker.process.wait(timeout=10)
        broker.process = None
    else:
        broker.stop()


@pytest.mark.mosquitto
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_every_message_survives_a_broker_restart(
    own_broker: PrivateMosquitto, settings: Settings, database_url: str, tmp_path: Path, how: str
) -> None:
    """A broker stopped mid-stream loses nothing: every id is acked and stored exactly once."""
    settings.database_url = database_url
    async with running_vaki(settings, ("127.0.0.1", own_broker.port)) as service:
        device_id, password = await service.provision(devices.DeviceKind.ACTIVITY_TRACKER)
        device = service.device(device_id, password, outbox_path=tmp_path / "outbox.db", **FAST)
        await device.start()
        try:
            await device.wait_connected(timeout=30)
            ids: list[str] = []

            async def stream() -> None:
                """300 readings, one every 10 ms or so."""
                for n in range(300):
                    ids.append(await device.send_reading("heart_rate", {"heart_rate": 50 + n % 90}))
                    await asyncio.sleep(0.01)

            async def sent(count: int) -> bool:
                """At least count readings have been handed to the device."""
                return len(ids) >= count

            streaming = asyncio.create_task(stream())
            await eventually(lambda: sent(100), 60, "the stream did not start")
            await asyncio.to_thread(stop_broker, own_broker, how)
            # Some of the stream goes into the outbox while there is no broker at all.
            await eventually(lambda: sent(150), 60, "the stream stalled without a broker")
            await asyncio.to_thread(own_broker.start)
            async with asyncio.timeout(120):
                await streaming
            await device.wait_until_acked(ids, timeout=120)
            assert device.connects >= 2, "the broker restart went unnoticed"
            assert device.outbox_size == 0
        finally:
            await device.stop()
        stored = await service.stored(device_id)
        assert len(ids) == len(set(ids)) == 300
        assert stored == dict.fromkeys(ids, 1)
        assert await service.dead_letters(device_id) == []


# A device process that sends while its broker is down, then waits to be killed.
DOOMED_DEVICE = """
import asyncio, sys
from pathlib import Path
from homesim import VirtualDevice

async def main() -> None:
    device_id, password, port, outbox = sys.argv[1:]
    device = VirtualDevice(device_id, password, "127.0.0.1", int(port), outbox_path=Path(outbox))
    await device.start()
    print(await device.send_reading("weight", {"weight": 77.2}), flush=True)
    readings = [("spo2", {"spo2": 95, "pulse": 70}, None), ("heart_rate", {"heart_rate": 71}, None)]
    for message_id in await device.send_batch(readings):
        print(message_id, flush=True)
    print(await device.send_event("fall", {"confidence": 0.93}), flush=True)
    print(f"boot {device.boot}", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def first_life(
    death: str, service: Vaki, device_id: str, password: str, outbox: Path
) -> tuple[list[str], int]:
    """Send four messages with no broker, then die; returns their ids and the boot number."""
    if death == "sigkill":
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            DOOMED_DEVICE,
            device_id,
            password,
            str(service.port),
            str(outbox),
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None
        try:
            async with asyncio.timeout(60):
                lines = [(await child.stdout.readline()).decode().strip() for _ in range(5)]
        finally:
            child.kill()  # SIGKILL: nothing flushed on the way out
            await child.wait()
        *ids, boot = lines
        return ids, int(boot.removeprefix("boot "))
    first = service.device(device_id, password, outbox_path=outbox, **FAST)
    await first.start()
    ids = [await first.send_reading("weight", {"weight": 77.2})]
    ids += await first.send_batch(
        [("spo2", {"spo2": 95, "pulse": 70}, None), ("heart_rate", {"heart_rate": 71}, None)]
    )
    ids.append(await first.send_event("fall", {"confidence": 0.93}))
    assert first.outbox_size == 4
    assert first.connects == 0
    assert not first.acked_ids
    # No goodbye: the socket would simply be dropped (there is none while the broker is down).
    await first.stop(graceful=False)
    return ids, first.boot


@pytest.mark.mosquitto
@pytest.mark.parametrize("death", ["non_graceful_stop", "sigkill"])
async def test_the_outbox_survives_a_device_restart(
    own_broker: PrivateMosquitto, settings: Settings, tmp_path: Path, death: str
) -> None:
    """Messages kept while the broker is down survive the device's death and arrive once."""
    outbox = tmp_path / "outbox.db"
    async with running_vaki(settings, ("127.0.0.1", own_broker.port)) as service:
        device_id, password = await service.provision(devices.DeviceKind.HOME_HUB)
        await asyncio.to_thread(own_broker.stop)
        ids, boot = await first_life(death, service, device_id, password, outbox)
        assert len(set(ids)) == 4

        second = service.device(device_id, password, outbox_path=outbox, **FAST)
        await second.start()
        try:
            assert second.outbox_ids == ids
            assert second.boot == boot + 1
            await asyncio.to_thread(own_broker.start)
            await second.wait_until_acked(ids, timeout=90)
            later = await second.send_event("bed_exit")
            assert later not in ids
            await second.wait_until_acked([later], timeout=60)
            assert second.outbox_size == 0
        finally:
            await second.stop()
        assert await service.stored(device_id) == dict.fromkeys([*ids, later], 1)

    # The acked messages are gone from the file, too.
    third = VirtualDevice(device_id, password, "127.0.0.1", own_broker.port, outbox_path=outbox)
    await third.start()
    try:
        assert third.outbox_size == 0
    finally:
        await third.stop(graceful=False)


@pytest.mark.mosquitto
async def test_the_last_will_sets_the_device_offline(vaki: Vaki) -> None:
    """A device that vanishes without a goodbye is set offline by its Last Will."""
    device_id, password = await vaki.provision(devices.DeviceKind.PANIC_BUTTON)
    device = vaki.device(device_id, password, battery=64, fw="1.4.2")
    await device.start()
    try:
        await device.wait_connected(timeout=30)

        async def online() -> bool:
            """The registry has the device online with its status."""
            row = await vaki.device_row(device_id)
            return row.online and row.battery_pct == 64

        await eventually(online, 30, "the device's status never reached the registry")
    finally:
        # No DISCONNECT and no offline status from the device: only the broker can tell.
        await device.stop(graceful=False)

    async def offline() -> bool:
        """The registry has the device offline."""
        return not (await vaki.device_row(device_id)).online

    await eventually(offline, 30, "the Last Will did not set the device offline")


async def test_mqtt5_falls_back_to_3_1_1_on_the_embedded_broker(settings: Settings) -> None:
    """The amqtt fallback (where Mosquitto is not installed) logs devices in from the
    database and speaks only MQTT 3.1.1."""
    settings.mqtt_embedded_broker = "amqtt"
    async with running_vaki(settings, None) as service:
        device_id, password = await service.provision(devices.DeviceKind.SCALE)
        impostor = service.device(device_id, "not-the-password", connect_timeout_s=2, **FAST)
        await impostor.start()
        with pytest.raises(TimeoutError):
            await impostor.wait_connected(timeout=3)
        await impostor.stop()
        assert impostor.connects == 0
        assert impostor.last_error == "CONNACK refused: Not authorized"

        device = service.device(device_id, password, protocol="5", connect_timeout_s=2, **FAST)
        await device.start()
        try:
            await device.wait_connected(timeout=60)
            assert device.protocol == "3.1.1"
            reading = await device.send_reading("weight", {"weight": 64.9, "height": 1.68})
            await device.wait_until_acked([reading], timeout=60)
        finally:
            await device.stop()
        assert await service.stored(device_id) == {reading: 1}
