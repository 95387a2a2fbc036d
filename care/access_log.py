"""The access log: every read of a resident's data, append-only, to show the resident."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.models import AccessLogEntry, ResidentTeam
from care.storage import utcnow


async def log_access(
    session: AsyncSession,
    *,
    staff_id: int | None,
    organisation_id: int | None,
    resident_id: int,
    action: str,
    context: str = "",
    at: datetime | None = None,
) -> AccessLogEntry:
    """Write one entry: who (and for which organisation) read what of whom, why, when."""
    entry = AccessLogEntry(
        at=at or utcnow(),
        staff_id=staff_id,
        organisation_id=organisation_id,
        resident_id=resident_id,
        action=action[:64],
        context=context[:500],
    )
    session.add(entry)
    await session.flush()
    return entry


async def access_log_of(
    session: AsyncSession,
    resident_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AccessLogEntry]:
    """The resident's entries from ``since`` (inclusive) to ``until`` (exclusive), oldest first."""
    query = select(AccessLogEntry).where(AccessLogEntry.resident_id == resident_id)
    if since is not None:
        query = query.where(AccessLogEntry.at >= since)
    if until is not None:
        query = query.where(AccessLogEntry.at < until)
    query = query.order_by(col(AccessLogEntry.at), col(AccessLogEntry.id))
    return list((await session.exec(query)).all())


async def resident_team_ids(session: AsyncSession, resident_id: int) -> set[int]:
    """The care teams that look after a resident: whose staff may see them."""
    rows = await session.exec(
        select(ResidentTeam.team_id).where(ResidentTeam.resident_id == resident_id)
    )
    return set(rows.all())


async def residents_of_teams(
    session: AsyncSession, team_ids: frozenset[int] | set[int]
) -> set[int]:
    """The residents the given care teams look after."""
    if not team_ids:
        return set()
    rows = await session.exec(
        select(ResidentTeam.resident_id).where(col(ResidentTeam.team_id).in_(sorted(team_ids)))
    )
    return set(rows.all())
