"""Helpers for the attacks in tests/security: hand-made MQTT packets, a served Vaki, a tally.

Each attack records itself per area; the session ends with "tried / refused" per area.
"""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import struct
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import devices
from tests.conftest import MqttProbe, ServedVaki

# area → [tried, refused]
TALLY: dict[str, list[int]] = defaultdict(lambda: [0, 0])


def record(area: str, *, refused: bool) -> None:
    """Count one attack in ``area`` and whether it was refused."""
    TALLY[area][0] += 1
    TALLY[area][1] += int(refused)


@dataclass
class Login:
    """A device's broker login."""

    device_id: str
    secret: str


@dataclass
class World:
    """A resident with a panic button, a smoke detector, a scale and a tablet."""

    resident_id: int
    panic: Login
    smoke: Login
    scale: Login
    tablet: Login


@dataclass
class Served:
    """A running ``vaki serve`` and where its broker listens."""

    vaki: ServedVaki
    broker: str
    host: str
    port: int
    # Where the server's own connections go (the same port for amqtt).
    service_port: int
    server_client_id: str

    def device(self, login: Login, *, client_id: str | None = None) -> MqttProbe:
        """A connected device client, subscribed to its own ack topic."""
        probe = MqttProbe(
            self.host,
            self.port,
            client_id=client_id or login.device_id,
            username=login.device_id,
            password=login.secret,
        )
        reason = probe.connect()
        assert not reason.is_failure, reason
        probe.subscribe(devices.device_topic(login.device_id, "ack"))
        return probe

    def ready(self) -> httpx.Response:
        """The server's /readyz answer."""
        return httpx.get(f"{self.vaki.url}/readyz", timeout=10)


def _utf8(text: str) -> bytes:
    """An MQTT UTF-8 string: length and bytes."""
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _remaining_length(length: int) -> bytes:
    """MQTT's variable-length integer."""
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


@dataclass
class RawMqtt:
    """A hand-made MQTT 3.1.1 connection: sends exactly the CONNECT an attacker writes."""

    sock: socket.socket
    return_code: int

    @property
    def refused(self) -> bool:
        """True when the broker refused the CONNECT (or hung up instead of answering)."""
        return self.return_code != 0

    def drop(self) -> None:
        """Hang up without DISCONNECT, so the broker publishes the will."""
        self.sock.close()


def raw_connect(
    host: str,
    port: int,
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    will: tuple[str, bytes] | None = None,
    clean: bool = True,
) -> RawMqtt:
    """Send one CONNECT and read the CONNACK's return code (-1: the broker hung up)."""
    flags = 0x02 if clean else 0
    payload = _utf8(client_id)
    if will is not None:
        flags |= 0x04 | 0x08  # will, QoS 1
        payload += _utf8(will[0]) + struct.pack("!H", len(will[1])) + will[1]
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
    if password is not None:
        flags |= 0x40
        payload += _utf8(password)
    variable = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 60)
    body = variable + payload
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(bytes([0x10]) + _remaining_length(len(body)) + body)
    try:
        connack = sock.recv(4)
    except (ConnectionResetError, TimeoutError):
        connack = b""
    code = connack[3] if len(connack) == 4 and connack[0] == 0x20 else -1
    return RawMqtt(sock, code)


def event(message_id: str, kind: str) -> bytes:
    """An event as the contract spells it."""
    return json.dumps(
        {"id": message_id, "ts": datetime.now(UTC).isoformat(), "type": kind, "data": {}}
    ).encode()


def acked(probe: MqttProbe, message_id: str, timeout: float = 15) -> bool:
    """True once the server's ack naming ``message_id`` reaches the device."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = probe.next_message(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if message.topic.endswith("/ack") and message_id in json.loads(message.payload)["ids"]:
            return True
    return False


async def topics_until_acked(probe: MqttProbe, message_id: str) -> list[str]:
    """The topics of all that reaches the device up to the server's ack naming
    ``message_id``, that ack included."""
    received = []
    while True:
        message = await asyncio.to_thread(probe.next_message, 15)
        received.append(message.topic)
        if message.topic.endswith("/ack") and message_id in json.loads(message.payload)["ids"]:
            return received


async def alert_kinds(sessions: async_sessionmaker[AsyncSession], resident_id: int) -> list[str]:
    """The kinds of the resident's alerts, oldest first."""
    async with sessions() as session:
        rows = await session.exec(
            select(alerts.Alert.kind)
            .where(col(alerts.Alert.resident_id) == resident_id)
            .order_by(col(alerts.Alert.id))
        )
        return list(rows.all())


async def wait_for_alert(
    sessions: async_sessionmaker[AsyncSession], resident_id: int, kind: str, within_s: float = 20
) -> None:
    """Wait until the resident has an alert of ``kind`` (the alarm path runs after commit)."""
    async with asyncio.timeout(within_s):
        while kind not in await alert_kinds(sessions, resident_id):
            await asyncio.sleep(0.1)
