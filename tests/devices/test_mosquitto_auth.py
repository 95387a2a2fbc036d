"""vaki mqtt export-auth: on a real Mosquitto, device A can neither act as B nor read B."""

from __future__ import annotations

import queue
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import devices
from tests.conftest import MqttProbe, PrivateMosquitto

VAKI = str(Path(sys.executable).parent / "vaki")


async def test_exported_logins_and_acl_keep_devices_apart(
    private_mosquitto: PrivateMosquitto,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    async with sessions() as session:
        a = await devices.provision_device(
            session, kind=devices.DeviceKind.PANIC_BUTTON, resident_id=None
        )
        b = await devices.provision_device(session, kind=devices.DeviceKind.SCALE, resident_id=None)
        gone = await devices.provision_device(
            session, kind=devices.DeviceKind.SCALE, resident_id=None
        )
        await devices.revoke_device(session, gone.device.id)
        await session.commit()
    passwords, acl = tmp_path / "passwd", tmp_path / "acl"
    exported = subprocess.run(  # noqa: ASYNC221 (a one-off command, as an operator runs it)
        [VAKI, "mqtt", "export-auth", "--password-file", str(passwords), "--acl-file", str(acl)],
        env={
            "VAKI_DATABASE_URL": sqlite_url,
            "VAKI_MQTT_URL": "mqtt://vaki-server:s3rver@x:1883",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    assert "wrote 2 device logins" in exported.stdout
    assert gone.device.id not in passwords.read_text()
    private_mosquitto.extra_config = devices.MOSQUITTO_CONF.format(
        password_file=passwords, acl_file=acl
    )
    private_mosquitto.start()
    port = private_mosquitto.port

    server = MqttProbe(
        "127.0.0.1", port, client_id="vaki-server-1", username="vaki-server", password="s3rver"
    )
    assert not server.connect().is_failure
    server.subscribe("vaki/v1/d/+/reading")
    server.subscribe("vaki/v1/d/+/event")
    device_a = MqttProbe(
        "127.0.0.1", port, client_id=a.device.id, username=a.device.id, password=a.secret
    )
    assert not device_a.connect().is_failure

    device_a.publish(devices.device_topic(a.device.id, "reading"), b"mine")
    assert server.next_message().payload == b"mine"
    # Publishing as B, or to a topic outside the contract, never reaches the server.
    device_a.publish(devices.device_topic(b.device.id, "reading"), b"forged")
    device_a.publish(devices.device_topic(a.device.id, "ack"), b"fake ack")
    device_a.publish(devices.device_topic(a.device.id, "event"), b"marker")
    assert server.next_message().payload == b"marker"
    # A may read its own cmd but not B's: B's command never reaches A.
    device_a.subscribe(devices.device_topic(a.device.id, "cmd"))
    device_a.subscribe(devices.device_topic(b.device.id, "cmd"))
    device_a.subscribe("vaki/v1/d/#")
    server.publish(devices.device_topic(b.device.id, "cmd"), b"for b")
    server.publish(devices.device_topic(a.device.id, "cmd"), b"for a")
    assert device_a.next_message().payload == b"for a"
    with pytest.raises(queue.Empty):
        device_a.next_message(timeout=0.5)
    device_a.close()

    # Wrong secret, a revoked device, and A's login under B's client id are all refused.
    for client_id, username, password in [
        (a.device.id, a.device.id, "wrong"),
        (gone.device.id, gone.device.id, gone.secret),
        (b.device.id, a.device.id, a.secret),
    ]:
        probe = MqttProbe(
            "127.0.0.1", port, client_id=client_id, username=username, password=password
        )
        reason = probe.connect()
        if not reason.is_failure:
            # use_username_as_clientid: the session is A's own, whatever client id was asked for.
            assert (client_id, username) == (b.device.id, a.device.id)
            probe.publish(devices.device_topic(b.device.id, "reading"), b"as b")
            probe.publish(devices.device_topic(a.device.id, "reading"), b"as a")
            assert server.next_message().payload == b"as a"
        probe.close()
    server.close()


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url
