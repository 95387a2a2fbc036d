"""The embedded MQTT broker (amqtt) for the zero-setup default, run in a child process.

The child authenticates the server with a secret handed over in its environment and
devices with their id and secret from the database, and enforces the contract's ACL.
``vaki serve`` starts it; ``VAKI_MQTT_URL`` pointing at another broker switches it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devices.errors import BrokerStartError

SECRET_ENV = "VAKI_EMBEDDED_BROKER_SECRET"
DATABASE_ENV = "VAKI_EMBEDDED_BROKER_DATABASE_URL"
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
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


@dataclass(frozen=True)
class BrokerAddress:
    """Where the embedded broker listens, as recorded for other commands to read."""

    host: str
    port: int
    pid: int

    def to_json(self) -> str:
        """The state file's content."""
        return json.dumps({"host": self.host, "port": self.port, "pid": self.pid})


def read_broker_address(data_dir: Path) -> BrokerAddress | None:
    """The address of a running embedded broker started from ``data_dir``, if any."""
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        address = BrokerAddress(host=str(raw["host"]), port=int(raw["port"]), pid=int(raw["pid"]))
        os.kill(address.pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return address


class EmbeddedBroker:
    """Starts and stops the broker child process."""

    def __init__(
        self, *, host: str, preferred_port: int, database_url: str, data_dir: Path
    ) -> None:
        """Remember where to listen and whom to authenticate against."""
        self.host = host
        self.preferred_port = preferred_port
        self.database_url = database_url
        self.data_dir = data_dir
        self.secret = os.urandom(24).hex()
        self.port: int | None = None
        self.port_was_taken = False
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connect_host(self) -> str:
        """The address a local client connects to."""
        return _connect_host(self.host)

    def is_alive(self) -> bool:
        """True while the child process runs."""
        return self._process is not None and self._process.poll() is None

    async def start(self) -> None:
        """Pick a port (the preferred one when free), start the child, wait until it listens."""
        port = self.preferred_port
        if port == 0 or not port_is_free(self.host, port):
            self.port_was_taken = port != 0
            port = free_port(self.host)
        env = dict(os.environ)
        env[SECRET_ENV] = self.secret
        env[DATABASE_ENV] = self.database_url
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devices.broker_process", "--host", self.host,
             "--port", str(port), "--parent-pid", str(os.getpid())],
            env=env,
            stdout=subprocess.PIPE,
        )
        self.port = port
        try:
            # The child prints one line once its listener is up, or exits.
            assert self._process.stdout is not None
            line = await asyncio.wait_for(
                asyncio.to_thread(self._process.stdout.readline), _START_TIMEOUT_S
            )
        except TimeoutError:
            line = b""
        if line.strip() != READY_LINE:
            await self.stop()
            raise BrokerStartError(f"the embedded MQTT broker did not start on port {port}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        address = BrokerAddress(self.connect_host, port, self._process.pid)
        (self.data_dir / STATE_FILE).write_text(address.to_json())

    async def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL if it does not exit within five seconds."""
        process, self._process = self._process, None
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / STATE_FILE).unlink()
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 5)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
