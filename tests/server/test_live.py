"""The PostgreSQL live feed through an outage of its LISTEN connection: it reconnects, says
so while it is down, and passes on the alert changes whose NOTIFY nobody heard."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
from server.alarm_path import ALERTS_CHANNEL
from server.live import ResilientPostgresChannels, alert_catch_up
from tests.alerts.test_escalation_engine import build_world, panic


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def plain_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def next_frame(stream: Any, within_s: float = 20) -> dict[str, Any]:
    """The next alert change the feed passes on."""
    async with asyncio.timeout(within_s):
        _channel, data = await anext(stream)
    frame: dict[str, Any] = json.loads(data)
    return frame


@pytest.mark.postgres
async def test_changes_missed_while_listen_was_down_are_caught_up_from_the_database(
    postgres_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await build_world(sessions)
    dsn = plain_dsn(postgres_url)
    feed = ResilientPostgresChannels(dsn)
    catch_up = alert_catch_up(sessions, ALERTS_CHANNEL)
    # The panic below is raised while the listener is down; the feed may reconnect before
    # its commit, so the catch-up read waits for it (a change after the LISTEN would be
    # heard by NOTIFY, and none is sent here).
    raised_now = asyncio.Event()

    async def after_the_panic(since: datetime) -> list[tuple[str, bytes]]:
        await raised_now.wait()
        return await catch_up(since)

    feed.catch_up = after_the_panic
    await feed.subscribe([ALERTS_CHANNEL])
    await feed.on_startup()
    stream = feed.stream_events()
    lifecycle = alerts.AlertLifecycle(sessions)
    try:
        async with asyncio.timeout(20):
            while feed.synced_at is None:
                await asyncio.sleep(0.05)
        # Heard live, as usual.
        await feed.publish(b'{"alert_id": 0, "change": "probe"}', [ALERTS_CHANNEL])
        assert (await next_frame(stream))["change"] == "probe"

        # The database drops the listening connection (a failover, a restart, a proxy).
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
            cut = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
            )
            assert (await cut.fetchall()) == [(True,)]
            async with asyncio.timeout(20):
                while feed.connected:
                    await asyncio.sleep(0.01)
            # While it is down, a panic is raised; its NOTIFY went nowhere (none is sent
            # here at all: the feed can only learn of it from the database).
            (raised,) = await lifecycle.raise_alerts([panic(world)])
            raised_now.set()
        caught = await next_frame(stream)
        assert (caught["alert_id"], caught["change"], caught["severity"]) == (
            raised.alert_id,
            "raised",
            "critical",
        )
        # Listening again, with nothing to report.
        assert (feed.connected, feed.last_error) == (True, None)
    finally:
        await feed.on_shutdown()


@pytest.mark.postgres
async def test_a_listen_that_cannot_connect_is_reported(postgres_url: str) -> None:
    # A database that does not exist: every LISTEN attempt fails, and says why.
    feed = ResilientPostgresChannels(plain_dsn(postgres_url) + "_missing")
    await feed.subscribe([ALERTS_CHANNEL])
    await feed.on_startup()
    try:
        async with asyncio.timeout(20):
            while feed.last_error == "not started":
                await asyncio.sleep(0.05)
        assert not feed.connected
        assert feed.last_error is not None
        assert feed.last_error.startswith("LISTEN failed: OperationalError")
    finally:
        await feed.on_shutdown()
