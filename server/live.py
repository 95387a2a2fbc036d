"""The live feed between instances: PostgreSQL LISTEN/NOTIFY that survives database outages.

Litestar's own psycopg backend ends the whole app when its listening connection drops. This
one reconnects with backoff and LISTENs again; a change that cannot be NOTIFYed while the
database is away still reaches this instance's own consoles. NOTIFYs sent while nobody
listened are gone, so after every reconnect the feed catches up from the database: the
changes since it last knew it was listening are read and passed on as if just notified.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from litestar.channels.backends.base import ChannelsBackend
from psycopg import AsyncConnection
from psycopg.sql import SQL, Identifier
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
from care import utcnow

log = logging.getLogger(__name__)

_POLL_S = 0.5
_RETRY_MAX_S = 2.0
# Caught up from a little before the last moment the listener was known to be up: a change
# committed just before may have been notified just after.
_CATCH_UP_MARGIN = timedelta(seconds=10)

# Reads what changed since a moment, as (channel, payload) pairs to pass on.
CatchUp = Callable[[datetime], Awaitable[list[tuple[str, bytes]]]]


def alert_catch_up(sessions: async_sessionmaker[AsyncSession], channel: str) -> CatchUp:
    """A catch-up that reads alert changes from the database for ``channel``."""

    async def catch_up(since: datetime) -> list[tuple[str, bytes]]:
        changes = await alerts.changes_since(sessions, since)
        return [(channel, json.dumps(change.to_json()).encode()) for change in changes]

    return catch_up


class ResilientPostgresChannels(ChannelsBackend):
    """LISTEN/NOTIFY channels with a supervised listener and a kept publisher connection."""

    def __init__(self, dsn: str) -> None:
        """Connect to ``dsn`` (a plain libpq URL) when the app starts."""
        self._dsn = dsn
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._listener: AsyncConnection[Any] | None = None
        self._publisher: AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.last_error: str | None = "not started"
        # Set by the service once its database is open; None: no catch-up (a bare feed).
        self.catch_up: CatchUp | None = None
        # The last moment the listener was known to hear every NOTIFY.
        self.synced_at: datetime | None = None

    async def on_startup(self) -> None:
        """Start the listener's supervisor."""
        self._queue = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._task = asyncio.create_task(self._supervise(), name="live-feed-listener")

    async def on_shutdown(self) -> None:
        """Stop listening and close both connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.close()

    async def _supervise(self) -> None:
        """Keep a listening connection; reconnect with backoff whenever it breaks."""
        delay = 0.2
        while True:
            connection: AsyncConnection[Any] | None = None
            try:
                connection = await AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=5
                )
                async with self._lock:
                    self._listener = connection
                    for channel in self._channels:
                        await connection.execute(SQL("LISTEN {}").format(Identifier(channel)))
                listening_since = utcnow()
                await self._catch_up()
                self.synced_at = listening_since
                if self.last_error is not None and self.last_error != "not started":
                    log.info("live feed listening again")
                self.connected, self.last_error, delay = True, None, 0.2
                while True:
                    async for notify in connection.notifies(timeout=_POLL_S):
                        self._queue.put_nowait((notify.channel, notify.payload.encode()))
                    self.synced_at = utcnow()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the database went away: the feed waits, never dies
                error = f"LISTEN failed: {type(err).__name__}: {err}"[:300]
                if error != self.last_error:
                    log.warning("live feed: %s; reconnecting", error)
                self.last_error = error
            finally:
                self.connected, self._listener = False, None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def _catch_up(self) -> None:
        """Pass on what changed while nobody listened (nothing on the first connect)."""
        if self.catch_up is None or self.synced_at is None:
            return
        missed = await self.catch_up(self.synced_at - _CATCH_UP_MARGIN)
        for channel, data in missed:
            if channel in self._channels:
                self._queue.put_nowait((channel, data))
        if missed:
            log.info("live feed caught up %s changes from the database", len(missed))

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        """NOTIFY every instance; when that fails, still tell this instance's consoles."""
        targets = list(channels)
        try:
            if self._publisher is None or self._publisher.closed:
                self._publisher = await AsyncConnection.connect(self._dsn, autocommit=True)
            for channel in targets:
                await self._publisher.execute("SELECT pg_notify(%s, %s)", (channel, data.decode()))
        except Exception as err:
            log.warning("live feed could not NOTIFY (%s); delivering locally only", err)
            broken, self._publisher = self._publisher, None
            if broken is not None:
                with contextlib.suppress(Exception):
                    await broken.close()
            for channel in targets:
                if channel in self._channels:
                    self._queue.put_nowait((channel, data))

    async def subscribe(self, channels: Iterable[str]) -> None:
        """LISTEN on new channels (again after every reconnect)."""
        async with self._lock:
            for channel in set(channels) - self._channels:
                self._channels.add(channel)
                if self._listener is not None:
                    with contextlib.suppress(Exception):
                        await self._listener.execute(SQL("LISTEN {}").format(Identifier(channel)))

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """UNLISTEN."""
        async with self._lock:
            for channel in set(channels) & self._channels:
                self._channels.discard(channel)
                if self._listener is not None:
                    with contextlib.suppress(Exception):
                        await self._listener.execute(SQL("UNLISTEN {}").format(Identifier(channel)))

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        """Every notification on a subscribed channel, forever."""
        while True:
            channel, data = await self._queue.get()
            if channel in self._channels:
                yield channel, data

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        """Not kept: consoles load the current alerts from the API when they connect."""
        raise NotImplementedError("the live feed keeps no history")
