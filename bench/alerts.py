"""``vaki bench alerts``: panic → console stream latency under background ingestion, and
how late escalation steps fire.

The service runs in this process as it runs in production (uvicorn, the real app); the
background load comes from a publisher process; panics come from pendants of their own; a
console listens on the real WebSocket stream; the first notification goes through the SMS
gateway channel to a small HTTP receiver, so it crosses a real network hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

import paho.mqtt.client as paho
import uvicorn
import websockets
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import select

import alerts
import care
import devices
from bench.ingest import Target
from bench.world import StaffMember, Tier, add_on_call_team
from server.app import create_app
from server.lifespans import refresh_broker_logins
from server.runtime import Runtime
from server.settings import Settings

_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class AlertBenchConfig:
    """What one run does."""

    seconds: float
    background_per_s: int
    panics: int
    tier_timeout_s: int


def _free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _background_publisher(
    target: Target, credentials: list[tuple[str, str]], per_s: int, stop: ProcessEvent
) -> None:
    """Publish ``per_s`` readings a second, spread over the devices, until told to stop."""
    clients = []
    for device_id, password in credentials:
        version = paho.MQTTv5 if target.protocol == "5" else paho.MQTTv311
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=version)
        client.username_pw_set(device_id, password)
        client.max_queued_messages_set(0)
        client.connect(target.host, target.port, keepalive=60)
        client.loop_start()
        clients.append((client, devices.device_topic(device_id, "reading")))
    sequence = 0
    started = time.perf_counter()
    while not stop.is_set():
        due = int((time.perf_counter() - started) * per_s)
        while sequence < due:
            client, topic = clients[sequence % len(clients)]
            reading = {"id": f"bg-{sequence}", "type": "heart_rate", "values": {"heart_rate": 72}}
            client.publish(topic, json.dumps(reading), qos=1)
            sequence += 1
        time.sleep(0.002)
    for client, _ in clients:
        client.disconnect()
        client.loop_stop()


class _SmsReceiver:
    """A minimal HTTP endpoint that notes when each SMS request arrives."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.port = _free_port()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on loopback."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one request, note it, answer 200."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            body = await reader.readexactly(length)
            self.arrivals.append((time.perf_counter(), json.loads(body)))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()


async def _world(
    runtime: Runtime, config: AlertBenchConfig
) -> tuple[str, list[tuple[str, str]], dict[str, int]]:
    """A team with an on-call nurse reachable by SMS, pendants, background devices, a token."""
    assert runtime.sessions is not None
    async with runtime.sessions() as session:
        nurse = f"bench-{uuid.uuid4().hex[:6]}"
        built = await add_on_call_team(
            session,
            organisation="Benchmark municipality",
            team=f"Benchmark team {uuid.uuid4().hex[:6]}",
            staff=[StaffMember(nurse, "Bench Nurse", phone="+354 800 0000")],
            on_call=nurse,
            policy="Bench",
            tiers=[Tier(config.tier_timeout_s, channels=("console", "sms"))] * 2,
            last_tier_repeats=2,
        )
        pendants: dict[str, int] = {}
        for n in range(config.panics):
            resident = care.Resident(full_name=f"Resident {n}")
            session.add(resident)
            await session.flush()
            assert resident.id is not None
            session.add(care.ResidentTeam(resident_id=resident.id, team_id=built.team_id))
            pendant = await devices.provision_device(
                session, kind=devices.DeviceKind.PANIC_BUTTON, resident_id=resident.id
            )
            pendants[f"{pendant.device.id}\t{pendant.secret}"] = resident.id
        background = []
        for _ in range(20):
            sensor = await devices.provision_device(
                session, kind=devices.DeviceKind.ACTIVITY_TRACKER, resident_id=None
            )
            background.append((sensor.device.id, sensor.secret))
        token = await care.create_api_token(session, nurse, "bench")
        await session.commit()
    return token, background, pendants


async def _press_and_watch(
    settings: Settings,
    token: str,
    target: Target,
    pendants: dict[str, int],
    config: AlertBenchConfig,
) -> tuple[dict[int, float], dict[int, float]]:
    """Press each pendant once while a console watches the stream: (pressed, seen) times."""
    published: dict[int, float] = {}
    seen: dict[int, float] = {}
    everyone_seen = asyncio.Event()
    url = f"ws://127.0.0.1:{settings.http_port}/api/alerts/stream?token={token}"
    async with websockets.connect(url) as console:

        async def listen() -> None:
            async for frame in console:
                change = json.loads(frame)
                if change["change"] == "raised" and change["resident_id"] not in seen:
                    seen[change["resident_id"]] = time.perf_counter()
                    if len(seen) == len(pendants):
                        everyone_seen.set()

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.3)
        gap = max(0.2, (config.seconds - 4) / max(1, config.panics))
        for key, resident_id in pendants.items():
            device_id, secret = key.split("\t")
            version = paho.MQTTv5 if target.protocol == "5" else paho.MQTTv311
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=version)
            client.username_pw_set(device_id, secret)
            client.connect(target.host, target.port)
            client.loop_start()
            event = {"id": f"panic-{uuid.uuid4().hex[:8]}", "type": "panic"}
            published[resident_id] = time.perf_counter()
            topic = devices.device_topic(device_id, "event")
            client.publish(topic, json.dumps(event), qos=1).wait_for_publish(5)
            client.disconnect()
            client.loop_stop()
            await asyncio.sleep(gap)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everyone_seen.wait(), 10 + config.tier_timeout_s * 2)
        # Let tier 2 come due and fire, for the escalation lateness figures.
        await asyncio.sleep(config.tier_timeout_s + 2)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    return published, seen


