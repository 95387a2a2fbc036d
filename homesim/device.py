"""A virtual Vaki device that behaves like good firmware, written only from docs/mqtt.md.

It exists to prove that the public contract v1 is enough to build a device, and to drive
the service in tests and simulations: persistent outbox, server acks, resends with backoff,
retained status with a Last Will, reconnects with jittered backoff, commands.

Threading: every paho client is driven from the event loop (see homesim.loop_sockets), so
every paho callback runs on the loop thread and needs no locking. Reconnecting is ours
rather than paho's because the contract asks for random jitter, and a fresh paho client per
connection means the outbox, not paho's in-flight queue, is the one place that decides what
gets resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from homesim.contract import (
    BATCH_HEAD,
    BATCH_TAIL,
    MAX_PAYLOAD_BYTES,
    OFFLINE_STATUS,
    SESSION_EXPIRY_S,
    TOPIC_PREFIX,
    compact_json,
    raw_id,
    rfc3339,
    utc_now,
)
from homesim.loop_sockets import LoopSockets
from homesim.outbox import MemoryStore, OutboxStore, Pending, SqliteStore, payloads

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")

MqttVersion = Literal["3.1.1", "5"]
Clock = Callable[[], datetime | None]

# CONNACK codes that mean "this broker does not speak MQTT 5" (v3 code 1, v5 code 0x84).
_PROTOCOL_REFUSED = frozenset({1, 0x84})


class VirtualDevice:
    """One Vaki device on MQTT: outbox, acks, resends, status, Last Will and reconnects."""

    def __init__(
        self,
        device_id: str,
        password: str,
        host: str,
        port: int,
        *,
        outbox_path: Path | None = None,
        protocol: MqttVersion = "3.1.1",
        clock: Clock = utc_now,
        keepalive_s: int = 60,
        resend_first_s: float = 30.0,
        resend_max_s: float = 600.0,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        battery: int | None = 100,
        fw: str = "vaki-virtual-1.0.0",
        on_ack: Callable[[Sequence[str]], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Configure the device; nothing is opened or connected before start()."""
        if not device_id or any(c in device_id for c in "/+#"):
            raise ValueError(f"device id {device_id!r} cannot be part of a topic")
        if protocol not in ("3.1.1", "5"):
            raise ValueError(f"protocol must be '3.1.1' or '5', not {protocol!r}")
        self.device_id = device_id
        self.host, self.port = host, port
        self.protocol: MqttVersion = protocol
        self._password = password
        self._clock = clock
        self._keepalive_s = keepalive_s
        self._resend_first_s, self._resend_max_s = resend_first_s, resend_max_s
        self._reconnect_min_s, self._reconnect_max_s = reconnect_min_s, reconnect_max_s
        self._connect_timeout_s = connect_timeout_s
        self._on_ack = on_ack
        # Jitter only: not security relevant, and seedable so simulations repeat.
        self._rng = rng or random.Random()  # noqa: S311
        self._store: OutboxStore = SqliteStore(outbox_path) if outbox_path else MemoryStore()
        self._status: dict[str, Any] = {"online": True, "fw": fw}
        if battery is not None:
            self._status["battery"] = battery

        self.commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.connects = 0
        self.resends = 0  # sends of a message after its first, by timer or after a reconnect
        self.last_error: str | None = None
        self._outbox: dict[str, Pending] = {}
        self._acked: set[str] = set()
        self._seen_commands: set[str] = set()
        self._waiters: list[tuple[set[str], asyncio.Future[None]]] = []
        self._pubacks: dict[int, asyncio.Future[None]] = {}
        self._token, self._boot, self._seq = "", 0, 0

        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: LoopSockets | None = None
        self._client: paho.Client | None = None
        self._connected = self._connack_seen = False
        self._connected_event = asyncio.Event()
        self._session_over = asyncio.Event()
        self._wake = asyncio.Event()
        self._connect_future: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._io_pending: set[asyncio.Future[Any]] = set()
        self._to_remove: list[str] = []
        self._remover: asyncio.Task[None] | None = None
        self._started = self._stopping = self._stopped = False

    # -- public API -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the loss of that connection."""
        return self._connected

    @property
    def outbox_size(self) -> int:
        """How many messages wait for the server's ack."""
        return len(self._outbox)

    @property
    def outbox_ids(self) -> list[str]:
        """The ids waiting for the server's ack, oldest first."""
        return list(self._outbox)

    @property
    def acked_ids(self) -> AbstractSet[str]:
        """Every id the server has acked to this device object so far."""
        return self._acked

    @property
    def boot(self) -> int:
        """This run's boot number (1 for an in-memory outbox)."""
        return self._boot

    async def start(self) -> None:
        """Open the outbox and start connecting; returns at once, the link comes up by itself."""
        if self._started:
            raise RuntimeError(f"device {self.device_id} was already started")
        self._loop = asyncio.get_running_loop()
        self._sockets = LoopSockets(self._loop)
        self._token, self._boot, stored = await self._io(self._store.open)
        for message_id, channel, body in stored:
            self._outbox[message_id] = Pending(message_id, channel, body)
        self._started = True
        self._tasks = [
            asyncio.create_task(self._supervise(), name=f"{self.device_id}-link"),
            asyncio.create_task(self._resend_loop(), name=f"{self.device_id}-resend"),
        ]

    # The timeout parameters are the brief's API; asyncio.timeout is used inside.
    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until the device is connected, or raise TimeoutError."""
        async with asyncio.timeout(timeout):
            await self._connected_event.wait()

    async def stop(self, graceful: bool = True) -> None:
        """Go away: say goodbye (graceful), or drop the socket so the broker fires the Last Will."""
        if not self._started or self._stopped:
            return
        self._stopping = True
        self._wake.set()
        if self._connect_future is not None:
            # The connect thread would otherwise hand us a socket after we are gone.
            await asyncio.wait({self._connect_future}, timeout=self._connect_timeout_s + 5)
        client = self._client
        if client is not None and graceful and self._connected:
            await self._say_goodbye(client)
        if client is not None:
            self._drop(client)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._remover is not None:
            await asyncio.gather(self._remover, return_exceptions=True)
        if self._io_pending:
            await asyncio.gather(*self._io_pending, return_exceptions=True)
        if self._to_remove:
            await self._io(self._store.remove, self._take_removals())
        await self._io(self._store.close)
        self._stopped = True

    async def send_reading(
        self, type: str, values: Mapping[str, float | None], ts: datetime | None = None
    ) -> str:
        """Send one reading: outbox first, then publish with QoS 1; returns its id."""
        (entry,) = await self._enqueue([self._reading(type, values, ts)])
        self._publish([entry])
        return entry.id

    async def send_batch(
        self, readings: Sequence[tuple[str, Mapping[str, float | None], datetime | None]]
    ) -> list[str]:
        """Send several readings as batches of at most 500 items and 64 KiB; returns the ids."""
        entries = await self._enqueue([self._reading(t, v, ts) for t, v, ts in readings])
        self._publish(entries)
        return [entry.id for entry in entries]

    async def send_event(
        self, type: str, data: Mapping[str, Any] | None = None, ts: datetime | None = None
    ) -> str:
        """Send one event (never batched): outbox first, then publish; returns its id."""
        event = self._message("event", type, ts, "data", dict(data or {}))
        (entry,) = await self._enqueue([event])
        self._publish([entry])
        return entry.id

    async def send_raw(self, codec: str, payload: bytes) -> str:
        """Send vendor bytes on raw/{codec}; the id is computed from the bytes."""
        if not codec or any(c in codec for c in "/+#"):
            raise ValueError(f"codec {codec!r} cannot be part of a topic")
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload has {len(payload)} bytes; the limit is 65536")
        message_id = raw_id(payload)
        if message_id in self._outbox:
            # Same bytes, same id: the server would store it once anyway.
            return message_id
        (entry,) = await self._enqueue([Pending(message_id, f"raw/{codec}", payload)])
        self._publish([entry])
        return entry.id

    async def wait_until_acked(self, ids: Iterable[str], timeout: float) -> None:  # noqa: ASYNC109
        """Wait until the server has acked every one of ids, or raise TimeoutError."""
        wanted = set(ids)
        missing = wanted - self._acked
        if not missing:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (missing, future)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            raise TimeoutError(
                f"{len(missing)} of {len(wanted)} ids not acked within {timeout} s,"
                f" e.g. {sorted(missing)[:3]}"
            ) from None
        finally:
            self._waiters.remove(waiter)

    def publish_status(
        self, *, battery: int | None = None, extra: Mapping[str, Any] | None = None
    ) -> bool:
        """Update the status and publish it retained; False when offline (sent on connect)."""
        if battery is not None:
            if not 0 <= battery <= 100:
                raise ValueError(f"battery {battery} is outside 0–100 %")
            self._status["battery"] = battery
        if extra:
            self._status.update(extra)
        client = self._client
        if client is None or not self._connected:
            return False
        client.publish(self._topic("status"), compact_json(self._status), qos=1, retain=True)
        return True

    def _halted(self) -> bool:
        """True once stop began; a method, so that type narrowing does not outlive an await."""
        return self._stopping

    # -- building messages ------------------------------------------------------------------

    def _next_id(self) -> str:
        """A new id, unique forever: install token, boot counter, sequence within the boot."""
        if not self._started:
            raise RuntimeError(f"start device {self.device_id} before sending")
        if self._stopping:
            raise RuntimeError(f"device {self.device_id} is stopped")
        self._seq += 1
        return f"{self._token}-b{self._boot}-{self._seq:06d}"

    def _stamp(self, ts: datetime | None) -> str | None:
        """The ts field: the given time, else the device clock; None when there is no clock."""
        moment = ts if ts is not None else self._clock()
        return None if moment is None else rfc3339(moment)

    def _reading(
        self, type: str, values: Mapping[str, float | None], ts: datetime | None
    ) -> Pending:
        """A reading as an outbox entry."""
        return self._message("reading", type, ts, "values", dict(values))

    def _message(
        self, channel: str, type: str, ts: datetime | None, key: str, content: dict[str, Any]
    ) -> Pending:
        """A reading or an event as an outbox entry: a new id, the ts when there is a clock,
        the type, and its ``values`` or ``data``."""
        message_id = self._next_id()
        document: dict[str, Any] = {"id": message_id}
        stamp = self._stamp(ts)
        if stamp is not None:
            document["ts"] = stamp
        document["type"] = type
        document[key] = content
        return self._pending(message_id, channel, document)

    def _pending(self, message_id: str, channel: str, document: Mapping[str, Any]) -> Pending:
        """Serialise once: a resend must carry exactly the same bytes."""
        body = compact_json(document)
        if len(body) + len(BATCH_HEAD) + len(BATCH_TAIL) > MAX_PAYLOAD_BYTES:
            # The server would refuse it as a whole and never ack it: it would stay forever.
            raise ValueError(f"{channel} {message_id} is {len(body)} bytes; the limit is 65536")
        return Pending(message_id, channel, body)

    async def _enqueue(self, entries: list[Pending]) -> list[Pending]:
        """Store durably first: a message that is published before it is stored can be lost."""
        await self._io(self._store.put, [(e.id, e.channel, e.body) for e in entries])
        for entry in entries:
            self._outbox[entry.id] = entry
        self._wake.set()
        return entries

    async def _io(self, function: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Run a storage call off the event loop (fsync takes time); tracked so stop can wait."""
        if not self._store.persistent:
            return function(*args, **kwargs)
        future = asyncio.ensure_future(asyncio.to_thread(function, *args, **kwargs))
        self._io_pending.add(future)
        try:
            return await future
        finally:
            self._io_pending.discard(future)

    def _topic(self, channel: str) -> str:
        """This device's topic for a channel."""
        return f"{TOPIC_PREFIX}/{self.device_id}/{channel}"

    # -- publishing and resending -----------------------------------------------------------

    def _publish(self, entries: Iterable[Pending]) -> None:
        """Publish entries still in the outbox with QoS 1; offline, the reconnect sends them."""
        client = self._client
        if client is None or not self._connected:
            return
        assert self._loop is not None
        now = self._loop.time()
        live = [e for e in entries if e.id in self._outbox]
        for channel, payload, group in payloads(live):
            client.publish(self._topic(channel), payload, qos=1)
            for entry in group:
                self.resends += 1 if entry.sends else 0
                entry.sends += 1
                entry.sent_at = now

    async def _resend_loop(self) -> None:
        """Resend what has waited too long for its ack, and sleep until the next one is due."""
        assert self._loop is not None
        while True:
            self._wake.clear()
            timeout: float | None = None
            if self._connected:
                now = self._loop.time()
                first, most = self._resend_first_s, self._resend_max_s
                due = [e for e in self._outbox.values() if e.due_at(first, most) <= now]
                if due:
                    log.debug("%s resends %d messages", self.device_id, len(due))
                    self._publish(due)
                upcoming = [e.due_at(first, most) for e in self._outbox.values() if e.sends]
                if upcoming:
                    timeout = max(0.0, min(upcoming) - self._loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    # -- the connection ---------------------------------------------------------------------

    def _new_client(self) -> paho.Client:
        """A fresh paho client for one connection attempt, with credentials and Last Will."""
        v5 = self.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            # Clean session off: acks and commands sent while we were briefly away wait for us.
            clean_session=None if v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        client.username_pw_set(self.device_id, self._password)
        client.will_set(self._topic("status"), OFFLINE_STATUS, qos=1, retain=True)
        client.connect_timeout = self._connect_timeout_s
        client.max_inflight_messages_set(100)
        # An exception in a callback must not leave paho's packet parser half-way through.
        client.suppress_exceptions = True
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        assert self._sockets is not None
        self._sockets.attach(client)
        return client

    def _connect_blocking(self, client: paho.Client) -> None:
        """TCP connect and send CONNECT; runs in a worker thread."""
        if self.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            client.connect(
                self.host,
                self.port,
                keepalive=self._keepalive_s,
                clean_start=False,
                properties=properties,
            )
        else:
            client.connect(self.host, self.port, keepalive=self._keepalive_s)

    async def _supervise(self) -> None:
        """Keep a connection up: after a loss wait 1 s, doubling to 60 s, with jitter."""
        delay = self._reconnect_min_s
        while not self._halted():
            connected = await self._one_connection()
            if self._halted():
                return
            if connected:
                delay = self._reconnect_min_s
            # Jitter, so that a whole town of devices does not reconnect in the same second.
            await asyncio.sleep(delay * self._rng.uniform(0.75, 1.25))
            delay = min(delay * 2, self._reconnect_max_s)

    async def _one_connection(self) -> bool:
        """Connect once and serve the connection until it ends; True if it got a CONNACK."""
        assert self._loop is not None
        client = self._new_client()
        self._client = client
        self._session_over = asyncio.Event()
        connects_before = self.connects
        self._connack_seen = False
        future = self._loop.run_in_executor(None, self._connect_blocking, client)
        self._connect_future = future
        try:
            await future
        except (OSError, ValueError) as error:  # refused, unreachable, DNS, timeout
            self.last_error = f"connect to {self.host}:{self.port} failed: {error!r}"
            log.debug("%s: %s", self.device_id, self.last_error)
            self._forget(client)
            return False
        except Exception as error:
            # Firmware keeps trying whatever happened; a dead supervisor would be silent.
            self.last_error = f"connect to {self.host}:{self.port} failed: {error!r}"
            log.exception("%s: unexpected connect failure", self.device_id)
            self._forget(client)
            return False
        finally:
            self._connect_future = None
        deadline = self._loop.time() + self._connect_timeout_s
        while not self._session_over.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._session_over.wait()
            if self._session_over.is_set():
                break
            if not self._connected and self._loop.time() > deadline:
                self.last_error = "no CONNACK in time"
                self._drop(client)
            else:
                client.loop_misc()  # keepalive pings and the broker's silence
        self._forget(client)
        if self.protocol == "5" and not self._connack_seen and not self._halted():
            # The embedded broker of a development install answers an MQTT 5 CONNECT with
            # no CONNACK at all (not the refusal the contract describes): fall back anyway.
            log.warning("%s: no CONNACK to MQTT 5; falling back to 3.1.1", self.device_id)
            self.protocol = "3.1.1"
        return self.connects > connects_before

    async def _say_goodbye(self, client: paho.Client) -> None:
        """Publish offline status retained, wait for its PUBACK, then DISCONNECT cleanly."""
        assert self._loop is not None
        # A clean DISCONNECT does not fire the Last Will, so say it ourselves.
        info = client.publish(self._topic("status"), OFFLINE_STATUS, qos=1, retain=True)
        future: asyncio.Future[None] = self._loop.create_future()
        self._pubacks[info.mid] = future
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await future
        self._pubacks.pop(info.mid, None)
        client.disconnect()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self._session_over.wait()

    def _drop(self, client: paho.Client) -> None:
        """Close the connection without DISCONNECT, as a crash or a dead battery would."""
        if self._sockets is not None:
            self._sockets.drop(client)

    def _forget(self, client: paho.Client) -> None:
        """Make sure an old client holds no socket and can call nothing after we let it go."""
        if self._sockets is not None:
            self._sockets.detach(client)
        if self._client is client:
            self._connected = False
            self._connected_event.clear()

    # -- paho callbacks (on the event loop thread: see homesim.loop_sockets) ----------------

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        _flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        """After every CONNACK: subscribe, publish status, resend the whole outbox."""
        if client is not self._client:
            return
        self._connack_seen = True
        if reason.is_failure:
            self.last_error = f"CONNACK refused: {reason}"
            log.warning("%s: %s", self.device_id, self.last_error)
            if self.protocol == "5" and reason.value in _PROTOCOL_REFUSED:
                # The embedded broker of a development install speaks only 3.1.1.
                self.protocol = "3.1.1"
            return
        self._connected = True
        self.connects += 1
        client.subscribe([(self._topic("ack"), 1), (self._topic("cmd"), 1)])
        client.publish(self._topic("status"), compact_json(self._status), qos=1, retain=True)
        self._publish(list(self._outbox.values()))
        self._connected_event.set()
        self._wake.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        """The connection is gone: the supervisor reconnects unless we are stopping."""
        if client is not self._client:
            return
        if self._connected:
            log.info("%s lost its connection: %s", self.device_id, reason)
        self._connected = False
        self._connected_event.clear()
        self._session_over.set()

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        _reason: ReasonCode,
        _properties: Properties,
    ) -> None:
        """A PUBACK: only the goodbye status waits for one; the rest wait for server acks."""
        future = self._pubacks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        """An ack or a command from the server."""
        if message.topic == self._topic("ack"):
            self._handle_ack(bytes(message.payload))
        elif message.topic == self._topic("cmd"):
            self._handle_command(bytes(message.payload))

    def _handle_ack(self, payload: bytes) -> None:
        """Remove exactly the acked ids from the outbox and wake whoever waits for them."""
        try:
            document = json.loads(payload)
            ids = document["ids"]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise TypeError("ids is not a list of strings")
        except (ValueError, KeyError, TypeError) as error:
            log.warning("%s got an unreadable ack %r: %s", self.device_id, payload[:200], error)
            return
        newly = [i for i in ids if self._outbox.pop(i, None) is not None]
        self._acked.update(ids)
        if newly and self._store.persistent:
            self._to_remove.extend(newly)
            if self._remover is None or self._remover.done():
                self._remover = asyncio.create_task(self._remove_acked())
        for missing, future in self._waiters:
            missing.difference_update(ids)
            if not missing and not future.done():
                future.set_result(None)
        if newly and self._on_ack is not None:
            self._on_ack(newly)

    def _take_removals(self) -> list[str]:
        """The acked ids not yet deleted from the file."""
        ids, self._to_remove = self._to_remove, []
        return ids

    async def _remove_acked(self) -> None:
        """Delete acked ids from the file, coalescing acks that arrive meanwhile."""
        while self._to_remove:
            await self._io(self._store.remove, self._take_removals())

    def _handle_command(self, payload: bytes) -> None:
        """Queue a command once per id: the broker may deliver it twice."""
        try:
            command = json.loads(payload)
        except ValueError:
            log.warning("%s got an unreadable command %r", self.device_id, payload[:200])
            return
        if not isinstance(command, dict):
            log.warning("%s got a command that is not an object: %r", self.device_id, command)
            return
        command_id = command.get("id")
        if isinstance(command_id, str):
            if command_id in self._seen_commands:
                return
            self._seen_commands.add(command_id)
        self.commands.put_nowait(command)
