"""``vaki user``: staff logins and their one-time-code enrolment."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from server.cli.common import load_settings, run_with_database

app = typer.Typer(help="Staff logins.", no_args_is_help=True)


@app.command("add")
def user_add(
    username: Annotated[str, typer.Option(help="Login name.")],
    full_name: Annotated[str, typer.Option(help="Name shown to colleagues.")],
    role: Annotated[care.StaffRole, typer.Option(help="What the person does.")],
    organisation: Annotated[str, typer.Option(help="Employer; created if new.")],
    organisation_kind: Annotated[
        care.OrganisationKind, typer.Option(help="Kind of a new organisation.")
    ] = care.OrganisationKind.MUNICIPALITY,
    language: Annotated[str, typer.Option(help="is, en, sv, fi or pl.")] = "is",
    password: Annotated[
        str | None, typer.Option(help="Password; a random one is made and shown when omitted.")
    ] = None,
) -> None:
    """Create a staff login."""
    settings = load_settings()
    secret = password or care.new_secret(12)

    async def work(session: AsyncSession) -> care.StaffUser:
        org = await care.ensure_organisation(session, organisation, organisation_kind)
        return await care.add_staff_user(
            session,
            username=username,
            full_name=full_name,
            password=secret,
            role=role,
            organisation=org,
            language=language,
        )

    user = run_with_database(settings, work)
    typer.echo(f"created {user.username} ({user.role}, {organisation})")
    if password is None:
        typer.echo(f"password: {secret}")


@app.command("totp")
def user_totp(
    username: Annotated[str, typer.Argument(help="The staff login to protect.")],
) -> None:
    """Require a one-time code from an authenticator app at sign-in; prints its URI once."""
    settings = load_settings()

    async def work(session: AsyncSession) -> str:
        return await care.enrol_totp(session, username)

    uri = run_with_database(settings, work)
    typer.echo(uri)
    typer.echo(
        "Add this to the authenticator app now (as a QR code or by pasting it): it is not "
        "shown again. Running this command again replaces it.",
        err=True,
    )


@app.command("deactivate")
def user_deactivate(
    username: Annotated[str, typer.Argument(help="The staff login to end.")],
) -> None:
    """A staff member who has left: no sign-in; their sessions and API tokens end now."""
    settings = load_settings()

    async def work(session: AsyncSession) -> care.StaffUser:
        return await care.deactivate_staff(session, username)

    staff = run_with_database(settings, work)
    typer.echo(f"deactivated {staff.username}: sessions ended, API tokens revoked")
