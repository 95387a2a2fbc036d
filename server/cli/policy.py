"""``vaki policy``: name the gaps in every team's escalation policy."""

from __future__ import annotations

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from server.cli.common import load_settings, run_with_database

app = typer.Typer(help="Escalation policies.", no_args_is_help=True)


@app.command("check")
def policy_check() -> None:
    """Name every gap in every team's escalation policy (nobody on call, no channel, ...)."""
    from sqlmodel import select

    import alerts

    settings = load_settings()

    async def work(session: AsyncSession) -> list[str]:
        found: list[str] = []
        for policy in (await session.exec(select(alerts.EscalationPolicy))).all():
            tiers = list(
                (
                    await session.exec(
                        select(alerts.EscalationTier).where(
                            alerts.EscalationTier.policy_id == policy.id
                        )
                    )
                ).all()
            )
            team = await session.get(care.CareTeam, policy.team_id)
            name = team.name if team else policy.team_id
            found.extend(
                f"{name}, {policy.name}: {gap}"
                for gap in await alerts.policy_gaps(session, policy.team_id, tiers)
            )
        return found

    gaps = run_with_database(settings, work)
    for gap in gaps:
        typer.echo(gap)
    if gaps:
        raise typer.Exit(1)
    typer.echo("every tier of every policy reaches somebody")
