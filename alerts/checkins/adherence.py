"""How a resident kept to their plans: answered on time, late, missed, not sent."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.models import CheckinPrompt, PromptStatus


@dataclass(frozen=True)
class Adherence:
    """How a resident kept to their plans over a period."""

    days: int
    prompts: int
    answered_on_time: int
    answered_late: int
    missed: int
    not_sent: int
    share_on_time: float | None
    median_response_s: float | None

    def to_json(self) -> dict[str, Any]:
        """As the console's API shows it."""
        return {
            "days": self.days,
            "prompts": self.prompts,
            "answered_on_time": self.answered_on_time,
            "answered_late": self.answered_late,
            "missed": self.missed,
            "not_sent": self.not_sent,
            "share_on_time": self.share_on_time,
            "median_response_s": self.median_response_s,
        }


async def adherence(session: AsyncSession, resident_id: int, now: datetime, days: int) -> Adherence:
    """Share of prompts answered on time and the median response time over ``days`` days.

    Only closed prompts count: one still open can be neither on time nor late yet. Prompts
    the service failed to send are counted apart and not held against the resident.
    """
    rows = (
        await session.exec(
            select(CheckinPrompt).where(
                col(CheckinPrompt.resident_id) == resident_id,
                col(CheckinPrompt.slot_at) > now - timedelta(days=days),
                col(CheckinPrompt.status).in_(
                    [PromptStatus.ANSWERED, PromptStatus.MISSED, PromptStatus.NOT_SENT]
                ),
                or_(
                    col(CheckinPrompt.status) != PromptStatus.ANSWERED,
                    col(CheckinPrompt.answered_at).is_not(None),
                ),
            )
        )
    ).all()
    on_time = late = missed = not_sent = 0
    responses = []
    for prompt in rows:
        if prompt.status == PromptStatus.NOT_SENT:
            not_sent += 1
        elif prompt.status == PromptStatus.MISSED:
            missed += 1
        elif prompt.answered_at is not None and prompt.answered_at <= prompt.closes_at:
            on_time += 1
        else:
            late += 1
        if prompt.answered_at is not None and prompt.sent_at is not None:
            responses.append((prompt.answered_at - prompt.sent_at).total_seconds())
    counted = on_time + late + missed
    return Adherence(
        days=days,
        prompts=len(rows),
        answered_on_time=on_time,
        answered_late=late,
        missed=missed,
        not_sent=not_sent,
        share_on_time=round(on_time / counted, 3) if counted else None,
        median_response_s=round(statistics.median(responses), 1) if responses else None,
    )
