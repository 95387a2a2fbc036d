"""``vaki bench video``: how many relayed 1:1 calls one instance carries, and call setup time.

The server is the real app (uvicorn, the signalling socket, the relay) in this process.
Participants are virtual (aiortc, 640×480 30 fps video + Opus) in separate client processes,
so their own work is not counted: the server's CPU is read from ``getrusage`` of this
process alone. Calls are added until the frame rate the participants receive falls below
95 % of what they send. The baseline, measured in the same run, is one call through aiortc's
stock path (every frame decoded and encoded again per receiver).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import queue
import resource
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue as ProcessQueue
from typing import Any

import uvicorn
from litestar import Litestar

import video
from server.app import create_app
from server.settings import Settings
from server.video_lifespan import VIDEO_STATE_KEY, video_config

_SPAWN = multiprocessing.get_context("spawn")
SENT_FPS = 30.0
DELIVERY_FLOOR = 0.95


@dataclass(frozen=True)
class VideoBenchConfig:
    """What one run does."""

    quick: bool
    max_calls: int
    step: int
    window_s: float
    client_processes: int


def _cpu_seconds() -> float:
    """CPU time (user + system) this process used so far, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- client processes ---------------------------------------------------------------------


class _ClientCalls:
    """The calls one client process runs, and what their participants received."""

    def __init__(self) -> None:
        self.video_frames, self.audio_frames = video.encode_video_loop(), video.encode_audio_loop()
        self.calls: dict[int, list[Any]] = {}
        self.lines: list[Any] = []
        self.setups: list[float] = []
        self.counted: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def join(self, participant: Any, url: str) -> None:
        """Connect to the room's signalling and negotiate with the relay."""
        import websockets

        line = await websockets.connect(url)
        self.lines.append(line)
        await line.send(json.dumps({"type": "offer", "sdp": await participant.offer()}))
        while True:
            message = json.loads(await line.recv())
            if message["type"] == "answer":
                await participant.accept(message["sdp"])
                return

    async def call(self, call_id: int, url_a: str, url_b: str) -> None:
        """Two participants call each other; note each one's offer → first picture."""
        pair = [
            video.VirtualParticipant(
                encoded=True, video_frames=self.video_frames, audio_frames=self.audio_frames
            )
            for _ in range(2)
        ]
        self.calls[call_id] = pair
        await asyncio.gather(self.join(pair[0], url_a), self.join(pair[1], url_b))
        deadline = time.monotonic() + 20
        for participant in pair:
            while not any(r.first_picture_at for r in participant.video_received()):
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.01)
            first = min(
                r.first_picture_at for r in participant.video_received() if r.first_picture_at
            )
            assert participant.offered_at is not None
            self.setups.append((first - participant.offered_at) * 1000)

    def start(self, call_id: int, url_a: str, url_b: str) -> None:
        """Start a call in the background."""
        task = asyncio.create_task(self.call(call_id, url_a, url_b))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def report(self) -> dict[str, Any]:
        """Video frames received per participant since the last report, and new setups."""
        frames: dict[str, int] = {}
        for call_id, pair in self.calls.items():
            for index, participant in enumerate(pair):
                key = f"{call_id}:{index}"
                total = sum(r.frames for r in participant.video_received())
                frames[key] = total - self.counted.get(key, 0)
                self.counted[key] = total
        setups, self.setups = self.setups, []
        return {"frames": frames, "setups": setups}

    async def hang_up(self) -> None:
        """End every call."""
        for task in list(self.tasks):
            task.cancel()
        for pair in self.calls.values():
            for participant in pair:
                await participant.close()
        for line in self.lines:
            with contextlib.suppress(Exception):
                await line.close()
        self.calls.clear()
        self.lines.clear()
        self.counted.clear()
        self.setups.clear()


async def _client_main(commands: ProcessQueue[Any], replies: ProcessQueue[Any]) -> None:
    """Run calls as told: ``call``, ``report``, ``hangup``, ``stop``."""
    calls = _ClientCalls()
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, commands.get)
        if command[0] == "call":
            calls.start(command[1], command[2], command[3])
        elif command[0] == "report":
            replies.put(calls.report())
        else:
            await calls.hang_up()
            replies.put({"hung_up": True})
            if command[0] == "stop":
                return


