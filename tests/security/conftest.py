"""The app served over real HTTP (uvicorn on a free port) on SQLite and PostgreSQL, the test
world of the web tests, and helpers to attack it as a browser or a script would."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from litestar import Litestar
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings
from tests.web.conftest import Clock, World, make_world


@dataclass
class Served:
    """A running server: its address, database, clock and world."""

    url: str
    app: Litestar
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    world: World

    def client(self, address: str = "127.0.0.1", **kwargs: object) -> httpx.AsyncClient:
        """An HTTP client that comes from ``address`` (the server trusts loopback's
        X-Forwarded-For, as behind a reverse proxy)."""
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"X-Forwarded-For": address, "Accept-Language": "en"},
            timeout=60,
            **kwargs,  # type: ignore[arg-type]
        )


async def serve(app: Litestar) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Start ``app`` under uvicorn on a free loopback port; wait until it answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", proxy_headers=True))

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            sock.close()

    task = asyncio.create_task(run())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)  # uvicorn offers no start-up event to await
    return server, task, f"http://127.0.0.1:{port}"


async def stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Stop a server started by ``serve``."""
    server.should_exit = True
    await task


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def served(
    settings: Settings, database_url: str, clock: Clock, mosquitto: tuple[str, int]
) -> AsyncIterator[Served]:
    """The whole app over HTTP, on SQLite and on PostgreSQL and a real Mosquitto, with the
    web tests' world."""
    settings.database_url = database_url
    settings.mqtt_url = f"mqtt://{mosquitto[0]}:{mosquitto[1]}"
    app = create_app(settings, clock=clock)
    engine = create_engine(database_url)
    server, task, url = await serve(app)
    try:
        sessions = session_factory(engine)
        world = await make_world(sessions)
        yield Served(url=url, app=app, sessions=sessions, clock=clock, world=world)
    finally:
        await stop(server, task)
        await engine.dispose()
