"""The resources one running instance holds, opened and closed by the app's lifespans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from devices import BatchSubscriber, Ingestor, LaneProbe, LocalBroker, MqttLink
from server.live import ResilientPostgresChannels
from server.settings import Settings

if TYPE_CHECKING:
    from server.alarm_path import AlarmPipeline
    from server.checkin_path import CheckinPipeline
    from server.ingest_workers import IngestWorkers


@dataclass
class Runtime:
    """Typed holder of the live resources; each lifespan fills in its own."""

    settings: Settings
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    broker: LocalBroker | None = None
    mqtt: MqttLink | None = None
    alarm_lane: MqttLink | None = None
    ingestor: Ingestor | None = None
    # Each MQTT lane's end-to-end probe, by the name /readyz gives it.
    lane_probes: dict[str, LaneProbe] = field(default_factory=dict)
    # Worker processes taking the reading lane (VAKI_INGEST_WORKERS), when there are any.
    ingest_workers: IngestWorkers | None = None
    # Called with every committed batch of readings and events (the alarm path hooks in here).
    batch_subscribers: list[BatchSubscriber] = field(default_factory=list)
    scheduler: AsyncIOScheduler | None = None
    # The live feed to consoles (None when running without the web app, as benchmarks do).
    live: ChannelsPlugin | None = None
    # Its PostgreSQL backend, when the service runs on PostgreSQL (watched by /readyz).
    live_feed: ResilientPostgresChannels | None = None
    alarms: AlarmPipeline | None = None
    checkins: CheckinPipeline | None = None