def _client_process(commands: ProcessQueue[Any], replies: ProcessQueue[Any]) -> None:
    """Entry point of a client process."""
    asyncio.run(_client_main(commands, replies))


class _Clients:
    """The client processes and their queues."""

    def __init__(self, count: int) -> None:
        self.commands: list[ProcessQueue[Any]] = [_SPAWN.Queue() for _ in range(count)]
        self.replies: list[ProcessQueue[Any]] = [_SPAWN.Queue() for _ in range(count)]
        self.processes = [
            _SPAWN.Process(target=_client_process, args=(c, r), daemon=True)
            for c, r in zip(self.commands, self.replies, strict=True)
        ]
        for process in self.processes:
            process.start()

    def call(self, call_id: int, url_a: str, url_b: str) -> None:
        """Start a call in one of the processes."""
        self.commands[call_id % len(self.commands)].put(("call", call_id, url_a, url_b))

    async def report(self) -> tuple[dict[str, int], list[float]]:
        """Frames received per participant since the last report, and new setup times."""
        for commands in self.commands:
            commands.put(("report",))
        frames: dict[str, int] = {}
        setups: list[float] = []
        for replies in self.replies:
            reply = await asyncio.to_thread(replies.get, True, 30)
            frames.update(reply["frames"])
            setups.extend(reply["setups"])
        return frames, setups

    async def hang_up(self, command: str = "hangup") -> None:
        """Hang up every call (and end the processes with ``stop``)."""
        for commands in self.commands:
            commands.put((command,))
        for replies in self.replies:
            with contextlib.suppress(queue.Empty):
                await asyncio.to_thread(replies.get, True, 30)

    async def stop(self) -> None:
        """Hang up every call and end the processes."""
        await self.hang_up("stop")
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


# -- the run ------------------------------------------------------------------------------


async def _serve(settings: Settings, service: video.VideoService) -> tuple[uvicorn.Server, Any]:
    """The app on a free port with the given video service; returns the server and its task."""
    app = create_app(settings)
    app.state[VIDEO_STATE_KEY] = service
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the app did not start")
        await asyncio.sleep(0.05)
    return server, task


def _percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def _measure(
    clients: _Clients, seconds: float, calls: int
) -> tuple[float, float, list[float]]:
    """(delivered share of sent frames, server CPU % of one core, setups) over a window."""
    _, setups = await clients.report()
    cpu, wall = _cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    frames, more = await clients.report()
    cpu_pct = (_cpu_seconds() - cpu) / (time.monotonic() - wall) * 100
    elapsed = time.monotonic() - wall
    expected = [f"{c}:{i}" for c in range(calls) for i in range(2)]
    received = sum(frames.get(key, 0) for key in expected)
    return received / (len(expected) * elapsed * SENT_FPS), cpu_pct, setups + more


def _service(settings: Settings, *, forward_encoded: bool) -> video.VideoService:
    """A video service for one phase (no call records: the benchmark has no consultations)."""
    base = video_config(settings)
    return video.VideoService(
        video.VideoConfig(
            secret=base.secret,
            max_participants=2,
            quality_interval_s=3600,
            forward_encoded=forward_encoded,
        ),
        lambda: None,
    )


