"""The embedded broker: device logins from the database, the contract's ACL, port fallback."""

from __future__ import annotations

import queue
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from tests.conftest import MqttProbe


@pytest.fixture
async def broker(sqlite_url: str, tmp_path: Path) -> AsyncIterator[devices.EmbeddedBroker]:
    """An embedded broker authenticating against a migrated SQLite database."""
    broker = devices.EmbeddedBroker(
        host="127.0.0.1", preferred_port=0, database_url=sqlite_url, data_dir=tmp_path
    )
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def two_devices(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[devices.ProvisionedDevice, devices.ProvisionedDevice]:
    async with sessions() as session:
        resident = care.Resident(full_name="Margrét Ó.")
        session.add(resident)
        await session.flush()
        a = await devices.provision_device(
            session, kind=devices.DeviceKind.PANIC_BUTTON, resident_id=resident.id
        )
        b = await devices.provision_device(
            session, kind=devices.DeviceKind.SCALE, resident_id=resident.id
        )
        await session.commit()
    return a, b


# The embedded broker and the sessions fixture must share the SQLite file.
@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def _probe(
    broker: devices.EmbeddedBroker, client_id: str, username: str, password: str
) -> MqttProbe:
    assert broker.port is not None
    return MqttProbe(
        broker.connect_host, broker.port, client_id=client_id, username=username, password=password
    )


def _server(broker: devices.EmbeddedBroker) -> MqttProbe:
    return _probe(broker, "vaki-test-server", devices.SERVICE_USERNAME, broker.secret)


async def test_device_logs_in_with_its_secret_and_talks_only_on_its_topics(
    broker: devices.EmbeddedBroker,
    two_devices: tuple[devices.ProvisionedDevice, devices.ProvisionedDevice],
) -> None:
    a, b = two_devices
    server = _server(broker)
    assert not server.connect().is_failure
    server.subscribe("vaki/v1/d/#")

    device_a = _probe(broker, a.device.id, a.device.id, a.secret)
    assert not device_a.connect().is_failure
    # Its own reading topic reaches the server.
    device_a.publish(devices.device_topic(a.device.id, "reading"), b'{"id": "1"}')
    received = server.next_message()
    assert received.topic == f"vaki/v1/d/{a.device.id}/reading"
    # Publishing as device B is dropped by the broker: the server never sees it.
    device_a.publish(devices.device_topic(b.device.id, "event"), b'{"id": "forged"}')
    device_a.publish(devices.device_topic(a.device.id, "event"), b'{"id": "marker"}')
    assert server.next_message().payload == b'{"id": "marker"}'
    # It may subscribe to its own cmd, not to B's, and not to wildcards.
    assert not device_a.subscribe(devices.device_topic(a.device.id, "cmd"))[0].is_failure
    assert device_a.subscribe(devices.device_topic(b.device.id, "cmd"))[0].is_failure
    assert device_a.subscribe("vaki/v1/d/#")[0].is_failure
    server.publish(devices.device_topic(b.device.id, "cmd"), b"for b only")
    server.publish(devices.device_topic(a.device.id, "cmd"), b"for a")
    assert device_a.next_message().payload == b"for a"
    with pytest.raises(queue.Empty):
        device_a.next_message(timeout=0.5)
    device_a.close()
    server.close()


async def test_wrong_secret_other_client_id_and_revoked_device_are_refused(
    broker: devices.EmbeddedBroker,
    two_devices: tuple[devices.ProvisionedDevice, devices.ProvisionedDevice],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    a, b = two_devices
    wrong = _probe(broker, a.device.id, a.device.id, "not-the-secret")
    assert wrong.connect().is_failure
    wrong.close()
    # Device A's credentials cannot take over B's client id (and so B's session).
    hijack = _probe(broker, b.device.id, a.device.id, a.secret)
    assert hijack.connect().is_failure
    hijack.close()
    anonymous = MqttProbe(broker.connect_host, broker.port or 0, client_id="anyone")
    assert anonymous.connect().is_failure
    anonymous.close()

    async with sessions() as session:
        await devices.revoke_device(session, a.device.id)
        await session.commit()
    revoked = _probe(broker, a.device.id, a.device.id, a.secret)
    assert revoked.connect().is_failure
    revoked.close()


async def test_takes_a_free_port_when_the_preferred_one_is_busy(
    sqlite_url: str, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        broker = devices.EmbeddedBroker(
            host="127.0.0.1", preferred_port=busy, database_url=sqlite_url, data_dir=tmp_path
        )
        await broker.start()
        try:
            assert broker.port_was_taken
            assert broker.port != busy
            # Other commands (device add) learn the port from the data directory.
            address = devices.read_broker_address(tmp_path)
            assert address is not None
            assert address.port == broker.port
        finally:
            await broker.stop()
    assert devices.read_broker_address(tmp_path) is None


async def test_a_crashed_broker_is_restarted_on_the_same_port(
    broker: devices.EmbeddedBroker,
) -> None:
    import asyncio
    import os
    import signal

    address = devices.read_broker_address(broker.data_dir)
    assert address is not None
    os.kill(address.pid, signal.SIGKILL)
    for _ in range(100):
        await asyncio.sleep(0.1)
        restarted = devices.read_broker_address(broker.data_dir)
        if restarted is not None and restarted.pid != address.pid:
            break
    else:
        raise AssertionError("the embedded broker was not restarted")
    assert restarted.port == address.port
    server = _server(broker)
    assert not server.connect().is_failure
    server.close()


async def test_private_mosquitto_keeps_the_servers_listener_apart_and_drops_revoked_devices(
    two_devices: tuple[devices.ProvisionedDevice, devices.ProvisionedDevice],
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    import asyncio
    import threading

    binary = devices.mosquitto_binary()
    if binary is None:
        pytest.skip("the mosquitto binary is not installed")
    a, _b = two_devices
    async with sessions() as session:
        logins = await devices.active_broker_logins(session)
    broker = devices.PrivateMosquitto(
        host="127.0.0.1", preferred_port=0, data_dir=tmp_path, binary=binary
    )
    await broker.start(logins)
    try:
        assert broker.port is not None
        assert broker.service_port is not None
        for port, accepted in ((broker.service_port, True), (broker.port, False)):
            server = MqttProbe(
                broker.service_host,
                port,
                client_id="vaki-server-1",
                username=devices.SERVICE_USERNAME,
                password=broker.secret,
            )
            # The server's login works on its own listener only; nobody gets in anonymously.
            assert server.connect().is_failure is not accepted
            server.close()
            anonymous = MqttProbe(broker.service_host, port, client_id="anyone")
            assert anonymous.connect().is_failure
            anonymous.close()

        lost = threading.Event()
        device = MqttProbe(
            broker.connect_host,
            broker.port,
            client_id=a.device.id,
            username=a.device.id,
            password=a.secret,
        )
        device.client.on_disconnect = lambda *_args: lost.set()
        assert not device.connect().is_failure
        assert not await broker.reload(logins)
        async with sessions() as session:
            await devices.revoke_device(session, a.device.id)
            await session.commit()
            logins = await devices.active_broker_logins(session)
        assert await broker.reload(logins)
        # Mosquitto rereads the logins and disconnects the revoked device at once.
        assert await asyncio.to_thread(lost.wait, 10)
        device.client.loop_stop()
    finally:
        await broker.stop()
    assert devices.read_broker_address(tmp_path) is None
