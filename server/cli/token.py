"""``vaki token``: API tokens for integrations and the live stream."""

from __future__ import annotations

import json
from datetime import timedelta
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
    """Create an API token (shown once; stored hashed; expires after
    VAKI_API_TOKEN_LIFETIME_DAYS)."""
    settings = load_settings()

    async def work(session: AsyncSession) -> str:
        lifetime = timedelta(days=settings.api_token_lifetime_days)
        return await care.create_api_token(session, username, label, lifetime=lifetime)

    typer.echo(run_with_database(settings, work))


@app.command("list")
def token_list(
    username: Annotated[str | None, typer.Option(help="Only this staff member's tokens.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List API tokens: id, prefix, who, label, state and dates (never the secret)."""
    settings = load_settings()

    async def work(session: AsyncSession) -> list[care.TokenInfo]:
        return await care.list_api_tokens(session, username)

    tokens = run_with_database(settings, work)
    now = care.utcnow()
    for token in tokens:
        row = {
            "id": token.id,
            "prefix": token.prefix,
            "username": token.username,
            "label": token.label,
            "state": token.state(now),
            "created_at": token.created_at.isoformat(),
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            expires = row["expires_at"] or "never"
            typer.echo(
                f"{token.id:>5}  vaki_{token.prefix}_…  {token.username:<16} {row['state']:<8} "
                f"expires {expires}  {token.label}"
            )


@app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="The token's id (from vaki token list) or prefix.")],
) -> None:
    """Stop an API token from working at once (a live stream using it closes too)."""
    settings = load_settings()

    async def work(session: AsyncSession) -> care.ApiToken:
        return await care.revoke_api_token(session, token)

    revoked = run_with_database(settings, work)
    typer.echo(f"revoked token {revoked.id} (vaki_{revoked.prefix}_…)")
