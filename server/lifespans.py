"""One lifespan per resource: database, embedded broker, MQTT ingestion, scheduler.

Each opens its resource on the ``Runtime``, yields while the service runs, and closes it in
``finally``. The app runs them as its lifespans; benchmarks run them without the web app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from litestar import Litestar

import alerts
import homesim
from devices import (
    ALARM_LANE,
    MAIN_CHANNELS,
    SERVICE_USERNAME,
    BrokerStartError,
    EmbeddedBroker,
    InboundMessage,
    IngestedBatch,
    Ingestor,
    LaneProbe,
    LocalBroker,
    MqttEndpoint,
    MqttLink,
    PrivateMosquitto,
    active_broker_logins,
    is_probe_topic,
    mosquitto_binary,
    probe_topic,
)
from server.alarm_lanes import lane_plan
from server.alarm_path import ALERTS_CHANNEL, AlarmPipeline, build_channels
from server.checkin_path import CheckinPipeline
from server.db import create_engine, describe_url, session_factory, upgrade_database
from server.demo import simulated_demo_homes
from server.ingest_workers import IngestWorkers
from server.live import alert_catch_up
from server.runtime import Runtime
from server.settings import Settings
from server.wakes import SteadyClock

log = logging.getLogger(__name__)

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]
Resource = Callable[[Runtime], AbstractAsyncContextManager[None]]

# How soon a device added, re-keyed or revoked (from any process) reaches the broker.
BROKER_RELOAD_INTERVAL_S = 2.0


def runtime_of(app: Litestar) -> Runtime:
    """The runtime stored on the app's state."""
    runtime: Runtime = app.state.runtime
    return runtime


@asynccontextmanager
async def open_database(runtime: Runtime) -> AsyncIterator[None]:
    """Open the engine and bring the schema to the newest migration."""
    settings = runtime.settings
    url = settings.effective_database_url
    engine = create_engine(
        url,
        connect_timeout_s=settings.database_connect_timeout_s,
        statement_timeout_s=settings.database_statement_timeout_s,
    )
    try:
        await upgrade_database(engine)
        runtime.engine = engine
        runtime.sessions = session_factory(engine)
        log.info("database ready at %s", describe_url(url))
        yield
    finally:
        runtime.engine = runtime.sessions = None
        await engine.dispose()


def _local_broker(runtime: Runtime) -> LocalBroker:
    """A private Mosquitto when the program is installed (or asked for), else amqtt."""
    settings = runtime.settings
    binary = mosquitto_binary()
    choice = settings.mqtt_embedded_broker
    if choice == "mosquitto" and binary is None:
        raise BrokerStartError("VAKI_MQTT_EMBEDDED_BROKER=mosquitto but it is not installed")
    if binary is not None and choice != "amqtt":
        return PrivateMosquitto(
            host=settings.mqtt_embedded_host,
            preferred_port=settings.mqtt_embedded_port,
            data_dir=settings.data_dir,
            binary=binary,
            server_client_id=settings.mqtt_client_id,
        )
    return EmbeddedBroker(
        host=settings.mqtt_embedded_host,
        preferred_port=settings.mqtt_embedded_port,
        database_url=settings.effective_database_url,
        data_dir=settings.data_dir,
        server_client_id=settings.mqtt_client_id,
    )


async def _broker_logins(runtime: Runtime) -> list[tuple[str, str]]:
    """Every active device's broker login, from the registry."""
    assert runtime.sessions is not None
    async with runtime.sessions() as session:
        return await active_broker_logins(session)


async def refresh_broker_logins(runtime: Runtime) -> None:
    """Hand the broker the registry's device logins now (after provisioning in-process)."""
    if runtime.broker is not None:
        await runtime.broker.reload(await _broker_logins(runtime))


async def _follow_registry(runtime: Runtime, broker: LocalBroker) -> None:
    """Hand the broker every change of device logins, so revoked devices are cut off."""
    while True:
        await asyncio.sleep(BROKER_RELOAD_INTERVAL_S)
        try:
            if await broker.reload(await _broker_logins(runtime)):
                log.info("device logins changed; the MQTT broker reloaded them")
        except Exception:  # the next round tries again; the broker keeps its last logins
            log.exception("could not hand device logins to the MQTT broker")


