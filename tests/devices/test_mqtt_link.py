"""The server's MQTT link: protocol choice, persistent session, hand-off to the event loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import devices
from tests.conftest import MqttProbe


@pytest.fixture
async def embedded(sqlite_url: str, tmp_path: Path) -> AsyncIterator[devices.EmbeddedBroker]:
    broker = devices.EmbeddedBroker(
        host="127.0.0.1", preferred_port=0, database_url=sqlite_url, data_dir=tmp_path
    )
    await broker.start()
    yield broker
    await broker.stop()


def _service_endpoint(broker: devices.EmbeddedBroker) -> devices.MqttEndpoint:
    assert broker.port is not None
    return devices.MqttEndpoint(
        host=broker.connect_host,
        port=broker.port,
        username=devices.SERVICE_USERNAME,
        password=broker.secret,
    )


async def _receive_after_downtime(
    endpoint: devices.MqttEndpoint, probe: MqttProbe, protocol: str = "auto"
) -> str:
    """Subscribe, go away, let a message be published, come back: it must be waiting."""
    client_id = f"vaki-test-{uuid.uuid4().hex[:8]}"
    topic = f"vaki/v1/d/{uuid.uuid4().hex[:10]}/reading"
    inbox: asyncio.Queue[devices.InboundMessage] = asyncio.Queue()
    link = devices.MqttLink(
        endpoint,
        client_id=client_id,
        protocol=protocol,
        subscriptions=((topic, 1),),
        on_message=inbox.put_nowait,
    )
    await link.start()
    assert link.connected
    protocol = link.protocol
    await asyncio.sleep(0.3)  # let the SUBACK arrive
    await link.stop()
    assert not probe.connect().is_failure
    probe.publish(topic, b"while you were away", qos=1)
    probe.close()
    again = devices.MqttLink(
        endpoint,
        client_id=client_id,
        protocol=protocol,
        subscriptions=((topic, 1),),
        on_message=inbox.put_nowait,
    )
    await again.start()
    try:
        message = await asyncio.wait_for(inbox.get(), 10)
        assert message.payload == b"while you were away"
        assert message.qos == 1
        again.ack(message)
    finally:
        await again.stop()
    return protocol


@pytest.mark.mosquitto
async def test_mosquitto_gets_mqtt5_and_keeps_the_session(mosquitto: tuple[str, int]) -> None:
    host, port = mosquitto
    probe = MqttProbe(host, port, client_id=f"probe-{uuid.uuid4().hex[:8]}")
    protocol = await _receive_after_downtime(devices.MqttEndpoint(host, port), probe)
    assert protocol == "5"


async def test_embedded_broker_keeps_the_311_session(
    embedded: devices.EmbeddedBroker,
) -> None:
    assert embedded.port is not None
    probe = MqttProbe(
        embedded.connect_host,
        embedded.port,
        client_id="probe-embedded",
        username=devices.SERVICE_USERNAME,
        password=embedded.secret,
    )
    # amqtt speaks 3.1.1 only; the server's lifespan says so explicitly.
    protocol = await _receive_after_downtime(_service_endpoint(embedded), probe, "3.1.1")
    assert protocol == "3.1.1"


async def test_auto_falls_back_when_the_broker_refuses_mqtt5() -> None:
    """A 3.1.1-only broker answers an MQTT 5 CONNECT with return code 1 (RFC: 3.2.2.3)."""
    attempts: list[int] = []

    async def old_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            header = await reader.readexactly(2)
            body = await reader.readexactly(header[1])  # remaining length < 128 here
            level = body[6]  # after the protocol name "MQTT": 4 = 3.1.1, 5 = MQTT 5
            attempts.append(level)
            writer.write(b"\x20\x02\x00" + (b"\x00" if level == 4 else b"\x01"))
            await writer.drain()
            if level == 4:
                await reader.read()  # hold the 3.1.1 connection until the client leaves
        finally:
            writer.close()

    server = await asyncio.start_server(old_broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = devices.MqttLink(devices.MqttEndpoint("127.0.0.1", port), client_id="vaki-old")
    try:
        await link.start(wait_s=10)
        assert link.connected
        assert link.protocol == "3.1.1"
        assert attempts[:1] == [5]
        assert attempts[-1] == 4
    finally:
        await link.stop()
        server.close()
        await server.wait_closed()


def test_mqtt_url_parsing() -> None:
    endpoint = devices.MqttEndpoint.from_url("mqtts://vaki:s%40cret@broker.example")
    assert endpoint == devices.MqttEndpoint(
        host="broker.example", port=8883, username="vaki", password="s@cret", tls=True
    )
    assert endpoint.describe() == "mqtts://broker.example:8883"
    with pytest.raises(devices.MqttUnavailableError, match="not an MQTT URL"):
        devices.MqttEndpoint.from_url("http://broker.example")
