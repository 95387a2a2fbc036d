"""The resources one running instance holds, opened and closed by the app's lifespans."""

from __future__ import annotations

from dataclasses import dataclass, field

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from devices import EmbeddedBroker, MqttLink
from server.settings import Settings


@dataclass
class Runtime:
    """Typed holder of the live resources; each lifespan fills in its own."""

    settings: Settings
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    broker: EmbeddedBroker | None = None
    mqtt: MqttLink | None = None
    scheduler: AsyncIOScheduler | None = None
    notes: list[str] = field(default_factory=list)