@asynccontextmanager
async def open_broker(runtime: Runtime) -> AsyncIterator[None]:
    """Start Vaki's own MQTT broker unless an external one is configured."""
    settings = runtime.settings
    if not settings.uses_embedded_broker:
        yield
        return
    broker = _local_broker(runtime)
    await broker.start(await _broker_logins(runtime))
    runtime.broker = broker
    if broker.port_was_taken:
        log.warning(
            "port %s is in use, so the %s MQTT broker listens on %s:%s instead "
            "(set VAKI_MQTT_EMBEDDED_PORT to choose)",
            settings.mqtt_embedded_port,
            broker.name,
            broker.host,
            broker.port,
        )
    else:
        log.info("%s MQTT broker listening on %s:%s", broker.name, broker.host, broker.port)
    follower = asyncio.create_task(_follow_registry(runtime, broker), name="broker-logins")
    try:
        yield
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        runtime.broker = None
        await broker.stop()


def _mqtt_endpoint(runtime: Runtime) -> tuple[MqttEndpoint, str]:
    """Where the server's MQTT client connects and with which protocol."""
    settings = runtime.settings
    if runtime.broker is not None:
        assert runtime.broker.service_port is not None
        endpoint = MqttEndpoint(
            host=runtime.broker.service_host,
            port=runtime.broker.service_port,
            username=SERVICE_USERNAME,
            password=runtime.broker.secret,
        )
        return endpoint, runtime.broker.protocol
    assert settings.mqtt_url is not None
    return MqttEndpoint.from_url(settings.mqtt_url), settings.mqtt_protocol


READING_FREE_CHANNELS = tuple(c for c in MAIN_CHANNELS if c != "reading")


def _links_plan(
    settings: Settings, shared_group: str | None, *, with_workers: bool
) -> list[tuple[str, str, str, tuple[tuple[str, int], ...], int]]:
    """(lane, client id, probe channel, subscriptions, session expiry) of each MQTT link.

    With ingest workers, readings are theirs; this process keeps status, raw payloads and
    alarms. A shared subscription (another instance's, or the workers') may take this
    link's readiness probe, so the link then subscribes to its own probe topic too.
    """
    main_channels = READING_FREE_CHANNELS if with_workers else MAIN_CHANNELS
    plan = []
    for lane, subscriptions, suffix, expiry_s in lane_plan(settings, shared_group, main_channels):
        client_id = f"{settings.mqtt_client_id}{suffix}"
        probe_channel = "event" if lane == ALARM_LANE else "reading"
        if (shared_group is not None or with_workers) and lane != ALARM_LANE:
            subscriptions += ((probe_topic(client_id, probe_channel), 1),)  # noqa: PLW2901
        plan.append((lane, client_id, probe_channel, subscriptions, expiry_s))
    return plan


def _ingest_workers(runtime: Runtime) -> IngestWorkers | None:
    """The worker processes VAKI_INGEST_WORKERS asks for, where the broker allows them."""
    settings = runtime.settings
    if settings.ingest_workers == 0:
        return None
    if runtime.broker is not None or settings.mqtt_protocol == "3.1.1":
        log.warning(
            "VAKI_INGEST_WORKERS=%s needs an MQTT 5 broker with shared subscriptions "
            "(VAKI_MQTT_URL, Mosquitto or EMQX); ingesting in this process only",
            settings.ingest_workers,
        )
        return None

    async def dispatch(batch: IngestedBatch) -> None:
        for subscriber in list(runtime.batch_subscribers):
            try:
                await subscriber(batch)
            except Exception:
                log.exception("a subscriber failed on a batch from an ingest worker")

    return IngestWorkers(settings, settings.ingest_workers, dispatch)


