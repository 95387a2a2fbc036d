"""The embedded broker's child process: amqtt with Vaki's authentication and ACL plugins.

amqtt alone touches a client's session before it checks the login, publishes Last Wills
without the ACL and replays retained messages to whoever connects. ``GuardedBroker`` wraps
it: a CONNECT is authenticated (and its will checked) before any session state is touched,
retained messages go only to sessions the ACL lets read them, payloads over the contract's
limit are dropped, and SIGHUP disconnects devices that were revoked. Started by
``devices.embedded_broker.EmbeddedBroker``; stops on SIGTERM or when its parent disappears.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from care import verify_secret
from devices.contract import MAX_PAYLOAD_BYTES
from devices.embedded_broker import CLIENT_ID_ENV, DATABASE_ENV, READY_LINE, SECRET_ENV
from devices.topics import (
    SERVICE_USERNAME,
    device_may_publish,
    device_may_subscribe,
    device_topic,
    reserved_client_id,
)

log = logging.getLogger(__name__)


class _DeviceDirectory:
    """Looks up device credentials, caching successful argon2 checks per secret."""

    def __init__(self, database_url: str) -> None:
        """Open a small engine on the service's database."""
        self._engine = create_async_engine(database_url)
        # (device id, secret) → secret hash it matched; argon2 costs ~50 ms, reconnect
        # storms after a broker restart would otherwise take minutes of CPU.
        self._verified: dict[tuple[str, str], str] = {}

    async def authenticate(self, device_id: str, secret: str) -> bool:
        """True for an existing, unrevoked device whose secret matches."""
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT secret_hash, revoked_at FROM device WHERE id = :id"),
                    {"id": device_id},
                )
            ).first()
        if row is None or row.revoked_at is not None:
            return False
        secret_hash: str = row.secret_hash
        if self._verified.get((device_id, secret)) == secret_hash:
            return True
        if await asyncio.to_thread(verify_secret, secret_hash, secret):
            self._verified[(device_id, secret)] = secret_hash
            return True
        return False

    async def no_longer_admitted(self, device_ids: set[str]) -> set[str]:
        """Which of these devices are revoked or gone from the registry."""
        if not device_ids:
            return set()
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT id FROM device WHERE revoked_at IS NULL AND id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": sorted(device_ids)},
            )
            active = {row.id for row in rows}
        return device_ids - active

    async def close(self) -> None:
        """Close the engine."""
        await self._engine.dispose()


class VakiAuthPlugin(BaseAuthPlugin):
    """Lets in the server with its secret and devices with their id and secret."""

    @dataclass
    class Config:
        """No options: the secret and database come from the environment."""

    def __init__(self, context: BaseContext) -> None:
        """Read the server's secret."""
        super().__init__(context)
        self._service_secret = os.environ[SECRET_ENV]
        self._server_client_id = os.environ.get(CLIENT_ID_ENV, SERVICE_USERNAME)
        self._directory = _DeviceDirectory(os.environ[DATABASE_ENV])

    async def close(self) -> None:
        """Close the device directory's database connections."""
        await self._directory.close()

    async def authenticate(self, *, session: Session) -> bool | None:
        """True when the login is the server's or a device's whose client id is its own id."""
        username, password = session.username or "", session.password or ""
        if isinstance(password, bytes):
            password = password.decode("utf-8", "replace")
        if username == SERVICE_USERNAME:
            return bool(password) and password == self._service_secret
        if not username or session.client_id != username:
            log.info("refused MQTT login %r with client id %r", username, session.client_id)
            return False
        if reserved_client_id(username, self._server_client_id):
            log.warning("refused device login %r: the server's client ids are its own", username)
            return False
        try:
            accepted = await self._directory.authenticate(username, password)
        except Exception:
            log.exception("device lookup failed; refusing %r", username)
            return False
        if not accepted:
            log.info("refused MQTT login of device %r: unknown, revoked or wrong secret", username)
        return accepted