async def _phase(
    settings: Settings,
    config: VideoBenchConfig,
    server: uvicorn.Server,
    clients: _Clients,
    *,
    forward_encoded: bool,
    limit: int,
) -> dict[str, Any]:
    """Add calls until delivery drops (or ``limit``); the figures of the last good level."""
    service = _service(settings, forward_encoded=forward_encoded)
    await service.start()
    app = server.config.app
    assert isinstance(app, Litestar)
    app.state[VIDEO_STATE_KEY] = service
    signal = f"ws://127.0.0.1:{settings.http_port}/api/video/rooms"
    good: dict[str, Any] = {"calls": 0, "cpu_pct": 0.0, "delivered": 0.0}
    setups: list[float] = []
    all_setups: list[float] = []
    levels: list[dict[str, Any]] = []
    try:
        calls = 0
        while calls < limit:
            target = min(limit, calls + config.step if calls else 1)
            for call_id in range(calls, target):
                urls = [
                    f"{signal}/{call_id + 1}/signal?token="
                    + service.room_token(call_id + 1, f"staff:{call_id * 2 + n + 1}")["token"]
                    for n in range(2)
                ]
                clients.call(call_id, urls[0], urls[1])
                await asyncio.sleep(0.1)
            calls = target
            await asyncio.sleep(1.5)  # let the new calls set up and settle
            delivered, cpu_pct, new_setups = await _measure(clients, config.window_s, calls)
            all_setups.extend(new_setups)
            levels.append(
                {
                    "calls": calls,
                    "delivered_pct": round(delivered * 100, 1),
                    "cpu_pct": round(cpu_pct, 1),
                }
            )
            print(  # noqa: T201 - progress for the person running the benchmark
                f"  {'relay' if forward_encoded else 'stock'}: {calls} calls, "
                f"delivered {delivered * 100:.1f} % of sent frames, server CPU {cpu_pct:.0f} %",
                file=sys.stderr,
                flush=True,
            )
            if delivered < DELIVERY_FLOOR:
                break
            good = {"calls": calls, "cpu_pct": cpu_pct, "delivered": delivered}
            setups.extend(new_setups)  # calls set up while the instance kept up
    finally:
        await clients.hang_up()
        await service.close()
    streams = max(good["calls"] * 2, 1)
    return {
        "max_calls": good["calls"],
        "cpu_pct": good["cpu_pct"],
        "cpu_per_stream_pct": good["cpu_pct"] / streams if good["calls"] else None,
        "setups": setups,
        "all_setups": all_setups,
        "levels": levels,
    }


async def measure_relay(settings: Settings, config: VideoBenchConfig) -> dict[str, Any]:
    """The whole benchmark: the stock baseline for one call, then the relay ramp."""
    server, task = await _serve(settings, _service(settings, forward_encoded=True))
    clients = _Clients(config.client_processes)
    try:
        stock = await _phase(settings, config, server, clients, forward_encoded=False, limit=1)
        relay = await _phase(
            settings, config, server, clients, forward_encoded=True, limit=config.max_calls
        )
    finally:
        await clients.stop()
        server.should_exit = True
        await task
    setups = relay["setups"]
    per_stream = relay["cpu_per_stream_pct"]
    stock_per_stream = stock["cpu_per_stream_pct"]
    cores = os.cpu_count() or 1
    return {
        "mode": "relay",
        "max_relayed_calls": relay["max_calls"],
        "limit_reached": relay["max_calls"] >= config.max_calls,
        "cpu_per_stream_pct": round(per_stream, 2) if per_stream else None,
        "server_cpu_pct_at_max": round(relay["cpu_pct"], 1),
        "setup_p50_ms": round(statistics.median(setups), 1) if relay["setups"] else None,
        "setup_p99_ms": round(_percentile(setups, 0.99), 1) if relay["setups"] else None,
        "setups_measured": len(relay["setups"]),
        "setup_p99_ms_incl_overloaded_level": round(_percentile(relay["all_setups"], 0.99), 1)
        if relay["all_setups"]
        else None,
        "baseline_stock_cpu_per_stream_pct": round(stock_per_stream, 2)
        if stock_per_stream
        else None,
        "baseline_stock_delivered_pct": stock["levels"][0]["delivered_pct"]
        if stock["levels"]
        else None,
        "stock_to_relay_cpu_ratio": round(stock_per_stream / per_stream, 1)
        if per_stream and stock_per_stream
        else None,
        "cores": cores,
        # Calls the server alone could carry at 80 % of every core, from the measured cost.
        "projected_calls_server_only": int(cores * 80 / (2 * per_stream)) if per_stream else None,
        "client_processes": config.client_processes,
        "levels": relay["levels"],
    }


def _scratch_settings(settings: Settings) -> tuple[Settings, Any]:
    """Settings of a run: a throwaway data directory, free ports, SQLite."""
    import socket
    import tempfile
    from pathlib import Path

    scratch = Path(tempfile.mkdtemp(prefix="vaki-bench-video-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    updated = settings.model_copy(
        update={
            "data_dir": scratch,
            "database_url": f"sqlite+aiosqlite:///{scratch / 'bench.db'}",
            "mqtt_embedded_port": 0,
            "mqtt_url": None,
            "http_port": port,
            "demo_homes": 0,
        }
    )
    return updated, scratch


def run_video_bench(settings: Settings, config: VideoBenchConfig) -> dict[str, Any]:
    """Run the benchmark in a throwaway data directory."""
    run_settings, scratch = _scratch_settings(settings)
    try:
        return asyncio.run(measure_relay(run_settings, config))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
