"""``vaki bench ingest``: readings committed per second end to end, against a bare subscriber.

Two phases with the same publisher processes and the same broker:

1. baseline: a bare paho subscriber (QoS 1, auto-ack) counts what the broker delivers;
2. Vaki: the real ingestion (MQTT link, validation, batched commits, acks after commit)
   while each virtual device keeps a window of unacknowledged readings, as firmware with an
   outbox does; publish → ack latency is measured per reading by the publishers.

The ratio of the two rates holds on a noisy machine because both run in the same process
setup, one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.queues import Queue as ProcessQueue
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlmodel import col

import care
import devices
from server.errors import StartupError
from server.lifespans import (
    open_broker,
    open_database,
    open_ingestion,
    refresh_broker_logins,
)
from server.runtime import Runtime
from server.settings import Settings

_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class BenchConfig:
    """What one run does."""

    seconds: float
    devices: int
    publishers: int
    window: int
    batch: int = 1
    # Ingest worker processes on a shared subscription (0: the main process ingests).
    workers: int = 0


@dataclass(frozen=True)
class Target:
    """Where publishers connect."""

    host: str
    port: int
    protocol: str


@dataclass(frozen=True)
class PublisherJob:
    """What one publisher process does."""

    target: Target
    credentials: list[tuple[str, str]]
    seconds: float
    window: int
    start_at: float
    batch: int


@dataclass(frozen=True)
class PublisherReport:
    """What one publisher process saw."""

    published: int
    acked: int
    latencies_ms: list[float]
    first_publish: float
    last_ack: float


def _reading(message_id: str, sequence: int) -> dict[str, Any]:
    """One plausible blood-pressure reading."""
    values = {"systolic": 110 + sequence % 50, "diastolic": 70 + sequence % 25, "pulse": 64}
    return {"id": message_id, "type": "blood_pressure", "values": values}


def _payload(ids: list[str], sequence: int) -> bytes:
    """One reading, or a batch of them as a home hub sends."""
    if len(ids) == 1:
        return json.dumps(_reading(ids[0], sequence)).encode()
    return json.dumps({"batch": [_reading(i, sequence + n) for n, i in enumerate(ids)]}).encode()


def _connect(target: Target, client_id: str, username: str, password: str) -> paho.Client:
    """A connected paho client with its network thread running."""
    version = paho.MQTTv5 if target.protocol == "5" else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
    client.username_pw_set(username, password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(target.host, target.port, keepalive=60)
    client.loop_start()
    return client


class _Device:
    """One virtual device of a publisher: its window of readings waiting for an ack."""

    def __init__(self, target: Target, device_id: str, password: str, run: str) -> None:
        self.device_id = device_id
        self.run = run
        self.sequence = 0
        self.inflight: dict[str, float] = {}
        self.latencies: list[float] = []
        self.acked = 0
        self.last_ack = 0.0
        self.lock = threading.Lock()
        self.client = _connect(target, device_id, device_id, password)
        self.client.on_message = self._on_ack
        self.client.subscribe(devices.device_topic(device_id, "ack"), 1)
        self.topic = devices.device_topic(device_id, "reading")

    def _on_ack(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        """Record the latency of every newly acked id (paho's thread)."""
        now = time.perf_counter()
        with self.lock:
            for message_id in json.loads(message.payload)["ids"]:
                sent = self.inflight.pop(message_id, None)
                if sent is not None:
                    self.latencies.append((now - sent) * 1000)
                    self.acked += 1
                    self.last_ack = now

    def top_up(self, window: int, batch: int) -> int:
        """Publish until ``window`` readings wait for an ack; return how many were sent."""
        sent = 0
        while True:
            with self.lock:
                if len(self.inflight) >= window:
                    return sent
                ids = [f"{self.run}-{self.sequence + n}" for n in range(1, batch + 1)]
                self.sequence += batch
                now = time.perf_counter()
                for message_id in ids:
                    self.inflight[message_id] = now
            self.client.publish(self.topic, _payload(ids, self.sequence), qos=1)
            sent += batch


def _closed_loop_publisher(job: PublisherJob, results: ProcessQueue[PublisherReport]) -> None:
    """Keep every device's window full for ``seconds``, then wait for the last acks."""
    run = uuid.uuid4().hex[:8]
    fleet = [
        _Device(job.target, device_id, password, run) for device_id, password in job.credentials
    ]
    while time.time() < job.start_at:
        time.sleep(0.01)
    first = time.perf_counter()
    deadline = first + job.seconds
    published = 0
    while time.perf_counter() < deadline:
        sent = sum(device.top_up(job.window, job.batch) for device in fleet)
        published += sent
        if not sent:
            time.sleep(0.0005)
    settle = time.perf_counter() + 15
    while time.perf_counter() < settle and any(device.inflight for device in fleet):
        time.sleep(0.01)
    for device in fleet:
        device.client.disconnect()
        device.client.loop_stop()
    results.put(
        PublisherReport(
            published=published,
            acked=sum(device.acked for device in fleet),
            latencies_ms=[lat for device in fleet for lat in device.latencies],
            first_publish=first,
            last_ack=max((device.last_ack for device in fleet), default=first),
        )
    )


def _open_loop_publisher(job: PublisherJob, results: ProcessQueue[PublisherReport]) -> None:
    """Publish QoS 1 as fast as the broker PUBACKs (``window`` in flight per device)."""
    clients = [_connect(job.target, d, d, p) for d, p in job.credentials]
    topics = [devices.device_topic(d, "reading") for d, _ in job.credentials]
    pending: list[list[paho.MQTTMessageInfo]] = [[] for _ in clients]
    while time.time() < job.start_at:
        time.sleep(0.01)
    first = time.perf_counter()
    deadline = first + job.seconds
    published = 0
    while time.perf_counter() < deadline:
        for index, client in enumerate(clients):
            waiting = pending[index]
            while waiting and waiting[0].is_published():
                waiting.pop(0)
            while len(waiting) < job.window:
                ids = [f"bare-{published + n}" for n in range(job.batch)]
                published += job.batch
                waiting.append(client.publish(topics[index], _payload(ids, published), qos=1))
        time.sleep(0.0005)
    for client in clients:
        client.disconnect()
        client.loop_stop()
    results.put(PublisherReport(published, 0, [], first, time.perf_counter()))


def _run_publishers(
    mode: str, target: Target, credentials: list[tuple[str, str]], config: BenchConfig
) -> list[PublisherReport]:
    """Start the publisher processes together and collect their reports."""
    results: ProcessQueue[PublisherReport] = _SPAWN.Queue()
    function = _closed_loop_publisher if mode == "closed" else _open_loop_publisher
    start_at = time.time() + 2.0 + 0.05 * len(credentials)
    shares = [credentials[i :: config.publishers] for i in range(config.publishers)]
    processes = [
        _SPAWN.Process(
            target=function,
            args=(
                PublisherJob(target, share, config.seconds, config.window, start_at, config.batch),
                results,
            ),
            daemon=True,
        )
        for share in shares
        if share
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=config.seconds + 120) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    return reports


def _bare_subscriber_rate(
    target: Target,
    service: Target,
    login: tuple[str, str],
    credentials: list[tuple[str, str]],
    config: BenchConfig,
) -> float:
    """Messages per second a plain paho subscriber receives from the same publishers."""
    received: list[float] = []
    client = _connect(service, f"bench-bare-{uuid.uuid4().hex[:6]}", *login)
    client.on_message = lambda _c, _u, _m: received.append(time.perf_counter())
    client.subscribe(f"{devices.device_topic('+', 'reading')}", 1)
    time.sleep(0.5)
    _run_publishers("open", target, credentials, config)
    # Take what the broker still holds, so none of it spills into the next phase.
    settle = time.perf_counter() + 120
    while time.perf_counter() < settle:
        before = len(received)
        time.sleep(2.0)
        if len(received) == before:
            break
    client.disconnect()
    client.loop_stop()
    if len(received) < 2:
        return 0.0
    return (len(received) - 1) * config.batch / (received[-1] - received[0])


async def _provision(runtime: Runtime, count: int) -> list[tuple[str, str]]:
    """Devices for the run, with their secrets."""
    assert runtime.sessions is not None
    credentials = []
    async with runtime.sessions() as session:
        resident = care.Resident(full_name="Benchmark Resident")
        session.add(resident)
        await session.flush()
        for _ in range(count):
            provisioned = await devices.provision_device(
                session, kind=devices.DeviceKind.BLOOD_PRESSURE_MONITOR, resident_id=resident.id
            )
            credentials.append((provisioned.device.id, provisioned.secret))
        await session.commit()
    return credentials


async def _count_rows(runtime: Runtime, device_ids: list[str]) -> tuple[int, int]:
    """(rows, distinct (device, message id)) stored for the run's devices."""
    assert runtime.engine is not None
    device_id, message_id = col(devices.Reading.device_id), col(devices.Reading.message_id)
    # Only the measured phase's readings (the baseline phase's are never acked or counted).
    ours = device_id.in_(device_ids) & ~message_id.startswith("bare-")
    async with runtime.engine.connect() as connection:
        rows = await connection.scalar(select(func.count()).where(ours))
        distinct = await connection.scalar(
            select(func.count()).select_from(
                select(device_id, message_id).where(ours).distinct().subquery()
            )
        )
    return int(rows or 0), int(distinct or 0)


def _percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_ingest_bench(settings: Settings, config: BenchConfig) -> dict[str, Any]:
    """Run both phases and return the figures."""
    if config.workers:
        if settings.uses_embedded_broker:
            raise StartupError("--workers needs an MQTT 5 broker: use --broker mosquitto")
        settings = settings.model_copy(
            update={"ingest_workers": config.workers, "mqtt_protocol": "5"}
        )
    runtime = Runtime(settings=settings)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(open_database(runtime))
        await stack.enter_async_context(open_broker(runtime))
        credentials = await _provision(runtime, config.devices)
        await refresh_broker_logins(runtime)
        if runtime.broker is not None:
            broker = runtime.broker
            assert broker.port is not None
            assert broker.service_port is not None
            target = Target(broker.connect_host, broker.port, broker.protocol)
            # The server's login: on the private Mosquitto it has a listener of its own.
            service = Target(broker.service_host, broker.service_port, broker.protocol)
            login = (devices.SERVICE_USERNAME, broker.secret)
            broker_name = broker.name
        else:
            assert settings.mqtt_url is not None
            endpoint = devices.MqttEndpoint.from_url(settings.mqtt_url)
            target = Target(
                endpoint.host, endpoint.port, "5" if settings.mqtt_protocol != "3.1.1" else "3.1.1"
            )
            service = target
            login = (endpoint.username or "", endpoint.password or "")
            broker_name = endpoint.describe()

        bare_rate = await asyncio.to_thread(
            _bare_subscriber_rate, target, service, login, credentials, config
        )

        await stack.enter_async_context(open_ingestion(runtime))
        if runtime.ingest_workers is not None:
            # Readings sent before a worker has joined the shared group would go nowhere.
            await runtime.ingest_workers.wait_ready(within_s=120)
        reports = await asyncio.to_thread(_run_publishers, "closed", target, credentials, config)
        assert runtime.ingestor is not None
        with contextlib.suppress(TimeoutError):
            await runtime.ingestor.drain(within_s=30)
        rows, distinct = await _count_rows(runtime, [device_id for device_id, _ in credentials])

    published = sum(r.published for r in reports)
    acked = sum(r.acked for r in reports)
    latencies = [lat for r in reports for lat in r.latencies_ms]
    span = max(r.last_ack for r in reports) - min(r.first_publish for r in reports)
    committed_per_s = acked / span if span > 0 else 0.0
    return {
        "broker": broker_name,
        "database": runtime.settings.effective_database_url.split(":", 1)[0].split("+")[0],
        "seconds": config.seconds,
        "devices": config.devices,
        "publishers": config.publishers,
        "ingest_workers": config.workers,
        "window": config.window,
        "readings_per_message": config.batch,
        "published": published,
        "acked": acked,
        "stored_rows": rows,
        "committed_per_s": round(committed_per_s, 1),
        "bare_subscriber_per_s": round(bare_rate, 1),
        "ratio": round(committed_per_s / bare_rate, 3) if bare_rate else None,
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else 0.0,
        "lost": published - distinct,
        "duplicates": rows - distinct,
    }


# Mosquitto as Vaki wants it: room for a whole batch of unacked messages per subscriber, and
# a deep queue so the broker holds a backlog instead of dropping it.
TUNED_MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
max_inflight_messages 1000
max_queued_messages 100000
"""


@contextlib.contextmanager
def tuned_mosquitto(scratch: Path) -> Iterator[str]:
    """A private Mosquitto with Vaki's recommended limits; yields its URL."""
    executable = shutil.which("mosquitto")
    if executable is None:
        raise StartupError("the mosquitto binary is not installed (apt install mosquitto)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = scratch / "mosquitto.conf"
    config.write_text(TUNED_MOSQUITTO_CONF.format(port=port))
    process = subprocess.Popen(  # noqa: S603 (our own config file, the installed binary)
        [executable, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def bench_settings(settings: Settings, database_url: str | None) -> tuple[Settings, Path]:
    """The settings of a run: a throwaway data directory and, unless given, SQLite in it."""
    scratch = Path(tempfile.mkdtemp(prefix="vaki-bench-"))
    updated = settings.model_copy(
        update={
            "data_dir": scratch,
            "database_url": Settings(database_url=database_url, _env_file=None).database_url
            if database_url
            else f"sqlite+aiosqlite:///{scratch / 'bench.db'}",
            "mqtt_client_id": f"vaki-bench-{uuid.uuid4().hex[:6]}",
            "mqtt_embedded_port": 0,
            "mqtt_session_expiry_s": 60,
        }
    )
    return updated, scratch
