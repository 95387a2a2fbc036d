"""Raw vendor payloads under attack: garbled alarms raise, oversized ones never land.

Issue 13, findings 5 and 9, against a real ``vaki serve`` on both of its brokers.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import devices
from devices.contract import MAX_PAYLOAD_BYTES
from tests.security.broker.attacks import (
    Served,
    World,
    acked,
    alert_kinds,
    raw_connect,
    record,
    wait_for_alert,
)

# What the review sent from a smoke sensor, and more of the kind.
GARBLED = (
    b'{"smoke": "ALARM", "battery": "low"',  # truncated JSON
    b'{"water_leak":"ON"}',  # the wrong type
    b'{"smoke": true, "alarm_state": "fire"}',  # a key nobody reads
    b"{}",  # decodes to nothing
    b"\xff\xfe\x00",  # not UTF-8
)


async def test_garbled_raw_from_an_alarm_sensor_raises_one_unreadable_event(
    served: Served, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    smoke = served.device(world.smoke)
    scale = served.device(world.scale)
    try:
        topic = devices.device_topic(world.smoke.device_id, "raw/z2m")
        for payload in GARBLED:
            smoke.publish(topic, payload)
            # Dead-lettered and acknowledged: the device need not send it again.
            assert await asyncio.to_thread(acked, smoke, devices.raw_message_id(payload))
        # The all-clear a real sensor sends is no alarm.
        clear = b'{"smoke": false, "battery": 90, "linkquality": 80}'
        smoke.publish(topic, clear)
        assert await asyncio.to_thread(acked, smoke, devices.raw_message_id(clear))
        # A scale's garbage is only a dead letter.
        junk = b'{"weight": "heavy"'
        scale.publish(devices.device_topic(world.scale.device_id, "raw/z2m"), junk)
        assert await asyncio.to_thread(acked, scale, devices.raw_message_id(junk))
    finally:
        smoke.close()
        scale.close()
    await wait_for_alert(sessions, world.resident_id, devices.UNREADABLE_EVENT)
    async with sessions() as session:
        unreadable = (
            await session.exec(
                select(devices.Event).where(
                    col(devices.Event.device_id) == world.smoke.device_id,
                    col(devices.Event.type) == devices.UNREADABLE_EVENT,
                )
            )
        ).all()
        letters = (
            await session.exec(
                select(devices.DeadLetter).where(
                    col(devices.DeadLetter.device_id) == world.smoke.device_id
                )
            )
        ).all()
        scale_letters = (
            await session.exec(
                select(func.count()).where(
                    col(devices.DeadLetter.device_id) == world.scale.device_id
                )
            )
        ).one()
    # One alarm for the burst, not five; every message kept with its reason.
    assert len(unreadable) == 1
    assert sorted(bytes(letter.payload) for letter in letters) == sorted(GARBLED)
    assert sum("raised unreadable_event" in letter.reason for letter in letters) == 1
    assert all("unreadable_event" in letter.reason for letter in letters)
    assert any("unknown keys ['alarm_state']" in letter.reason for letter in letters)
    assert scale_letters == 1
    assert (await alert_kinds(sessions, world.resident_id)).count(devices.UNREADABLE_EVENT) == 1
    for _ in GARBLED:
        record("garbled raw alarm payload", refused=True)


def _publish_packet(topic: str, payload: bytes) -> bytes:
    """An MQTT PUBLISH at QoS 0."""
    encoded = topic.encode()
    body = struct.pack("!H", len(encoded)) + encoded + payload
    length, header = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        header.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([0x30]) + bytes(header) + body


async def test_an_oversized_raw_payload_never_reaches_the_database(
    served: Served, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    topic = devices.device_topic(world.panic.device_id, "raw/z2m")
    for size in (MAX_PAYLOAD_BYTES + 1, 1024 * 1024, 8 * 1024 * 1024):
        connection = raw_connect(
            served.host,
            served.port,
            world.panic.device_id,
            username=world.panic.device_id,
            password=world.panic.secret,
        )
        assert not connection.refused
        # Mosquitto hangs up on a packet over its limit, mid-send.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sock.sendall(_publish_packet(topic, b"{" + b" " * (size - 2) + b"}"))
        connection.sock.close()
    # A message after them is acked, so they had their turn.
    panic = served.device(world.panic)
    try:
        fine = b'{"smoke": false}'
        panic.publish(topic, fine)
        assert await asyncio.to_thread(acked, panic, devices.raw_message_id(fine))
    finally:
        panic.close()
    async with sessions() as session:
        biggest = (
            await session.exec(select(func.max(func.length(devices.DeadLetter.payload))))
        ).one()
    assert biggest is None or biggest <= MAX_PAYLOAD_BYTES
    for _ in range(3):
        record("raw payload over 64 KiB", refused=biggest is None or biggest <= MAX_PAYLOAD_BYTES)
