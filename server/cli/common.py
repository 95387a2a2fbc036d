"""What every command shares: settings, one-line failures, a migrated database session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from server.db import check_database, create_engine, session_factory, upgrade_database
from server.errors import StartupError
from server.settings import Settings

T = TypeVar("T")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the exit to raise."""
    typer.echo(f"vaki: {message}", err=True)
    return typer.Exit(code)


def load_settings() -> Settings:
    """Load settings once, from the environment and ``.env``."""
    try:
        return Settings()
    except ValueError as err:
        raise fail(f"invalid configuration: {err}") from err


def run_with_database(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Check the database, migrate it, and run ``work`` in one committed session."""

    async def run() -> T:
        await check_database(settings.effective_database_url)
        engine = create_engine(settings.effective_database_url)
        try:
            await upgrade_database(engine)
            async with session_factory(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except StartupError as err:
        raise fail(str(err)) from err
    except care.CareError as err:
        raise fail(str(err)) from err
    except devices.DevicesError as err:
        raise fail(str(err)) from err


def broker_address(settings: Settings) -> tuple[str, int]:
    """The host and port devices must use to reach the broker."""
    if settings.mqtt_url:
        endpoint = devices.MqttEndpoint.from_url(settings.mqtt_url)
        return endpoint.host, endpoint.port
    running = devices.read_broker_address(settings.data_dir)
    if running is not None:
        return running.host, running.port
    return settings.mqtt_embedded_host, settings.mqtt_embedded_port
