"""A resident's check-in plans and adherence as staff read and edit them, as one service.

Technicians are not told the resident exists here (check-ins are care data); editing a
plan takes a role that may (``care.Permission.EDIT_PLANS``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from alerts.checkins import Adherence, PlanSpec, adherence, save_plan
from alerts.models import CheckinPlan

CONTEXT = "check-in plans and adherence"


async def _open_resident(
    session: AsyncSession, actor: care.Actor, resident_id: int, action: str
) -> None:
    """Refuse (not found, as if absent) a resident of no team of the caller, and a technician;
    log the access."""
    if not actor.may(care.Permission.READ_CLINICAL):
        raise care.NotFoundError(f"no resident {resident_id}")
    await care.visible_resident(session, actor, resident_id, action=action, context=CONTEXT)


class CheckinPlanService:
    """Plans and how the resident keeps to them, for staff of the resident's teams."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = care.utcnow,
    ) -> None:
        """Query and write through ``sessions``; adherence is measured up to ``clock()``."""
        self._sessions = sessions
        self._clock = clock

    async def plans(self, actor: care.Actor, resident_id: int) -> list[CheckinPlan]:
        """Every plan of the resident, oldest first."""
        async with self._sessions() as session, session.begin():
            await _open_resident(session, actor, resident_id, "read check-in plans")
            rows = await session.exec(
                select(CheckinPlan)
                .where(CheckinPlan.resident_id == resident_id)
                .order_by(col(CheckinPlan.id))
            )
            return list(rows.all())

    async def save(
        self, actor: care.Actor, resident_id: int, spec: PlanSpec, plan_id: int | None = None
    ) -> CheckinPlan:
        """Add (``plan_id`` None) or change a plan; PlanError names every problem."""
        async with self._sessions() as session, session.begin():
            await _open_resident(session, actor, resident_id, "edit check-in plans")
            actor.require(care.Permission.EDIT_PLANS)
            return await save_plan(session, resident_id, spec, plan_id)

    async def adherence(
        self, actor: care.Actor, resident_id: int, days: tuple[int, ...]
    ) -> list[Adherence]:
        """Share answered on time and median response over each of the last ``days``."""
        async with self._sessions() as session, session.begin():
            await _open_resident(session, actor, resident_id, "read check-in adherence")
            now = self._clock()
            return [await adherence(session, resident_id, now, n) for n in days]
