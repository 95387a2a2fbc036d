"""``vaki db``: bring the schema to the newest migration, and check models against migrations."""

from __future__ import annotations

import asyncio

import typer

from server.cli.common import fail, load_settings
from server.db import (
    alembic_config,
    check_database,
    create_engine,
    current_revision,
    head_revision,
    upgrade_database,
)
from server.errors import StartupError

app = typer.Typer(help="Database schema: migrate and check.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest migration."""
    settings = load_settings()

    async def run() -> str | None:
        await check_database(settings.effective_database_url)
        engine = create_engine(settings.effective_database_url)
        try:
            await upgrade_database(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    try:
        revision = asyncio.run(run())
    except StartupError as err:
        raise fail(str(err)) from err
    typer.echo(f"database at revision {revision} (head {head_revision()})")


@app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations differ (run after ``db upgrade``)."""
    settings = load_settings()

    from alembic import command

    async def run() -> None:
        engine = create_engine(settings.effective_database_url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(lambda sync: command.check(alembic_config(sync)))
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except Exception as err:
        raise fail(f"models and migrations differ: {err}", code=1) from err
    typer.echo("models and migrations agree")
