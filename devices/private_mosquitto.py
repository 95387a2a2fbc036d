"""A private Mosquitto child process: the default broker wherever ``mosquitto`` is installed.

Two listeners with settings of their own (``per_listener_settings``): the devices' listener,
where each device logs in with its id and secret, its client id is forced to its id and the
contract's ACL keeps it to its own topics; and the server's listener on loopback, where only
the server's generated login works. Nobody logs in anonymously. The password file is written
from the device registry and reloaded with SIGHUP when devices are added, re-keyed or revoked;
Mosquitto then disconnects every client whose login no longer holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import shutil
import signal
from collections.abc import Iterable
from pathlib import Path

from devices.contract import MAX_PAYLOAD_BYTES
from devices.embedded_broker import (
    STATE_FILE,
    BrokerAddress,
    SupervisedBroker,
    _connect_host,
    free_port,
    read_broker_address,
)
from devices.errors import BrokerStartError
from devices.mosquitto_auth import SERVER_ITERATIONS, mosquitto_hash, render_acl_file
from devices.topics import DEVICE_PREFIX, SERVICE_USERNAME, reserved_client_id

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0
# Room for the fixed header, the topic and MQTT 5 properties around a full-sized payload.
PACKET_OVERHEAD_BYTES = 1024

PRIVATE_MOSQUITTO_CONF = """\
# Written by Vaki at each start; edits are lost. Devices and the server log in on listeners
# of their own, nobody anonymously.
per_listener_settings true
{user_line}
persistence true
persistence_location {state_dir}/
autosave_interval 30
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages false
# The contract's payload limit, enforced before the server reads anything: a bigger
# message is dropped, a bigger packet closes the connection.
message_size_limit {payload_limit}
max_packet_size {packet_limit}
# Vaki acknowledges only after its database commit: let a whole batch be in flight to it,
# and let the broker hold a backlog rather than drop it.
max_inflight_messages 1000
max_queued_messages 100000

# The server's own listener: loopback only, its generated login only.
listener {service_port} 127.0.0.1
allow_anonymous false
password_file {service_passwords}
acl_file {service_acl}

# Devices: id and secret; the client id is the device id, so no login takes over
# another's session.
listener {port} {host}
allow_anonymous false
password_file {device_passwords}
acl_file {device_acl}
use_username_as_clientid true
"""


def mosquitto_binary() -> str | None:
    """The path of the ``mosquitto`` program when it is installed."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )


def render_device_passwords(
    logins: Iterable[tuple[str, str]], server_client_id: str = SERVICE_USERNAME
) -> str:
    """The devices' password file; ids the server's client ids use are never let in."""
    lines = []
    for device_id, password_hash in logins:
        if reserved_client_id(device_id, server_client_id):
            log.warning("device %r has a server's client id; it cannot log in", device_id)
            continue
        lines.append(f"{device_id}:{password_hash}")
    return "\n".join(lines) + "\n"


def _write_private(path: Path, content: str) -> None:
    """Write a file only its owner reads, replacing it in one step."""
    partial = path.with_suffix(path.suffix + ".new")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(content)
    os.replace(partial, path)


def hand_logins_to_running_broker(
    data_dir: Path, logins: Iterable[tuple[str, str]], server_client_id: str = SERVICE_USERNAME
) -> bool:
    """From another process (``vaki device add`` or ``revoke``): the running broker of
    ``data_dir`` takes the registry's logins at once; False when none runs.

    Mosquitto handles the SIGHUP before it reads another CONNECT, so a device added here can
    log in as soon as this returns; amqtt reads logins from the database and on SIGHUP drops
    revoked devices. The server's own follower catches up on its next round either way.
    """
    address = read_broker_address(data_dir)
    if address is None:
        return False
    if address.kind == "mosquitto":
        passwords = data_dir / "mosquitto" / "devices.passwd"
        _write_private(passwords, render_device_passwords(logins, server_client_id))
    os.kill(address.pid, signal.SIGHUP)
    return True


