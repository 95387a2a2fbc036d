"""The MQTT link: one paho-mqtt client behind a small boundary.

paho runs its network loop on its own thread and reconnects with backoff by itself; its
callbacks only hand messages to the asyncio event loop (``call_soon_threadsafe``), never
touch the database. Messages are acknowledged to the broker manually, by the consumer,
once what they carry is committed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.errors import MqttUnavailableError

log = logging.getLogger(__name__)

# A persistent session outlives an hour of downtime, so QoS 1 messages wait in the broker.
SESSION_EXPIRY_S = 24 * 3600
# paho's reconnect backoff: short, so the server is ready within seconds of a broker restart
# (devices resend what was not acked meanwhile; a subscriber that is away drops it).
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 2


@dataclass(frozen=True)
class MqttEndpoint:
    """Where the broker is and how to log in."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> MqttEndpoint:
        """Parse ``mqtt://user:password@host:port`` (``mqtts://`` for TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise MqttUnavailableError(
                f"not an MQTT URL: {url!r} (expected mqtt://user:password@host:1883)"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def describe(self) -> str:
        """host:port, without credentials, for logs and /readyz."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class InboundMessage:
    """One message received from the broker, waiting to be acknowledged by its consumer."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    # Which connection it came on: acks go back on the same one, in order.
    lane: str = "main"


MessageHandler = Callable[[InboundMessage], None]


def _protocol(name: str) -> MQTTProtocolVersion:
    """paho's protocol constant for "5" or "3.1.1"."""
    return MQTTProtocolVersion.MQTTv5 if name == "5" else MQTTProtocolVersion.MQTTv311


# CONNACK codes meaning "I do not speak this protocol version": 3.1.1's 1, MQTT 5's 0x84.
_UNSUPPORTED_PROTOCOL = {1, 0x84}


