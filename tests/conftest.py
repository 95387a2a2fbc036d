"""Shared fixtures: real databases (SQLite and PostgreSQL) and a real MQTT broker.

With ``CI=true`` a missing PostgreSQL or Mosquitto fails the run instead of skipping.
"""

from __future__ import annotations

import email
import email.policy
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode
from playwright.async_api import Browser, async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from server.db import create_engine, session_factory, upgrade_database
from server.settings import Settings

POSTGRES_ADMIN_DSN = os.environ.get(
    "VAKI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
MOSQUITTO_HOST = os.environ.get("VAKI_TEST_MOSQUITTO_HOST", "127.0.0.1")
MOSQUITTO_PORT = int(os.environ.get("VAKI_TEST_MOSQUITTO_PORT", "1883"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_service(what: str) -> None:
    """Fail in CI, skip elsewhere: a developer's laptop may not run every service."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not reachable")
    pytest.skip(f"{what} is not reachable")


def tcp_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    """The DSN of the PostgreSQL server used to create throwaway databases."""
    try:
        with psycopg.connect(POSTGRES_ADMIN_DSN, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        missing_service(f"PostgreSQL at {POSTGRES_ADMIN_DSN}")
    return POSTGRES_ADMIN_DSN


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"vaki_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(postgres_admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file for one test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'vaki.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated database."""
    engine = create_engine(database_url)
    await upgrade_database(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the migrated database."""
    return session_factory(engine)


@pytest.fixture(scope="session")
def mosquitto() -> tuple[str, int]:
    """The Mosquitto broker every development and CI machine runs."""
    if not tcp_open(MOSQUITTO_HOST, MOSQUITTO_PORT):
        missing_service(f"Mosquitto at {MOSQUITTO_HOST}:{MOSQUITTO_PORT}")
    return MOSQUITTO_HOST, MOSQUITTO_PORT


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Settings for an instance with its own data directory and SQLite file."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=sqlite_url,
        http_port=0,
        mqtt_embedded_port=0,
        mqtt_client_id=f"vaki-test-{uuid.uuid4().hex[:8]}",
        _env_file=None,
    )


class MqttProbe:
    """A plain paho client for tests: connect, subscribe, publish, collect messages."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    ) -> None:
        self.host, self.port = host, port
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_connect = lambda _c, _u, _f, reason, _p: self.connack.put(reason)
        self.client.on_subscribe = lambda _c, _u, _mid, reasons, _p: self.subacks.put(reasons)

    def connect(self, timeout: float = 10) -> ReasonCode:
        """Connect and return the broker's CONNACK reason (failure when it refuses)."""
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        try:
            return self.connack.get(timeout=timeout)
        except queue.Empty:
            self.client.loop_stop()
            raise

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 10) -> list[ReasonCode]:
        """Subscribe and return the granted reason codes."""
        self.client.subscribe(topic, qos)
        return self.subacks.get(timeout=timeout)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        """Publish and wait until the broker has it (QoS 1)."""
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def next_message(self, timeout: float = 10) -> paho.MQTTMessage:
        """The next message received, or queue.Empty."""
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


class PrivateMosquitto:
    """A Mosquitto process of a test's own, on a free port, with the config the test gives."""

    def __init__(self, directory: Path, extra_config: str = "") -> None:
        self.directory = directory
        self.port = free_port()
        self.extra_config = extra_config
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again on the same port) and wait until it accepts connections."""
        config = self.directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # As root, Mosquitto would switch to its own user, who cannot read pytest's dirs.
            + ("user root\n" if os.geteuid() == 0 else "")
            + f"persistence true\npersistence_location {self.directory}/\n"
            f"{self.extra_config}"
        )
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        for _ in range(100):
            if tcp_open("127.0.0.1", self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"mosquitto did not start: {(self.directory / 'mosquitto.log').read_text()}"
        )

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password and ACL files again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    """A Mosquitto of the test's own (anonymous unless the test configures it), stopped after."""
    if shutil.which("mosquitto") is None:
        missing_service("the mosquitto binary")
    broker = PrivateMosquitto(tmp_path)
    yield broker
    broker.stop()


class Mailbox:
    """An SMTP handler that keeps what it receives, or answers with a chosen error."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 OK queued as 1"

    def received(self) -> EmailMessage:
        """The only message received, parsed."""
        assert len(self.envelopes) == 1
        content = self.envelopes[0].content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on a free port, and the mailbox behind it."""
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


VAKI = str(Path(sys.executable).parent / "vaki")


def vaki_env(
    tmp_path: Path,
    *,
    database_url: str | None = None,
    mqtt_url: str | None = None,
    **settings: str,
) -> dict[str, str]:
    """The environment of a ``vaki`` subprocess: none of the caller's VAKI_ variables, its own
    data directory and MQTT client id, the embedded broker unless ``mqtt_url`` is given, and
    ``settings`` by name (``checkin_sweep_s="1"`` → ``VAKI_CHECKIN_SWEEP_S=1``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAKI_")}
    env["VAKI_DATA_DIR"] = str(tmp_path / "data")
    env["VAKI_MQTT_CLIENT_ID"] = f"vaki-test-{uuid.uuid4().hex[:8]}"
    if database_url is not None:
        env["VAKI_DATABASE_URL"] = database_url
    if mqtt_url is not None:
        env["VAKI_MQTT_URL"] = mqtt_url
    else:
        env["VAKI_MQTT_EMBEDDED_PORT"] = "0"
    env.update({f"VAKI_{name.upper()}": value for name, value in settings.items()})
    return env


class ServedVaki:
    """``vaki serve`` in a subprocess; can be killed with SIGKILL and started again."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = env
        self.tmp_path = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.tmp_path / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [VAKI, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=log,
            cwd=self.tmp_path,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError((self.tmp_path / "serve.log").read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    # A camera and a microphone for video calls, without asking.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by Playwright (``apt install chromium``)."""
    if not HAVE_CHROMIUM:
        missing_service(f"Chromium at {CHROMIUM} (apt install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def served_vaki(tmp_path: Path) -> Iterator[ServedVaki]:
    """``vaki serve`` on the embedded defaults (SQLite, embedded broker) in a subprocess."""
    env = vaki_env(tmp_path)
    server = ServedVaki(tmp_path, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
