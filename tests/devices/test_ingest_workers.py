"""Ingestion on every core: worker processes on an MQTT 5 shared subscription, on PostgreSQL.

Devices here follow docs/mqtt.md (an outbox, resent until acked), with the resend period
shortened from 30 s to 3 s so a test does not wait half a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from litestar.testing import AsyncTestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select, tuple_
from sqlmodel import col

import care
import devices
from server.app import create_app
from server.lifespans import open_database, open_ingestion
from server.runtime import Runtime
from server.settings import Settings

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

RESEND_S = 3.0


class OutboxDevice:
    """A device with an outbox: publishes readings and resends what is not acked."""

    def __init__(self, host: str, port: int, device_id: str, acks: queue.Queue[tuple[str, str]]):
        self.device_id = device_id
        self.topic = devices.device_topic(device_id, "reading")
        self.outbox: dict[str, float] = {}
        self.lock = threading.Lock()
        self.sequence = 0
        self._acks = acks
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=device_id)
        self.client.on_message = self._on_ack
        self.client.connect(host, port)
        self.client.subscribe(devices.device_topic(device_id, "ack"), 1)
        self.client.loop_start()

    def _on_ack(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        for message_id in json.loads(message.payload)["ids"]:
            with self.lock:
                self.outbox.pop(message_id, None)
            self._acks.put((self.device_id, message_id))

    def send(self) -> str:
        """Publish one new reading; return its id."""
        with self.lock:
            self.sequence += 1
            message_id = f"r-{self.sequence}"
            self.outbox[message_id] = time.monotonic()
        self._publish(message_id)
        return message_id

    def _publish(self, message_id: str) -> None:
        reading = {
            "id": message_id,
            "type": "blood_pressure",
            "values": {"systolic": 120, "diastolic": 80, "pulse": 66},
        }
        self.client.publish(self.topic, json.dumps(reading), qos=1)

    def resend_due(self) -> int:
        """Resend what waited longer than the resend period; return how many."""
        now = time.monotonic()
        with self.lock:
            due = [i for i, sent in self.outbox.items() if now - sent >= RESEND_S]
            for message_id in due:
                self.outbox[message_id] = now
        for message_id in due:
            self._publish(message_id)
        return len(due)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Cluster:
    runtime: Runtime
    fleet: list[OutboxDevice]
    acks: queue.Queue[tuple[str, str]]
    handed_on: Counter[tuple[str, str]]


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_url: str, mosquitto: tuple[str, int]
) -> AsyncIterator[Cluster]:
    host, port = mosquitto
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        mqtt_url=f"mqtt://{host}:{port}",
        mqtt_protocol="5",
        mqtt_client_id=f"vaki-test-{uuid.uuid4().hex[:8]}",
        mqtt_shared_group=f"test{uuid.uuid4().hex[:8]}",
        mqtt_session_expiry_s=60,
        ingest_workers=2,
        _env_file=None,
    )
    runtime = Runtime(settings=settings)
    handed_on: Counter[tuple[str, str]] = Counter()

    async def rules(batch: devices.IngestedBatch) -> None:
        # What the main process's subscribers (the rules) see of the workers' commits.
        assert runtime.engine is not None
        async with runtime.engine.connect() as connection:
            ids = await connection.execute(
                select(col(devices.Reading.device_id), col(devices.Reading.message_id)).where(
                    col(devices.Reading.id).in_([r.id for r in batch.readings])
                )
            )
            handed_on.update((d, m) for d, m in ids)

    runtime.batch_subscribers.append(rules)
    acks: queue.Queue[tuple[str, str]] = queue.Queue()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(open_database(runtime))
        assert runtime.sessions is not None
        ids = []
        async with runtime.sessions() as session:
            resident = care.Resident(full_name="Guðrún Ó.")
            session.add(resident)
            await session.flush()
            for _ in range(10):
                provisioned = await devices.provision_device(
                    session,
                    kind=devices.DeviceKind.BLOOD_PRESSURE_MONITOR,
                    resident_id=resident.id,
                    device_id=f"bp-{uuid.uuid4().hex[:10]}",
                )
                ids.append(provisioned.device.id)
            await session.commit()
        await stack.enter_async_context(open_ingestion(runtime))
        fleet = [OutboxDevice(host, port, device_id, acks) for device_id in ids]
        try:
            yield Cluster(runtime, fleet, acks, handed_on)
        finally:
            for device in fleet:
                device.close()


async def check_acks_after_commit(cluster: Cluster, seen: Counter[tuple[str, str]]) -> None:
    """Take the acks received so far; each acked reading must already be committed."""
    batch: list[tuple[str, str]] = []
    with contextlib.suppress(queue.Empty):
        while True:
            batch.append(cluster.acks.get_nowait())
    if not batch:
        return
    assert cluster.runtime.engine is not None
    async with cluster.runtime.engine.connect() as connection:
        stored = await connection.scalar(
            select(func.count()).where(
                tuple_(col(devices.Reading.device_id), col(devices.Reading.message_id)).in_(batch)
            )
        )
    assert stored == len(set(batch)), "a device got an ack for a reading not committed"
    seen.update(batch)


async def wait_for_outboxes(cluster: Cluster, seen: Counter[tuple[str, str]]) -> None:
    """Resend per the contract and check acks until every outbox is empty."""
    deadline = time.monotonic() + 90
    while any(device.outbox for device in cluster.fleet):
        assert time.monotonic() < deadline, "readings still unacked after 90 s"
        for device in cluster.fleet:
            device.resend_due()
        await check_acks_after_commit(cluster, seen)
        await asyncio.sleep(0.1)
    await check_acks_after_commit(cluster, seen)


async def stored_readings(cluster: Cluster) -> Counter[tuple[str, str]]:
    assert cluster.runtime.engine is not None
    async with cluster.runtime.engine.connect() as connection:
        rows = await connection.execute(
            select(col(devices.Reading.device_id), col(devices.Reading.message_id)).where(
                col(devices.Reading.device_id).in_([d.device_id for d in cluster.fleet])
            )
        )
    return Counter((d, m) for d, m in rows)


async def test_workers_commit_every_reading_once_and_ack_it_after_the_commit(
    cluster: Cluster,
) -> None:
    workers = cluster.runtime.ingest_workers
    assert workers is not None
    assert workers.alive == 2
    sent = {(device.device_id, device.send()) for _ in range(40) for device in cluster.fleet}
    seen: Counter[tuple[str, str]] = Counter()
    await wait_for_outboxes(cluster, seen)

    stored = await stored_readings(cluster)
    assert set(stored) == sent
    assert max(stored.values()) == 1
    assert set(seen) == sent
    # Nothing waited long enough to be resent, so each reading was acked exactly once.
    assert max(seen.values()) == 1
    # The main process does not take readings itself: every one came from a worker, over
    # the pipe, to the main process's subscribers (the rules), once.
    assert cluster.runtime.mqtt is not None
    # (its own readiness probe aside, which is not a device's reading).
    taken = [t for t, _ in cluster.runtime.mqtt.subscriptions if t.endswith("/reading")]
    assert not [t for t in taken if not devices.is_probe_topic(t)]
    assert cluster.handed_on == Counter(sent)


async def test_a_killed_worker_is_restarted_and_no_reading_is_lost(cluster: Cluster) -> None:
    workers = cluster.runtime.ingest_workers
    assert workers is not None
    victim = workers.pids()[0]
    assert victim is not None
    sent: set[tuple[str, str]] = set()
    seen: Counter[tuple[str, str]] = Counter()
    started = time.monotonic()
    killed = False
    while time.monotonic() - started < 6:
        for device in cluster.fleet:
            sent.add((device.device_id, device.send()))
        if not killed and time.monotonic() - started > 2:
            os.kill(victim, signal.SIGKILL)
            killed = True
        for device in cluster.fleet:
            device.resend_due()
        await check_acks_after_commit(cluster, seen)
        await asyncio.sleep(0.02)

    deadline = time.monotonic() + 60
    while not (workers.restarts == 1 and workers.alive == 2):
        assert time.monotonic() < deadline, "the killed worker was not started again"
        await asyncio.sleep(0.1)
    assert workers.pids()[0] != victim
    await wait_for_outboxes(cluster, seen)

    stored = await stored_readings(cluster)
    assert set(stored) == sent
    assert max(stored.values()) == 1
    assert set(seen) == sent


async def test_readyz_counts_the_workers_alive(
    tmp_path: Path, postgres_url: str, mosquitto: tuple[str, int]
) -> None:
    host, port = mosquitto
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=postgres_url,
        http_port=0,
        mqtt_url=f"mqtt://{host}:{port}",
        mqtt_protocol="5",
        mqtt_client_id=f"vaki-test-{uuid.uuid4().hex[:8]}",
        mqtt_shared_group=f"test{uuid.uuid4().hex[:8]}",
        mqtt_session_expiry_s=60,
        ingest_workers=2,
        _env_file=None,
    )
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        ready = (await client.get("/readyz")).json()["checks"]["ingest_workers"]
        assert ready == {"ok": True, "alive": 2, "wanted": 2, "restarts": 0}
        runtime: Runtime = app.state.runtime
        assert runtime.ingest_workers is not None
        victim = runtime.ingest_workers.pids()[1]
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        saw_down = False
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the killed worker was not started again"
            response = await client.get("/readyz")
            check = response.json()["checks"]["ingest_workers"]
            if check["alive"] < 2:
                saw_down = True
                assert response.status_code == 503
                assert check["ok"] is False
            if check["restarts"] == 1 and check["alive"] == 2:
                break
            await asyncio.sleep(0.05)
        assert saw_down
