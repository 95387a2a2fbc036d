"""Ingestion on every core: worker processes sharing the reading lane over MQTT 5.

Each worker is a process of its own with its own MQTT client (a stable client id per
worker, so a restarted worker resumes its session and the broker redelivers what it held),
its own database engine and its own ``Ingestor``: it commits readings and acks them to the
broker and to the devices after the commit, exactly as the single-process path does. The
readings reach the workers through one MQTT 5 shared subscription, so the broker spreads
them; status, raw payloads and the alarm lane stay in the main process.

What a worker commits is handed back to the main process over a pipe, so the rules see
every reading as before. The pipe is bounded by the operating system: a main process that
falls behind holds the worker's writer, whose full queue holds paho, whose unacked
messages hold the broker.

The main process watches the workers: one that dies is logged and started again, and
``/readyz`` says how many are alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from devices import (
    InboundMessage,
    IngestedBatch,
    Ingestor,
    MqttEndpoint,
    MqttLink,
    ingest_subscriptions,
    is_probe_topic,
)
from server.db import create_engine
from server.logging import configure_logging
from server.settings import Settings

log = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")
READING_CHANNELS = ("reading",)
# The shared group the workers join when VAKI_MQTT_SHARED_GROUP is not set.
DEFAULT_GROUP = "vaki-ingest"
_READY = "ready"
_RESTART_DELAY_S = 1.0


def worker_client_id(settings: Settings, index: int) -> str:
    """The stable client id of worker ``index`` (its broker session)."""
    return f"{settings.mqtt_client_id}-ingest-{index}"


def _worker_main(settings: Settings, index: int, pipe: Connection) -> None:
    """A worker process: ingest readings until SIGTERM."""
    configure_logging(settings)
    asyncio.run(_run_worker(settings, index, pipe))


async def _run_worker(settings: Settings, index: int, pipe: Connection) -> None:
    """Connect, ingest, hand committed batches to the main process; stop on SIGTERM."""
    assert settings.mqtt_url is not None
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    engine = create_engine(settings.effective_database_url)
    link: MqttLink | None = None

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if link is not None:
            link.publish(topic, payload, qos=qos, retain=retain)

    def ack(message: Any) -> None:
        if link is not None:
            link.ack(message)

    ingestor = Ingestor(engine, ack=ack, publish=publish)

    async def hand_on(batch: IngestedBatch) -> None:
        # A blocking send: a main process that falls behind slows this writer down.
        await asyncio.to_thread(pipe.send, batch)

    ingestor.subscribe(hand_on)

    def on_message(message: InboundMessage) -> None:
        """A server's readiness probe is acked and never ingested."""
        if is_probe_topic(message.topic):
            ack(message)
            return
        ingestor.submit(message)

    link = MqttLink(
        MqttEndpoint.from_url(settings.mqtt_url),
        client_id=worker_client_id(settings, index),
        protocol="5",
        subscriptions=ingest_subscriptions(
            settings.mqtt_shared_group or DEFAULT_GROUP, READING_CHANNELS
        ),
        on_message=on_message,
        admit=ingestor.admit,
        # A shared member: a dead worker's share must move on within seconds.
        session_expiry_s=settings.mqtt_shared_session_expiry_s,
    )
    ingestor.start()
    try:
        await link.start(wait_s=30)
        # Ready only once connected (and so subscribed): the main process waits for it.
        while not link.connected and not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.2)
        if link.connected:
            await asyncio.to_thread(pipe.send, _READY)
            log.info("ingest worker %s running", index)
        await stopping.wait()
    finally:
        with contextlib.suppress(TimeoutError):
            await ingestor.drain(within_s=5)
        await link.stop()
        await ingestor.stop()
        await engine.dispose()
        pipe.close()


Dispatch = Callable[[IngestedBatch], Coroutine[Any, Any, None]]


class _Worker:
    """One worker process as the main process sees it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.ready = threading.Event()
        self.reader: threading.Thread | None = None


class IngestWorkers:
    """Starts ``count`` worker processes and keeps them running."""

    def __init__(self, settings: Settings, count: int, dispatch: Dispatch) -> None:
        """``dispatch`` runs on the main loop with every batch a worker committed."""
        self.settings = settings
        self.count = count
        self._dispatch = dispatch
        self._workers = [_Worker(index) for index in range(count)]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def alive(self) -> int:
        """How many workers are running."""
        return sum(1 for w in self._workers if w.process is not None and w.process.is_alive())

    def pids(self) -> list[int | None]:
        """The workers' process ids, by index."""
        return [w.process.pid if w.process is not None else None for w in self._workers]

    async def start(self, ready_within_s: float = 30.0) -> None:
        """Start every worker and wait until each is connected to the broker."""
        self._loop = asyncio.get_running_loop()
        for worker in self._workers:
            self._spawn(worker)
        await self.wait_ready(ready_within_s)
        self._watcher = asyncio.create_task(self._watch(), name="ingest-workers")

    async def wait_ready(self, within_s: float) -> None:
        """Wait until every worker said it is connected (or the time is up)."""
        deadline = time.monotonic() + within_s
        for worker in self._workers:
            left = max(0.0, deadline - time.monotonic())
            if not await asyncio.to_thread(worker.ready.wait, left):
                log.warning("ingest worker %s is not connected yet", worker.index)

    def _spawn(self, worker: _Worker) -> None:
        """Start (or start again) one worker process and the thread reading its pipe."""
        receiving, sending = _SPAWN.Pipe(duplex=False)
        process = _SPAWN.Process(
            target=_worker_main,
            args=(self.settings, worker.index, sending),
            name=f"vaki-ingest-{worker.index}",
            daemon=True,
        )
        worker.ready.clear()
        process.start()
        sending.close()
        worker.process = process
        worker.reader = threading.Thread(
            target=self._read, args=(worker, receiving), name=f"ingest-pipe-{worker.index}"
        )
        worker.reader.daemon = True
        worker.reader.start()

    def _read(self, worker: _Worker, pipe: Connection) -> None:
        """On a thread: hand each committed batch to the main loop and wait for it."""
        assert self._loop is not None
        while True:
            try:
                item = pipe.recv()
            except (EOFError, OSError):
                pipe.close()
                return
            if item == _READY:
                worker.ready.set()
                continue
            try:
                future = asyncio.run_coroutine_threadsafe(self._dispatch(item), self._loop)
            except RuntimeError:  # the main loop is closed: the service is stopping
                pipe.close()
                return
            try:
                future.result()
            except Exception:
                log.exception("handling a batch from ingest worker %s failed", worker.index)

    async def _watch(self) -> None:
        """Start again every worker that died, and say so."""
        while True:
            await asyncio.sleep(0.5)
            for worker in self._workers:
                process = worker.process
                if process is None or process.is_alive():
                    continue
                log.error(
                    "ingest worker %s (pid %s) died with exit code %s; starting it again",
                    worker.index,
                    process.pid,
                    process.exitcode,
                )
                await asyncio.sleep(_RESTART_DELAY_S)
                self.restarts += 1
                self._spawn(worker)

    async def stop(self) -> None:
        """Stop the workers: SIGTERM, then what still runs after 10 s is killed."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for worker in self._workers:
            if worker.process is not None and worker.process.is_alive():
                worker.process.terminate()
        for worker in self._workers:
            if worker.process is not None:
                await asyncio.to_thread(worker.process.join, 10)
                if worker.process.is_alive():
                    worker.process.kill()
                    await asyncio.to_thread(worker.process.join, 5)