class PrivateMosquitto(SupervisedBroker):
    """Starts, reloads and stops a Mosquitto that only this server and its devices use."""

    name = "private Mosquitto"
    child_words = "private Mosquitto"
    # The server speaks MQTT 5 to Mosquitto.
    protocol = "5"

    def __init__(
        self,
        *,
        host: str,
        preferred_port: int,
        data_dir: Path,
        binary: str = "mosquitto",
        server_client_id: str = SERVICE_USERNAME,
    ) -> None:
        """Remember where to listen; nothing starts before ``start``."""
        super().__init__()
        self.host = host
        self.server_client_id = server_client_id
        self.preferred_port = preferred_port
        self.data_dir = data_dir
        self.binary = binary
        self.secret = os.urandom(24).hex()
        self.port: int | None = None
        self.service_port: int | None = None
        self.port_was_taken = False
        self._dir = data_dir / "mosquitto"
        self._stderr_task: asyncio.Task[None] | None = None
        self._logins: tuple[tuple[str, str], ...] = ()

    @property
    def connect_host(self) -> str:
        """The address a local device connects to."""
        return _connect_host(self.host)

    @property
    def service_host(self) -> str:
        """The address the server's own connections use."""
        return "127.0.0.1"

    async def start(self, logins: Iterable[tuple[str, str]]) -> None:
        """Write the configuration for these device logins, start Mosquitto and supervise it."""
        self._pick_port()
        self.service_port = free_port("127.0.0.1")
        self._dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._dir, 0o700)
        self._write_private(
            self._dir / "server.passwd",
            f"{SERVICE_USERNAME}:{mosquitto_hash(self.secret, SERVER_ITERATIONS)}\n",
        )
        self._write_private(
            self._dir / "server.acl", f"user {SERVICE_USERNAME}\ntopic readwrite {DEVICE_PREFIX}#\n"
        )
        self._write_private(self._dir / "devices.acl", render_acl_file())
        self._logins = tuple(logins)
        self._write_private(
            self._dir / "devices.passwd",
            render_device_passwords(self._logins, self.server_client_id),
        )
        self._write_private(self._dir / "mosquitto.conf", self._config())
        await self._launch()
        self._supervisor = asyncio.create_task(self._supervise(), name="private-mosquitto")

    def _config(self) -> str:
        """The configuration file's text."""
        assert self.port is not None
        assert self.service_port is not None
        # Started as root, Mosquitto would switch to a "mosquitto" user that cannot read our
        # private files: keep the user we run as.
        user_line = f"user {getpass.getuser()}" if os.geteuid() == 0 else ""
        return PRIVATE_MOSQUITTO_CONF.format(
            user_line=user_line,
            state_dir=self._dir,
            payload_limit=MAX_PAYLOAD_BYTES,
            packet_limit=MAX_PAYLOAD_BYTES + PACKET_OVERHEAD_BYTES,
            service_port=self.service_port,
            service_passwords=self._dir / "server.passwd",
            service_acl=self._dir / "server.acl",
            port=self.port,
            host=self.host,
            device_passwords=self._dir / "devices.passwd",
            device_acl=self._dir / "devices.acl",
        )

    @staticmethod
    def _write_private(path: Path, content: str) -> None:
        """Write a file only its owner reads, replacing it in one step."""
        _write_private(path, content)

    async def reload(self, logins: Iterable[tuple[str, str]]) -> bool:
        """Rewrite the device logins and have Mosquitto reload them (SIGHUP); False if unchanged.

        Mosquitto disconnects a connected device whose login is gone (a revoked device).
        """
        wanted = tuple(logins)
        if wanted == self._logins:
            return False
        self._logins = wanted
        self._write_private(
            self._dir / "devices.passwd", render_device_passwords(wanted, self.server_client_id)
        )
        self._send_reload()
        return True

    async def _launch(self) -> None:
        """Start the child and wait until both listeners accept connections."""
        assert self.port is not None
        assert self.service_port is not None
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            str(self._dir / "mosquitto.conf"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._process = process
        self._stderr_task = asyncio.create_task(self._relay_log(process), name="mosquitto-log")
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT_S
        for port in (self.service_port, self.port):
            while not await self._accepts(
                self.connect_host if port == self.port else "127.0.0.1", port
            ):
                if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                    await self._terminate(process)
                    raise BrokerStartError(f"Mosquitto did not start on port {self.port}")
                await asyncio.sleep(0.05)
        address = BrokerAddress(self.connect_host, self.port, process.pid, "mosquitto")
        (self.data_dir / STATE_FILE).write_text(address.to_json())

    @staticmethod
    async def _accepts(host: str, port: int) -> bool:
        """True when a TCP connection to ``host:port`` opens."""
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    @staticmethod
    async def _relay_log(process: asyncio.subprocess.Process) -> None:
        """Pass Mosquitto's own log lines to ours."""
        assert process.stderr is not None
        async for line in process.stderr:
            log.info("mosquitto: %s", line.decode("utf-8", "replace").rstrip())

    async def stop(self) -> None:
        """Stop supervising and stop the child: SIGTERM, then SIGKILL after five seconds."""
        await super().stop()
        relay, self._stderr_task = self._stderr_task, None
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
