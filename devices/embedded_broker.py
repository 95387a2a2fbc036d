"""The embedded MQTT broker (amqtt) for the zero-setup default, run in a child process.

The child authenticates the server with a secret handed over in its environment and
devices with their id and secret from the database, and enforces the contract's ACL.
``vaki serve`` starts it; ``VAKI_MQTT_URL`` pointing at another broker switches it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from devices.errors import BrokerStartError

log = logging.getLogger(__name__)

SECRET_ENV = "VAKI_EMBEDDED_BROKER_SECRET"  # noqa: S105 (a variable name, not a secret)
DATABASE_ENV = "VAKI_EMBEDDED_BROKER_DATABASE_URL"
CLIENT_ID_ENV = "VAKI_EMBEDDED_BROKER_SERVER_CLIENT_ID"
STATE_FILE = "embedded-broker.json"
READY_LINE = b"vaki-embedded-broker-ready"
_START_TIMEOUT_S = 20.0


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` and we could bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    """A port the operating system says is free on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _connect_host(host: str) -> str:
    """The address to connect to for a listener bound on ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 (a comparison)


@dataclass(frozen=True)
class BrokerAddress:
    """Where the embedded broker listens, as recorded for other commands to read."""

    host: str
    port: int
    pid: int
    # "amqtt" or "mosquitto": how another process hands it changed logins.
    kind: str = "amqtt"

    def to_json(self) -> str:
        """The state file's content."""
        return json.dumps(
            {"host": self.host, "port": self.port, "pid": self.pid, "kind": self.kind}
        )


def read_broker_address(data_dir: Path) -> BrokerAddress | None:
    """The address of a running embedded broker started from ``data_dir``, if any."""
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        address = BrokerAddress(
            host=str(raw["host"]),
            port=int(raw["port"]),
            pid=int(raw["pid"]),
            kind=str(raw.get("kind", "amqtt")),
        )
        os.kill(address.pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return address


class SupervisedBroker:
    """A broker child process, restarted on its ports whenever it dies and stopped on demand.

    A subclass sets ``host``, ``preferred_port`` and ``data_dir`` and starts the child in
    ``_launch``, which sets ``_process`` and writes the state file.
    """

    # How the log names the child ("private Mosquitto exited with code 1").
    child_words = "MQTT broker"
    host: str
    preferred_port: int
    data_dir: Path
    port: int | None
    port_was_taken: bool

    def __init__(self) -> None:
        """No child yet."""
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None

    def is_alive(self) -> bool:
        """True while the child process runs."""
        return self._process is not None and self._process.returncode is None

    def _pick_port(self) -> None:
        """The devices' port: the preferred one when free, else any free one."""
        port = self.preferred_port
        if port == 0 or not port_is_free(self.host, port):
            self.port_was_taken = port != 0
            port = free_port(self.host)
        self.port = port

    def _send_reload(self) -> None:
        """SIGHUP to a running child: it reads the logins again."""
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGHUP)

    async def _launch(self) -> None:
        """Start the child and wait until it accepts connections."""
        raise NotImplementedError

    async def _supervise(self) -> None:
        """Restart the child on the same ports whenever it dies."""
        # ``stop`` cancels this task before it stops the child, so every exit seen here is
        # unexpected.
        while True:
            process = self._process
            assert process is not None
            code = await process.wait()
            log.error("%s exited with code %s; restarting it", self.child_words, code)
            await asyncio.sleep(1.0)
            try:
                await self._launch()
            except BrokerStartError:
                log.exception("%s failed to restart; trying again", self.child_words)

    async def stop(self) -> None:
        """Stop supervising and stop the child: SIGTERM, then SIGKILL after five seconds."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        process, self._process = self._process, None
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / STATE_FILE).unlink()
        if process is not None:
            await self._terminate(process)

    @staticmethod
    async def _terminate(process: asyncio.subprocess.Process) -> None:
        """SIGTERM, then SIGKILL if the child has not exited within five seconds."""
        if process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


class EmbeddedBroker(SupervisedBroker):
    """Starts and stops the broker child process (amqtt, where Mosquitto is not installed)."""

    name = "embedded (amqtt)"
    child_words = "embedded MQTT broker"
    # amqtt speaks MQTT 3.1.1 only.
    protocol = "3.1.1"

    def __init__(
        self,
        *,
        host: str,
        preferred_port: int,
        database_url: str,
        data_dir: Path,
        server_client_id: str = "vaki-server",
    ) -> None:
        """Remember where to listen and whom to authenticate against."""
        super().__init__()
        self.host = host
        self.server_client_id = server_client_id
        self._logins: tuple[tuple[str, str], ...] = ()
        self.preferred_port = preferred_port
        self.database_url = database_url
        self.data_dir = data_dir
        self.secret = os.urandom(24).hex()
        self.port: int | None = None
        self.port_was_taken = False

    @property
    def connect_host(self) -> str:
        """The address a local client connects to."""
        return _connect_host(self.host)

    @property
    def service_port(self) -> int | None:
        """Where the server connects: the same listener as devices."""
        return self.port

    @property
    def service_host(self) -> str:
        """The address the server's own connections use."""
        return self.connect_host

    async def reload(self, logins: Iterable[tuple[str, str]]) -> bool:
        """Tell the child the registry changed (SIGHUP), so revoked devices are disconnected.

        The child checks logins against the database itself; returns False when unchanged.
        """
        wanted = tuple(logins)
        if wanted == self._logins:
            return False
        self._logins = wanted
        self._send_reload()
        return True

    async def start(self, logins: Iterable[tuple[str, str]] = ()) -> None:
        """Pick a port (the preferred one when free), start the child and supervise it."""
        self._logins = tuple(logins)
        self._pick_port()
        await self._launch()
        self._supervisor = asyncio.create_task(self._supervise(), name="embedded-broker")

    async def _launch(self) -> None:
        """Start the child and wait for the line it prints once its listener is up."""
        assert self.port is not None
        env = dict(os.environ)
        env[SECRET_ENV] = self.secret
        env[DATABASE_ENV] = self.database_url
        env[CLIENT_ID_ENV] = self.server_client_id
        arguments = [
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--parent-pid",
            str(os.getpid()),
        ]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devices.broker_process",
            *arguments,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        self._process = process
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), _START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.strip() != READY_LINE:
            await self._terminate(process)
            raise BrokerStartError(f"the embedded MQTT broker did not start on port {self.port}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        address = BrokerAddress(self.connect_host, self.port, process.pid)
        (self.data_dir / STATE_FILE).write_text(address.to_json())


class LocalBroker(Protocol):
    """The broker ``vaki serve`` runs itself: a private Mosquitto, or amqtt where there is none."""

    name: str
    protocol: str
    host: str
    secret: str
    port: int | None
    port_was_taken: bool

    @property
    def connect_host(self) -> str:
        """The address a local client connects to."""

    @property
    def service_host(self) -> str:
        """The address the server's own connections use."""

    @property
    def service_port(self) -> int | None:
        """The port the server's own connections use."""

    def is_alive(self) -> bool:
        """True while the broker process runs."""

    async def start(self, logins: Iterable[tuple[str, str]]) -> None:
        """Start with these device logins (id, Mosquitto hash)."""

    async def reload(self, logins: Iterable[tuple[str, str]]) -> bool:
        """Take a changed set of device logins; disconnect devices that lost theirs."""

    async def stop(self) -> None:
        """Stop the broker process."""
