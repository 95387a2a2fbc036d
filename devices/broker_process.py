"""The embedded broker's child process: amqtt with Vaki's authentication and ACL plugins.

Started by ``devices.embedded_broker.EmbeddedBroker``; stops on SIGTERM or when its parent
process disappears.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from care import verify_secret
from devices.embedded_broker import DATABASE_ENV, READY_LINE, SECRET_ENV
from devices.topics import SERVICE_USERNAME, device_may_publish, device_may_subscribe

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
    broker = Broker(_broker_config(host, port))
    await broker.start()
    sys.stdout.buffer.write(READY_LINE + b"\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
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
