"""``vaki demo``: load the demo world and print its logins."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from server.cli.common import load_settings, run_with_database
from server.demo import DemoWorld, load_demo_world


def print_world(world: DemoWorld, as_json: bool) -> None:
    """Show the demo logins (and device secrets in JSON)."""
    if as_json:
        typer.echo(json.dumps(world.to_dict(), ensure_ascii=False))
        return
    typer.echo(f"Demo world: {len(world.residents)} residents. Staff logins:")
    for login in world.staff:
        typer.echo(
            f"  {login.username:<8} {login.password:<14} {login.role:<17} {login.organisation}"
        )


def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the logins as JSON.")] = False,
) -> None:
    """Load the demo world (or give its staff new passwords when it exists) and print logins."""
    settings = load_settings()
    world = run_with_database(settings, load_demo_world)
    print_world(world, as_json)
