"""What staff do with residents, as one service: the logged read, tablet settings, access log.

Every read of a resident's data goes through :func:`visible_resident`, so the access log
is complete; a resident of no team of the caller is "not found", as if absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.access_log import access_log_of, log_access, resident_team_ids, residents_of_teams
from care.errors import NotFoundError
from care.models import AccessLogEntry, Organisation, Resident, StaffUser
from care.roles import Actor, Permission


async def visible_resident(
    session: AsyncSession, actor: Actor, resident_id: int, *, action: str, context: str = ""
) -> Resident:
    """The resident, when one of the caller's teams looks after them, with the read logged.

    A resident of other teams is :class:`NotFoundError`: their existence is not the caller's.
    """
    resident = await session.get(Resident, resident_id)
    teams = await resident_team_ids(session, resident_id) if resident is not None else set()
    if resident is None or not teams & actor.team_ids:
        raise NotFoundError(f"no resident {resident_id}")
    await log_access(
        session,
        staff_id=actor.staff_id,
        organisation_id=actor.organisation_id,
        resident_id=resident_id,
        action=action,
        context=context,
    )
    return resident


@dataclass(frozen=True)
class AccessLogLine:
    """One read of a resident's data, with who read it in words."""

    entry: AccessLogEntry
    staff_name: str | None
    organisation: str | None


class ResidentService:
    """A resident's data as staff of the resident's care teams see and change it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Query and write through ``sessions``."""
        self._sessions = sessions

    async def residents_of(self, actor: Actor) -> list[Resident]:
        """The residents of the caller's care teams, by name (for choosing one in a form)."""
        actor.require(Permission.READ_CLINICAL)
        async with self._sessions() as session:
            ids = await residents_of_teams(session, actor.team_ids)
            found = await session.exec(
                select(Resident)
                .where(col(Resident.id).in_(sorted(ids)))
                .order_by(col(Resident.full_name))
            )
            return list(found.all())

    async def tablet_settings(self, actor: Actor, resident_id: int) -> Resident:
        """The resident, for their tablet's language and call answering; the read is logged."""
        actor.require(Permission.READ_CLINICAL)
        async with self._sessions() as session, session.begin():
            return await visible_resident(
                session, actor, resident_id, action="read tablet settings"
            )

    async def change_tablet_settings(
        self, actor: Actor, resident_id: int, *, language: str, auto_answer_scheduled_calls: bool
    ) -> Resident:
        """Set the tablet's language and whether it answers booked calls of the team itself."""
        async with self._sessions() as session, session.begin():
            resident = await visible_resident(
                session, actor, resident_id, action="change tablet settings"
            )
            actor.require(Permission.EDIT_RESIDENT_SETTINGS)
            resident.language = language
            resident.auto_answer_scheduled_calls = auto_answer_scheduled_calls
            session.add(resident)
            return resident

    async def access_log(
        self,
        actor: Actor,
        resident_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        context: str | None = None,
        log_refusal: bool = False,
    ) -> tuple[Resident, list[AccessLogLine]]:
        """The resident and every read of their data in the period (reading it is logged too).

        With ``log_refusal`` (the console's page), a role that may not read the log still
        leaves its attempt in the log before it is refused.
        """
        if not log_refusal:
            actor.require(Permission.READ_ACCESS_LOG)
        context = context or f"access log from {since or 'the start'} to {until or 'now'}"
        async with self._sessions() as session:
            resident = await visible_resident(
                session, actor, resident_id, action="access_log.read", context=context
            )
            await session.commit()
            actor.require(Permission.READ_ACCESS_LOG)
            entries = await access_log_of(session, resident_id, since=since, until=until)
            staff_ids = {e.staff_id for e in entries if e.staff_id is not None}
            staff = {
                s.id: s.full_name
                for s in (
                    await session.exec(select(StaffUser).where(col(StaffUser.id).in_(staff_ids)))
                ).all()
            }
            organisations = {o.id: o.name for o in (await session.exec(select(Organisation))).all()}
        lines = [
            AccessLogLine(
                entry=entry,
                staff_name=staff.get(entry.staff_id) if entry.staff_id is not None else None,
                organisation=organisations.get(entry.organisation_id)
                if entry.organisation_id is not None
                else None,
            )
            for entry in entries
        ]
        return resident, lines