@asynccontextmanager
async def open_ingestion(runtime: Runtime) -> AsyncIterator[None]:
    """Connect the MQTT links and the ingestion writer behind them.

    Two links: the main one for readings and status, and the alarm lane for events and raw
    payloads, so a panic never queues at the broker behind readings (see ``lane_plan`` for
    what is shared between instances). Each link keeps
    reconnecting while the broker is away; the writer acks nothing it has not committed, so
    whatever is in flight at shutdown is redelivered by the broker.
    """
    assert runtime.engine is not None
    settings = runtime.settings
    endpoint, protocol = _mqtt_endpoint(runtime)
    shared_group = None if runtime.broker is not None else settings.mqtt_shared_group
    links: dict[str, MqttLink] = {}
    workers = _ingest_workers(runtime)

    def ack(message: InboundMessage) -> None:
        link = links.get(message.lane)
        if link is not None:
            link.ack(message)

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        link = links.get("main")
        if link is not None:
            link.publish(topic, payload, qos=qos, retain=retain)

    ingestor = Ingestor(runtime.engine, ack=ack, publish=publish)
    probes: dict[str, LaneProbe] = {}

    def on_message(message: InboundMessage) -> None:
        """Probes (ours or another instance's) never reach ingestion."""
        if is_probe_topic(message.topic):
            ack(message)
            probe = probes.get(message.lane)
            if probe is not None and message.topic == probe.topic:
                probe.received(message)
            return
        ingestor.submit(message)

    for lane, client_id, probe_channel, subscriptions, expiry_s in _links_plan(
        settings, shared_group, with_workers=workers is not None
    ):
        links[lane] = MqttLink(
            endpoint,
            client_id=client_id,
            protocol=protocol,
            subscriptions=subscriptions,
            on_message=on_message,
            session_expiry_s=expiry_s,
            lane=lane,
            admit=ingestor.admit,
        )
        probes[lane] = LaneProbe(links[lane], probe_channel)
    for subscriber in runtime.batch_subscribers:
        ingestor.subscribe(subscriber)
    ingestor.start()
    if workers is not None:
        await workers.start()
        runtime.ingest_workers = workers
    await asyncio.gather(*(link.start() for link in links.values()))
    runtime.mqtt, runtime.alarm_lane, runtime.ingestor = links["main"], links[ALARM_LANE], ingestor
    runtime.lane_probes = {"readings": probes["main"], "alarms": probes[ALARM_LANE]}
    try:
        yield
    finally:
        runtime.lane_probes = {}
        runtime.mqtt = runtime.alarm_lane = runtime.ingestor = None
        if workers is not None:
            runtime.ingest_workers = None
            await workers.stop()
        with contextlib.suppress(TimeoutError):
            await ingestor.drain(within_s=5)
        for link in links.values():
            await link.stop()
        await ingestor.stop()


