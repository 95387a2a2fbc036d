"""The staff of a coordinator's care teams, as the console's staff page manages them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.errors import NotFoundError
from care.models import StaffUser, TeamMembership
from care.roles import Permission, require
from care.tokens import deactivate_staff


class StaffService:
    """Colleagues who share a care team with the caller: listed, found, deactivated."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Query and write through ``sessions``."""
        self._sessions = sessions

    async def colleagues(self, role: str, team_ids: frozenset[int]) -> list[StaffUser]:
        """Everyone who shares one of ``team_ids``, by name; only for roles that manage staff."""
        require(role, Permission.MANAGE_STAFF)
        async with self._sessions() as session:
            found = await session.exec(
                select(StaffUser)
                .join(TeamMembership, col(TeamMembership.staff_id) == col(StaffUser.id))
                .where(col(TeamMembership.team_id).in_(team_ids))
                .distinct()
                .order_by(col(StaffUser.full_name))
            )
            return list(found.all())

    async def colleague(self, role: str, team_ids: frozenset[int], staff_id: int) -> StaffUser:
        """One staff member of ``team_ids``; NotFoundError for anyone else."""
        for staff in await self.colleagues(role, team_ids):
            if staff.id == staff_id:
                return staff
        raise NotFoundError(f"no staff member {staff_id}")

    async def deactivate(self, role: str, username: str) -> None:
        """No more sign-in for ``username``: their sessions and API tokens end."""
        require(role, Permission.MANAGE_STAFF)
        async with self._sessions() as session:
            await deactivate_staff(session, username)
            await session.commit()
