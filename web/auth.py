"""Who is calling: a staff member identified by an API token (sessions come with the console)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care


@dataclass(frozen=True)
class StaffIdentity:
    """The staff member behind a request and the care teams they may see."""

    staff_id: int
    username: str
    organisation_id: int
    role: str
    language: str
    team_ids: frozenset[int]


def _token_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The bearer token from the Authorization header, or ``?token=`` for WebSockets
    (browsers cannot set headers on them)."""
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return connection.query_params.get("token")


async def identify(
    connection: ASGIConnection[Any, Any, Any, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> StaffIdentity:
    """The calling staff member; 401 without a valid token."""
    token = _token_of(connection)
    if not token:
        raise NotAuthorizedException("a bearer token is required")
    async with sessions() as session:
        staff = await care.staff_for_token(session, token)
        if staff is None or staff.id is None:
            raise NotAuthorizedException("the token is not valid")
        teams = await care.team_ids_of(session, staff.id)
    return StaffIdentity(
        staff_id=staff.id,
        username=staff.username,
        organisation_id=staff.organisation_id,
        role=staff.role,
        language=staff.language,
        team_ids=frozenset(teams),
    )