async def _escalation_figures(
    runtime: Runtime, receiver: _SmsReceiver, published: dict[int, float]
) -> tuple[list[float], list[str | None], list[float]]:
    """(step lateness ms, failed notifications, press → first SMS ms) from the database."""
    assert runtime.sessions is not None
    lateness_ms = []
    async with runtime.sessions() as session:
        for step in (await session.exec(select(alerts.EscalationStep))).all():
            if step.status == alerts.StepStatus.DONE and step.claimed_until is not None:
                # The claim's lease (a step delivered within a third of it is never renewed).
                claimed = step.claimed_until - timedelta(
                    seconds=runtime.settings.escalation_lease_s
                )
                lateness_ms.append(max(0.0, (claimed - step.due_at).total_seconds() * 1000))
        failures = [
            n.last_error
            for n in (await session.exec(select(alerts.Notification))).all()
            if n.status != alerts.NotificationStatus.SENT
        ]
        alert_of = {a.resident_id: a.id for a in (await session.exec(select(alerts.Alert))).all()}
    first_sms: dict[int, float] = {}
    for arrived, body in receiver.arrivals:
        reference = str(body.get("reference", ""))
        if ":t1:n1:" in reference:
            first_sms.setdefault(int(reference.split(":", maxsplit=1)[0][1:]), arrived)
    to_sms = [
        (first_sms[sms_alert] - published[r]) * 1000
        for r in published
        if (sms_alert := alert_of.get(r)) is not None and sms_alert in first_sms
    ]
    return lateness_ms, failures, to_sms


def _percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_alert_bench(
    settings: Settings,
    config: AlertBenchConfig,
    on_phase: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the service, load it, press panics, and measure.

    ``on_phase`` hears "loaded" once the load has settled and "pressed" after the panics.
    """
    receiver = _SmsReceiver()
    await receiver.start()
    settings = settings.model_copy(
        update={
            "sms_gateway_url": f"http://127.0.0.1:{receiver.port}/sms",
            "escalation_sweep_s": 0.5,
            "http_port": _free_port(),
        }
    )
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            port=settings.http_port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
        if serving.done():
            raise RuntimeError("the service did not start")
    token, background, pendants = await _world(runtime, config)
    await refresh_broker_logins(runtime)
    if runtime.broker is not None:
        assert runtime.broker.port is not None
        target = Target(runtime.broker.connect_host, runtime.broker.port, runtime.broker.protocol)
        broker_name = runtime.broker.name
    else:
        assert settings.mqtt_url is not None
        endpoint = devices.MqttEndpoint.from_url(settings.mqtt_url)
        target = Target(endpoint.host, endpoint.port, "5")
        broker_name = endpoint.describe()

    stop = _SPAWN.Event()
    loader = _SPAWN.Process(
        target=_background_publisher,
        args=(target, background, config.background_per_s, stop),
        daemon=True,
    )
    loader.start()
    committed_before = runtime.ingestor.committed_messages if runtime.ingestor else 0
    load_started = time.perf_counter()
    await asyncio.sleep(2.0)  # let the load settle
    if on_phase is not None:
        on_phase("loaded")

    published, seen = await _press_and_watch(settings, token, target, pendants, config)
    if on_phase is not None:
        on_phase("pressed")
    stop.set()
    loader.join(timeout=10)
    load_seconds = time.perf_counter() - load_started
    committed = (runtime.ingestor.committed_messages if runtime.ingestor else 0) - committed_before

    lateness_ms, failures, to_sms = await _escalation_figures(runtime, receiver, published)
    to_console = [(seen[r] - published[r]) * 1000 for r in published if r in seen]
    server.should_exit = True
    await serving
    await receiver.stop()
    return {
        "broker": broker_name,
        "database": settings.effective_database_url.split(":", 1)[0].split("+")[0],
        "background_readings_per_s": round(committed / load_seconds, 1),
        "background_target_per_s": config.background_per_s,
        "panics": len(published),
        "panics_seen_on_console": len(seen),
        "panic_to_console_p50_ms": round(_percentile(to_console, 0.5), 1),
        "panic_to_console_p99_ms": round(_percentile(to_console, 0.99), 1),
        "panic_to_console_max_ms": round(max(to_console, default=0.0), 1),
        "escalation_steps": len(lateness_ms),
        "escalation_lateness_p50_ms": round(_percentile(lateness_ms, 0.5), 1),
        "escalation_lateness_p99_ms": round(_percentile(lateness_ms, 0.99), 1),
        "first_notification_p50_ms": round(_percentile(to_sms, 0.5), 1),
        "first_notification_p99_ms": round(_percentile(to_sms, 0.99), 1),
        "notifications_received": len(receiver.arrivals),
        "notifications_failed": len(failures),
        "failure_example": failures[0] if failures else None,
    }