class MqttLink:
    """A supervised connection to the broker with a persistent session and manual acks."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        client_id: str,
        protocol: str = "auto",
        subscriptions: tuple[tuple[str, int], ...] = (),
        on_message: MessageHandler | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
        lane: str = "main",
        admit: MessageHandler | None = None,
    ) -> None:
        """Prepare a client; nothing connects before ``start``.

        ``admit`` runs on paho's thread before each message is handed over and may block
        until the consumer has room: paho then stops reading and the broker holds the rest.
        """
        self.endpoint = endpoint
        self.client_id = client_id
        # "auto" starts with MQTT 5 and falls back to 3.1.1 when the broker refuses it.
        self._auto = protocol == "auto"
        self.protocol = "5" if self._auto else protocol
        self.subscriptions = subscriptions
        self.session_expiry_s = session_expiry_s
        self.lane = lane
        self._on_message = on_message
        self._admit = admit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._client: paho.Client | None = None
        self.last_error: str | None = "not started"
        self._fallback: asyncio.Task[None] | None = None
        # Publishes awaiting the broker's PUBACK, by message id (touched on the loop only).
        self._confirming: dict[int, asyncio.Future[None]] = {}

    @property
    def connected(self) -> bool:
        """True while the client holds a connection to the broker."""
        return self._client is not None and self._client.is_connected()

    def _build_client(self) -> paho.Client:
        """A paho client for the chosen protocol with a persistent session."""
        version = _protocol(self.protocol)
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=version,
            clean_session=False if version != MQTTProtocolVersion.MQTTv5 else None,
            reconnect_on_failure=True,
        )
        if self.endpoint.username:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            client.tls_set_context(ssl.create_default_context())
        client.manual_ack_set(True)
        client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        # Unacknowledged QoS 1 messages the broker may have in flight to us at once: the
        # bound that turns a slow consumer into backpressure held by the broker.
        client.max_inflight_messages_set(1000)
        client.on_connect = self._paho_on_connect
        client.on_disconnect = self._paho_on_disconnect
        client.on_message = self._paho_on_message
        client.on_publish = self._paho_on_publish
        return client

    def _connect_properties(self) -> Properties | None:
        """MQTT 5 CONNECT properties: how long the broker keeps our session while we are away."""
        if self.protocol != "5":
            return None
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.session_expiry_s
        return properties

    def _open(self) -> None:
        """Create the client and let paho's thread connect (and reconnect) in the background."""
        client = self._build_client()
        client.connect_async(
            self.endpoint.host,
            self.endpoint.port,
            keepalive=30,
            clean_start=False if self.protocol == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=self._connect_properties(),
        )
        client.loop_start()
        self._client = client

    async def _fall_back_to_311(self) -> None:
        """Reconnect with MQTT 3.1.1 after the broker refused MQTT 5."""
        if self.protocol == "3.1.1" or self._client is None:
            return
        old, self._client = self._client, None
        old.disconnect()
        await asyncio.to_thread(old.loop_stop)
        log.info("MQTT broker %s does not speak MQTT 5; using 3.1.1", self.endpoint.describe())
        self.protocol = "3.1.1"
        self._open()

    async def start(self, wait_s: float = 10.0) -> None:
        """Connect in the background; wait up to ``wait_s`` for the first connection."""
        self._loop = asyncio.get_running_loop()
        self._open()
        try:
            await asyncio.wait_for(self._connected.wait(), wait_s)
        except TimeoutError:
            log.warning(
                "MQTT broker %s not reachable yet (%s); retrying in the background",
                self.endpoint.describe(),
                self.last_error,
            )

    async def stop(self) -> None:
        """Disconnect and stop paho's thread."""
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Queue a message for the broker; paho sends it (again after a reconnect, QoS 1)."""
        if self._client is None:
            raise MqttUnavailableError("the MQTT link is not started")
        self._client.publish(topic, payload, qos=qos, retain=retain)

    async def publish_confirmed(
        self, topic: str, payload: bytes | str, *, timeout_s: float = 10.0
    ) -> None:
        """Publish with QoS 1 and wait until the broker has taken the message (its PUBACK).

        Raises MqttUnavailableError when the broker does not confirm within ``timeout_s``;
        paho still holds the message and sends it after a reconnect, so a caller that tries
        again may deliver it twice (devices act on a command id once).
        """
        if self._client is None:
            raise MqttUnavailableError("the MQTT link is not started")
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise MqttUnavailableError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        # The PUBACK callback reaches the loop through call_soon_threadsafe, so it runs after
        # this registration even when the broker answers at once.
        future = asyncio.get_running_loop().create_future()
        self._confirming[info.mid] = future
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError as err:
            raise MqttUnavailableError(
                f"the broker did not confirm a message to {topic} within {timeout_s} s"
            ) from err
        finally:
            self._confirming.pop(info.mid, None)

    def _confirmed(self, mid: int) -> None:
        """The broker took message ``mid`` (on the loop)."""
        future = self._confirming.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _paho_on_publish(
        self, _client: paho.Client, _userdata: Any, mid: int, _reason: Any, _props: Any
    ) -> None:
        """A PUBACK came in (paho's thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._confirmed, mid)

    def ack(self, message: InboundMessage) -> None:
        """Acknowledge a QoS 1 message to the broker, after its content is committed."""
        if self._client is not None and message.qos > 0:
            self._client.ack(message.mid, message.qos)

    def _schedule_fallback(self) -> None:
        """On the event loop: start the protocol fallback, keeping a reference to its task."""
        if self._fallback is None or self._fallback.done():
            self._fallback = asyncio.create_task(self._fall_back_to_311(), name="mqtt-fallback")

    # paho's thread from here on: hand over to the loop, nothing else.

    def _paho_on_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        """Subscribe again on every connect (the session may be new)."""
        if reason.is_failure:
            if self._auto and self.protocol == "5" and reason.value in _UNSUPPORTED_PROTOCOL:
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(self._schedule_fallback)
                return
            self.last_error = f"connection refused: {reason}"
            log.warning("MQTT broker %s refused us: %s", self.endpoint.describe(), reason)
            return
        self.last_error = None
        for topic, qos in self.subscriptions:
            client.subscribe(topic, qos)
        log.info(
            "connected to MQTT broker %s (session present: %s)",
            self.endpoint.describe(),
            getattr(flags, "session_present", None),
        )
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._connected.set)

    def _paho_on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        """Record why the link dropped; paho reconnects by itself."""
        self.last_error = f"disconnected: {reason}"
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._connected.clear)
        if self._client is not None:
            log.warning("lost MQTT broker %s: %s", self.endpoint.describe(), reason)

    def _paho_on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        """Hand the message to the event loop."""
        message = InboundMessage(
            topic=msg.topic,
            payload=bytes(msg.payload),
            qos=msg.qos,
            retain=bool(msg.retain),
            mid=msg.mid,
            lane=self.lane,
        )
        if self._on_message is None or self._loop is None:
            self.ack(message)
            return
        if self._admit is not None:
            self._admit(message)
        self._loop.call_soon_threadsafe(self._on_message, message)
