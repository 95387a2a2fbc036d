"""Attacks on the broker ``vaki serve`` runs, private Mosquitto and amqtt alike.

Each reproduces a finding of the security review (issue 13: 1, 2 and the revoked device of
10) against a real server in a subprocess and shows it refused.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import devices
from tests.conftest import MqttProbe
from tests.security.broker.attacks import (
    Served,
    World,
    acked,
    alert_kinds,
    event,
    raw_connect,
    record,
    topics_until_acked,
    wait_for_alert,
)


async def test_a_connect_without_the_login_cannot_silence_the_server_or_a_device(
    served: Served, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    server_ids = (served.server_client_id, f"{served.server_client_id}-alarms")
    attempts = []
    for client_id in (*server_ids, world.panic.device_id):
        for port in sorted({served.port, served.service_port}):
            for clean in (True, False):
                # No login at all; the server's username with a guessed password; the
                # device's own id with a wrong secret.
                for username, password in (
                    (None, None),
                    (devices.SERVICE_USERNAME, "guess"),
                    (world.panic.device_id, "wrong"),
                ):
                    connection = raw_connect(
                        served.host,
                        port,
                        client_id,
                        username=username,
                        password=password,
                        clean=clean,
                    )
                    attempts.append(connection)
                    record(
                        "connect with the server's or a device's client id",
                        refused=connection.refused,
                    )
    # A real device's login asking for the server's alarm-lane client id.
    stolen = raw_connect(
        served.host,
        served.port,
        server_ids[1],
        username=world.scale.device_id,
        password=world.scale.secret,
        clean=True,
    )
    attempts.append(stolen)
    try:
        assert all(connection.refused for connection in attempts[:-1])
        if served.broker == "amqtt":
            assert stolen.refused
        # Mosquitto lets the login in under its own id instead (use_username_as_clientid),
        # which the lanes' proof below covers.

        # The alarm lane still takes a panic: stored, acknowledged to the device, alerted.
        ready = await asyncio.to_thread(served.ready)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]["mqtt"]["lanes"]) == {"readings", "alarms"}
        panic = served.device(world.panic)
        try:
            panic.publish(
                devices.device_topic(world.panic.device_id, "event"), event("p-1", "panic")
            )
            assert await asyncio.to_thread(acked, panic, "p-1")
        finally:
            panic.close()
        await wait_for_alert(sessions, world.resident_id, "panic")
        record("connect with the server's or a device's client id", refused=True)
    finally:
        for connection in attempts:
            connection.sock.close()


async def test_a_will_cannot_speak_for_another_device_or_command_a_tablet(
    served: Served, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tablet = served.device(world.tablet)
    tablet.subscribe(devices.device_topic(world.tablet.device_id, "cmd"))
    # The panic button is online; a will claiming otherwise must not say so for it.
    panic = served.device(world.panic)
    panic.publish(devices.device_topic(world.panic.device_id, "status"), b'{"online": true}')
    panic.close()
    wills = (
        # A fall on the panic button's event topic: an alert for its resident.
        (devices.device_topic(world.panic.device_id, "event"), event("w-1", "fall")),
        # A command to the tablet.
        (
            devices.device_topic(world.tablet.device_id, "cmd"),
            json.dumps({"id": "c-1", "type": "call", "data": {}}).encode(),
        ),
        # Another device's status, claiming it is offline.
        (devices.device_topic(world.panic.device_id, "status"), b'{"online": false}'),
    )
    try:
        for topic, payload in wills:
            connection = raw_connect(
                served.host,
                served.port,
                world.scale.device_id,
                username=world.scale.device_id,
                password=world.scale.secret,
                will=(topic, payload),
            )
            connection.drop()
            # Reconnecting under the same id proves the broker has ended that connection
            # (and would have sent its will).
            scale = served.device(world.scale)
            scale.close()
        # The tablet's own reading is acked after anything the wills could have caused.
        tablet.publish(
            devices.device_topic(world.tablet.device_id, "reading"),
            json.dumps({"id": "t-1", "type": "weight", "values": {"weight": 70.0}}).encode(),
        )
        received = await topics_until_acked(tablet, "t-1")
        commands = [topic for topic in received if topic.endswith("/cmd")]
        assert commands == []
    finally:
        tablet.close()
    async with sessions() as session:
        falls = await session.exec(
            select(devices.Event).where(col(devices.Event.device_id) == world.panic.device_id)
        )
        stored = list(falls.all())
        panic_device = await session.get(devices.Device, world.panic.device_id)
    assert stored == []
    assert "fall" not in await alert_kinds(sessions, world.resident_id)
    assert panic_device is not None
    assert panic_device.online is True
    record("Last Will on another device's topic", refused=stored == [])
    record("Last Will on a tablet's cmd", refused=commands == [])
    record("Last Will on another device's status", refused=panic_device.online is True)


async def test_retained_statuses_are_not_replayed_to_other_devices(
    served: Served, world: World
) -> None:
    panic = served.device(world.panic)
    panic.publish(
        devices.device_topic(world.panic.device_id, "status"),
        b'{"online": true, "battery": 77}',
        retain=True,
    )
    panic.close()
    scale = MqttProbe(
        served.host,
        served.port,
        client_id=world.scale.device_id,
        username=world.scale.device_id,
        password=world.scale.secret,
    )
    assert not scale.connect().is_failure
    try:
        for topic_filter in (
            "vaki/v1/d/+/status",
            "vaki/v1/d/#",
            "#",
            devices.device_topic(world.panic.device_id, "status"),
        ):
            (granted,) = scale.subscribe(topic_filter)
            # amqtt refuses the filter; Mosquitto grants it and delivers nothing its ACL
            # does not let the device read, which the replay check below proves.
            if served.broker == "amqtt":
                assert granted.is_failure, topic_filter
        for own in ("cmd", "ack"):
            (granted,) = scale.subscribe(devices.device_topic(world.scale.device_id, own))
            assert not granted.is_failure
        scale.publish(
            devices.device_topic(world.scale.device_id, "reading"),
            json.dumps({"id": "s-1", "type": "weight", "values": {"weight": 80.0}}).encode(),
        )
        received = await topics_until_acked(scale, "s-1")
        foreign = [t for t in received if not t.startswith(f"vaki/v1/d/{world.scale.device_id}/")]
        assert foreign == []
        for _ in range(4):
            record("subscribe beyond the device's own topics", refused=True)
        record("retained status replay", refused=True)
    finally:
        scale.close()


async def test_a_revoked_device_is_disconnected_and_kept_out(
    served: Served, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lost = threading.Event()
    reasons: queue.Queue[object] = queue.Queue()
    scale = MqttProbe(
        served.host,
        served.port,
        client_id=world.scale.device_id,
        username=world.scale.device_id,
        password=world.scale.secret,
    )
    scale.client.on_disconnect = lambda *_args: lost.set()
    assert not scale.connect().is_failure
    try:
        async with sessions() as session:
            await devices.revoke_device(session, world.scale.device_id)
            await session.commit()
        # The server hands the change to the broker within a few seconds.
        assert await asyncio.to_thread(lost.wait, 20)
        record("revoked device stays connected", refused=True)
        scale.client.loop_stop()
        again = raw_connect(
            served.host,
            served.port,
            world.scale.device_id,
            username=world.scale.device_id,
            password=world.scale.secret,
        )
        again.sock.close()
        record("revoked device reconnects", refused=again.refused)
        assert again.refused
        del reasons
    finally:
        scale.client.loop_stop()
