"""``vaki token``: API tokens for integrations and the live stream."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from server.cli.common import load_settings, run_with_database

app = typer.Typer(help="API tokens for integrations and the live stream.", no_args_is_help=True)


@app.command("create")
def token_create(
    username: Annotated[str, typer.Option(help="The staff member the token acts for.")],
    label: Annotated[str, typer.Option(help="What it is for, e.g. 'wall display'.")] = "",
) -> None:
    """Create an API token (shown once; stored hashed)."""
    settings = load_settings()

    async def work(session: AsyncSession) -> str:
        return await care.create_api_token(session, username, label)

    typer.echo(run_with_database(settings, work))