@asynccontextmanager
async def open_scheduler(runtime: Runtime) -> AsyncIterator[None]:
    """Run APScheduler on the event loop; durable timer state lives in the database."""
    scheduler = AsyncIOScheduler(
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        timezone="UTC",
    )
    running: set[str] = set()

    def track(event: JobEvent) -> None:
        """Keep the ids of jobs that are running now."""
        if event.code == EVENT_JOB_SUBMITTED:
            running.add(event.job_id)
        else:
            running.discard(event.job_id)

    scheduler.add_listener(track, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    runtime.scheduler = scheduler
    try:
        yield
    finally:
        runtime.scheduler = None
        # Let running jobs (an escalation step being delivered) finish before the database
        # closes under them; what is still unfinished after that is picked up at next start.
        scheduler.pause()
        for _ in range(100):
            if not running:
                break
            await asyncio.sleep(0.1)
        if running:
            log.warning("stopping with jobs still running: %s", ", ".join(sorted(running)))
        scheduler.shutdown(wait=False)


@asynccontextmanager
async def open_alarms(runtime: Runtime) -> AsyncIterator[None]:
    """The alarm path: rules on every committed batch, lifecycle, durable escalation."""
    assert runtime.sessions is not None
    assert runtime.scheduler is not None
    settings = runtime.settings
    channels = build_channels(settings)
    # Due moments are compared with steady time, so a wall-clock step neither stalls nor
    # hurries escalation.
    clock = SteadyClock()
    lifecycle = alerts.AlertLifecycle(runtime.sessions, clock=clock)
    pipeline = AlarmPipeline(
        lifecycle=lifecycle,
        rules=alerts.RuleEngine(runtime.sessions),
        escalation=alerts.EscalationEngine(
            runtime.sessions,
            lifecycle,
            channels,
            clock=clock,
            console_url=settings.public_url,
            # Stable per instance, so a restarted instance recognises its own claims.
            instance=settings.mqtt_client_id,
            lease=timedelta(seconds=settings.escalation_lease_s),
            deadline_s=settings.notify_deadline_s,
            fallback=alerts.parse_fallback_contacts(settings.escalation_fallback),
        ),
        live=runtime.live,
        clock=clock,
    )
    recovered = await pipeline.escalation.recover_own_claims()
    if recovered:
        log.warning("%s escalation steps were unfinished when this instance stopped", recovered)
    runtime.batch_subscribers.append(pipeline.on_batch)
    pipeline.start(settings)
    if runtime.live_feed is not None:
        runtime.live_feed.catch_up = alert_catch_up(runtime.sessions, ALERTS_CHANNEL)
    runtime.alarms = pipeline
    log.info("alarm path ready; notification channels: console, %s", ", ".join(channels) or "none")
    try:
        yield
    finally:
        runtime.alarms = None
        await pipeline.stop()
        runtime.batch_subscribers.remove(pipeline.on_batch)
        for channel in channels.values():
            closing = getattr(channel, "aclose", None)
            if closing is not None:
                await closing()


@asynccontextmanager
async def open_checkins(runtime: Runtime) -> AsyncIterator[None]:
    """Check-ins and reminders: planned in the database, sent over the MQTT link.

    Prompts that fall due before the link is up wait for the next sweep.
    """
    assert runtime.sessions is not None
    assert runtime.scheduler is not None
    assert runtime.alarms is not None
    settings = runtime.settings
    pipeline = CheckinPipeline(
        service=alerts.CheckinService(runtime.sessions, clock=runtime.alarms.clock),
        lifecycle=runtime.alarms.lifecycle,
        link=lambda: runtime.mqtt,
        call_timeout=timedelta(minutes=settings.call_request_timeout_min),
    )
    # Subscribed before ingestion starts, so no answer redelivered at start-up slips past.
    runtime.batch_subscribers.append(pipeline.on_batch)
    pipeline.start(settings)
    runtime.checkins = pipeline
    try:
        yield
    finally:
        runtime.checkins = None
        await pipeline.stop()
        runtime.batch_subscribers.remove(pipeline.on_batch)


def broker_address(runtime: Runtime) -> tuple[str, int]:
    """Where devices connect: the embedded broker, or the configured one."""
    if runtime.broker is not None:
        assert runtime.broker.port is not None
        return runtime.broker.connect_host, runtime.broker.port
    assert runtime.settings.mqtt_url is not None
    endpoint = MqttEndpoint.from_url(runtime.settings.mqtt_url)
    return endpoint.host, endpoint.port


@asynccontextmanager
async def open_demo_homes(runtime: Runtime) -> AsyncIterator[None]:
    """A few simulated homes of the demo world, so a newcomer sees live readings and alerts."""
    count = runtime.settings.demo_homes
    if count == 0:
        yield
        return
    assert runtime.sessions is not None
    async with runtime.sessions() as session:
        homes = await simulated_demo_homes(session, count, runtime.settings.data_dir)
    # Their logins may be new: the broker must know them before they connect.
    await refresh_broker_logins(runtime)
    host, port = broker_address(runtime)
    speed = runtime.settings.demo_speed
    simulator = homesim.Simulator(homes, host, port, speed=speed)
    task = asyncio.create_task(simulator.run(), name="demo-homes")
    log.info("%s simulated homes are running (%s× the clock)", len(homes), speed)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# Opened in this order, closed in reverse: ingestion stops before what it feeds.
RESOURCES: tuple[Resource, ...] = (
    open_database,
    open_broker,
    open_scheduler,
    open_alarms,
    open_checkins,
    open_ingestion,
    open_demo_homes,
)


def _as_lifespan(resource: Resource) -> Lifespan:
    """A Litestar lifespan that opens ``resource`` on the app's runtime."""

    def lifespan(app: Litestar) -> AbstractAsyncContextManager[None]:
        return resource(runtime_of(app))

    lifespan.__name__ = resource.__name__
    return lifespan


LIFESPANS: tuple[Lifespan, ...] = tuple(_as_lifespan(resource) for resource in RESOURCES)
