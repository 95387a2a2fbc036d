"""The ``vaki`` command: serve, demo data, database migrations, staff and devices.

One module per command group; this one assembles them into the typer app behind the
``vaki`` console script, in the order ``vaki --help`` lists them.
"""

from __future__ import annotations

import typer

from server.cli import bench, db, demo, device, mqtt, policy, push, serve, simulate, token, user

cli = typer.Typer(
    name="vaki",
    help="Vaki: telehealth and welfare technology for people aged 60+ living at home.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.command()(serve.serve)
cli.command()(demo.demo)
cli.command()(simulate.simulate)
cli.add_typer(db.app, name="db")
cli.add_typer(user.app, name="user")
cli.add_typer(device.app, name="device")
cli.add_typer(token.app, name="token")
cli.add_typer(push.app, name="push")
cli.add_typer(policy.app, name="policy")
cli.add_typer(bench.app, name="bench")
cli.add_typer(mqtt.app, name="mqtt")


def main() -> None:
    """Entry point of the ``vaki`` console script."""
    cli()


__all__ = ["cli", "main"]