class VakiTopicPlugin(BaseTopicPlugin):
    """Enforces the contract's ACL: a device touches only its own topics."""

    @dataclass
    class Config:
        """No options."""

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        """Allow the server everything; a device its own prefix (publish) and cmd/ack."""
        if session is None or topic is None:
            return False
        username = session.username or ""
        if username == SERVICE_USERNAME:
            return True
        if action == Action.PUBLISH:
            return device_may_publish(username, topic)
        return device_may_subscribe(username, topic)


# What a device's Last Will may say: that it went offline, on its own status topic.
_WILL_KEYS = {"online", "battery", "fw", "rssi", "reason"}
_WILL_MAX_BYTES = 1024


def will_refusal(session: Session) -> str | None:
    """Why this CONNECT's Last Will is refused, or None when it has none or it is allowed."""
    if not session.will_flag:
        return None
    username = session.username or ""
    message = bytes(session.will_message or b"")
    if username == SERVICE_USERNAME:
        return "the server sends no will"
    if session.will_topic != device_topic(username, "status"):
        return f"a will may only go to the device's own status topic, not {session.will_topic!r}"
    return _will_payload_refusal(message)


def _will_payload_refusal(message: bytes) -> str | None:
    """Why a will's payload is refused: anything but a short ``{"online": false}`` status."""
    if len(message) > _WILL_MAX_BYTES:
        return "the will is too long"
    try:
        document = json.loads(message)
    except ValueError:
        return "the will is not JSON"
    if not isinstance(document, dict) or document.get("online") is not False:
        return 'a will may only say {"online": false}'
    unknown = set(document) - _WILL_KEYS
    return f"the will carries unknown keys {sorted(unknown)}" if unknown else None


