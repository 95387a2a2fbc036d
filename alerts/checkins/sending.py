"""Sending due prompts and nudges: claimed with a lease, marked sent once the broker has them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from alerts.checkins.plans import CLAIM_BATCH, LEASE
from alerts.checkins.prompts import OutgoingPrompt, _ServiceBase, prompt_payload
from alerts.claims import claimable
from alerts.models import CheckinPlan, CheckinPrompt, PromptStatus
from care import Resident


class _Sending(_ServiceBase):
    """Claiming due prompts and nudges, and recording whether they went out."""

    async def claim_due(self, nudges: bool = False) -> list[OutgoingPrompt]:
        """Take due prompts (or due nudges) for sending, under a lease; with their payloads."""
        now = self.clock()
        free = or_(
            col(CheckinPrompt.claimed_until).is_(None), col(CheckinPrompt.claimed_until) < now
        )
        if nudges:
            due = and_(
                col(CheckinPrompt.status) == PromptStatus.SENT,
                col(CheckinPrompt.remind_at) <= now,
                col(CheckinPrompt.reminded_at).is_(None),
                col(CheckinPrompt.closes_at) > now,
                free,
            )
        else:
            due = and_(
                col(CheckinPrompt.status) == PromptStatus.SCHEDULED,
                col(CheckinPrompt.slot_at) <= now,
                col(CheckinPrompt.closes_at) > now,
                free,
            )
        async with self.sessions() as session, session.begin():
            candidates = (
                select(CheckinPrompt.id)
                .where(due)
                .order_by(col(CheckinPrompt.slot_at))
                .limit(CLAIM_BATCH)
            )
            where = await claimable(session, candidates, col(CheckinPrompt.id))
            if where is None:
                return []
            claimed = (
                await session.exec(
                    update(CheckinPrompt)
                    .where(where, due)
                    .values(claimed_until=now + LEASE)
                    .returning(col(CheckinPrompt.id))
                )
            ).all()
            if not claimed:
                return []
            rows = (
                await session.exec(
                    select(CheckinPrompt, CheckinPlan, Resident)
                    .join(CheckinPlan, col(CheckinPlan.id) == col(CheckinPrompt.plan_id))
                    .join(Resident, col(Resident.id) == col(CheckinPrompt.resident_id))
                    .where(col(CheckinPrompt.id).in_([row[0] for row in claimed]))
                )
            ).all()
        return [
            OutgoingPrompt(
                prompt_id=prompt.id,
                resident_id=prompt.resident_id,
                nudge=nudges,
                payload=prompt_payload(prompt, plan, resident, nudges),
            )
            for prompt, plan, resident in rows
            if prompt.id is not None
        ]

    async def mark_sent(self, prompt_ids: Sequence[int], nudges: bool = False) -> None:
        """Record that these prompts (or nudges) reached the broker; release their lease."""
        if not prompt_ids:
            return
        now = self.clock()
        values: dict[str, Any] = {"claimed_until": None}
        if nudges:
            values["reminded_at"] = now
            statuses = [PromptStatus.SENT, PromptStatus.ANSWERED]
        else:
            values |= {"sent_at": now, "status": PromptStatus.SENT}
            statuses = [PromptStatus.SCHEDULED]
        async with self.sessions() as session, session.begin():
            await session.exec(
                update(CheckinPrompt)
                .where(
                    col(CheckinPrompt.id).in_(list(prompt_ids)),
                    col(CheckinPrompt.status).in_(statuses),
                )
                .values(**values)
            )

    async def release(self, prompt_ids: Sequence[int]) -> None:
        """Give back prompts that could not be sent now, for the next sweep to try again."""
        if not prompt_ids:
            return
        async with self.sessions() as session, session.begin():
            await session.exec(
                update(CheckinPrompt)
                .where(col(CheckinPrompt.id).in_(list(prompt_ids)))
                .values(claimed_until=None)
            )
