"""``vaki demo``: load the demo world once and print its logins; ``--reset`` starts over."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Annotated

import typer

from server.cli.common import fail, load_settings, run_with_database
from server.db import create_engine, downgrade_database
from server.demo import DemoWorld, forget_world, kept_world, load_demo_world
from server.settings import Settings


def print_world(world: DemoWorld, as_json: bool, base_url: str | None = None) -> None:
    """Show the demo logins (and device secrets in JSON), and where to open the console and
    the ready-paired demo tablet."""
    if as_json:
        typer.echo(json.dumps(world.to_dict(), ensure_ascii=False))
        return
    typer.echo(f"Demo world: {len(world.residents)} residents. Staff logins:")
    for login in world.staff:
        typer.echo(
            f"  {login.username:<8} {login.password:<14} {login.role:<17} {login.organisation}"
        )
    base = base_url or "http://127.0.0.1:8000"
    typer.echo(f"Console: {base}/login")
    tablet = world.demo_tablet
    if tablet is not None:
        resident, key = tablet
        typer.echo(f"Demo tablet of {resident.name}: {base}/tablet/#key={key}")


def load_world(settings: Settings) -> DemoWorld:
    """The demo world of the settings' database, made once and kept in the data directory."""
    return run_with_database(
        settings, functools.partial(load_demo_world, data_dir=settings.data_dir)
    )


def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the logins as JSON.")] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Empty the demo's database and make a new world.")
    ] = False,
) -> None:
    """Load the demo world once (later: the same logins) and print its logins."""
    settings = load_settings()
    if reset:
        if kept_world(settings.data_dir) is None:
            raise fail(
                f"no demo world was made in {settings.data_dir}: nothing is reset "
                "(--reset empties only a demo's own database)"
            )
        asyncio.run(_empty_database(settings.effective_database_url))
        forget_world(settings.data_dir)
    print_world(load_world(settings), as_json)


async def _empty_database(database_url: str) -> None:
    """Take the database down to no tables; loading the world migrates it up again, empty."""
    engine = create_engine(database_url)
    try:
        await downgrade_database(engine, "base")
    finally:
        await engine.dispose()