class GuardedBroker(Broker):
    """amqtt with the login and the will checked before any session is looked up."""

    def __init__(self, config: dict[str, Any], database_url: str) -> None:
        """Build the broker and a directory to check connected devices against."""
        super().__init__(config)
        self._directory = _DeviceDirectory(database_url)

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        """Read the CONNECT, refuse a bad login or will untouched, then find the session.

        amqtt's own version deletes (clean session) or rewrites (persistent session) the
        stored session of the client id before it authenticates: a CONNECT without a
        password could silence the server's alarm lane.
        """
        try:
            handler, incoming = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except (MQTTError, NoDataError) as err:
            with contextlib.suppress(Exception):
                await writer.close()
            raise AMQTTError(f"unreadable CONNECT from {remote_address}: {err}") from err
        refusal = await self._refusal(incoming)
        if refusal is not None:
            log.info(
                "refused MQTT CONNECT from %s as %r (client id %r): %s",
                remote_address,
                incoming.username,
                incoming.client_id,
                refusal,
            )
            incoming.parent = 0
            handler.attach(incoming, reader, writer)
            with contextlib.suppress(Exception):
                await handler.mqtt_connack_authorize(False)
                await writer.close()
            raise AMQTTError(refusal)
        return await self._attach_session(handler, incoming)

    async def _refusal(self, incoming: Session) -> str | None:
        """Why this CONNECT is refused: a failed login, or a will outside the device's own."""
        if not incoming.client_id:
            return "no client id"
        if not await self._authenticate(incoming, None):
            return "login failed"
        return will_refusal(incoming)

    async def _attach_session(
        self, handler: BrokerProtocolHandler, incoming: Session
    ) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt's session lookup, for a CONNECT that is already authenticated."""
        client_session = incoming
        if incoming.clean_session:
            await self._delete_session(incoming.client_id)
            incoming.parent = 0
        elif incoming.client_id in self._sessions:
            existing, _ = self._sessions[incoming.client_id]
            existing.will_flag = incoming.will_flag
            existing.will_message = incoming.will_message
            existing.will_topic = incoming.will_topic
            existing.will_qos = incoming.will_qos
            existing.will_retain = incoming.will_retain
            existing.keep_alive = incoming.keep_alive
            existing.username = incoming.username
            existing.password = incoming.password
            client_session = existing
            client_session.parent = 1
        else:
            incoming.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0 and isinstance(delay, int):
            client_session.keep_alive += delay
        return handler, client_session

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        """Replay retained messages only on the session's own filters and as the ACL allows."""
        topic_filter, qos = subscription
        subscribers = self._subscriptions.get(topic_filter, [])
        if all(subscriber.client_id != session.client_id for subscriber, _ in subscribers):
            return
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks = []
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if not await self._topic_filtering(session, topic, Action.RECEIVE):
                continue
            tasks.append(
                asyncio.ensure_future(
                    handler.mqtt_publish(
                        retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
                    )
                )
            )
        if tasks:
            await asyncio.wait(tasks)

    async def _handle_message_delivery(
        self,
        client_session: Session,
        handler: BrokerProtocolHandler,
        wait_deliver: asyncio.Future[Any],
    ) -> bool:
        """Drop a message over the contract's payload limit; pass the rest to amqtt."""
        message = wait_deliver.result()
        if (
            message is not None
            and message.data is not None
            and len(message.data) > MAX_PAYLOAD_BYTES
        ):
            log.warning(
                "dropped a %s-byte message from %r to %s: the limit is %s bytes",
                len(message.data),
                client_session.client_id,
                message.topic,
                MAX_PAYLOAD_BYTES,
            )
            return True
        delivered: bool = await super()._handle_message_delivery(
            client_session, handler, wait_deliver
        )
        return delivered

    async def expel_revoked(self) -> None:
        """Disconnect and forget every connected device that is revoked or gone."""
        connected = {
            session.username: (client_id, handler)
            for client_id, (session, handler) in list(self._sessions.items())
            if session.username and session.username != SERVICE_USERNAME
        }
        try:
            gone = await self._directory.no_longer_admitted(set(connected))
        except Exception:
            log.exception("could not check connected devices against the registry")
            return
        for device_id in gone:
            client_id, handler = connected[device_id]
            log.info("disconnecting revoked device %r", device_id)
            if handler is not None and handler.writer is not None:
                with contextlib.suppress(Exception):
                    await handler.writer.close()
            await self._delete_session(client_id)

    async def shutdown(self) -> None:
        """Stop the broker and close the directory."""
        try:
            await super().shutdown()
        finally:
            await self._directory.close()


def _broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt configuration: one TCP listener, Vaki's auth and ACL plugins."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {
            "devices.broker_process.VakiAuthPlugin": {},
            "devices.broker_process.VakiTopicPlugin": {},
        },
    }


async def _run_broker(host: str, port: int, parent_pid: int) -> None:
    """Run until SIGTERM/SIGINT or until the parent process is gone."""
    broker = GuardedBroker(_broker_config(host, port), os.environ[DATABASE_ENV])
    await broker.start()
    sys.stdout.buffer.write(READY_LINE + b"\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    expelling: set[asyncio.Task[None]] = set()

    def on_reload() -> None:
        """SIGHUP: the registry changed; disconnect devices that lost their access."""
        task = asyncio.create_task(broker.expel_revoked(), name="expel-revoked")
        expelling.add(task)
        task.add_done_callback(expelling.discard)

    loop.add_signal_handler(signal.SIGHUP, on_reload)
    try:
        # A parent killed with SIGKILL cannot stop us: notice it and exit.
        while not stop.is_set() and os.getppid() == parent_pid:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await broker.shutdown()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the broker child process."""
    parser = argparse.ArgumentParser(description="Vaki's embedded MQTT broker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s embedded-broker %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("devices").setLevel(logging.INFO)
    asyncio.run(_run_broker(args.host, args.port, args.parent_pid))


if __name__ == "__main__":
    main()
