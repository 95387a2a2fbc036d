"""A staff member's own preferences, kept with them: the language they read."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.models import StaffUser


class StaffPreferenceService:
    """Changes a staff member makes to how Vaki speaks to them."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Write through ``sessions``."""
        self._sessions = sessions

    async def set_language(self, username: str, language: str) -> None:
        """Keep ``language`` as the staff member's own (pages and notifications speak it)."""
        async with self._sessions() as session, session.begin():
            staff = (
                await session.exec(select(StaffUser).where(StaffUser.username == username))
            ).first()
            if staff is not None and staff.language != language:
                staff.language = language
                session.add(staff)
