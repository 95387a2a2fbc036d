"""An answer that arrives while the database is failing is applied again before the window
closes, so the resident is not escalated as missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from server.checkin_path import CheckinPipeline

T0 = datetime(2027, 5, 3, 9, 0, tzinfo=UTC)


class FlakyService(alerts.CheckinService):
    """The real service, whose first answer meets a database error."""

    failures = 1

    async def answer(self, *args: Any, **kwargs: Any) -> alerts.AnswerOutcome:
        if self.failures:
            self.failures -= 1
            raise OperationalError("UPDATE checkin_prompt", {}, Exception("database is locked"))
        return await super().answer(*args, **kwargs)


async def test_a_failed_answer_is_applied_again_before_the_window_closes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = T0
    async with sessions() as session:
        resident = care.Resident(full_name="Jón Jónsson", time_zone="UTC")
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        plan = await alerts.save_plan(
            session,
            resident.id,
            alerts.PlanSpec(kind="wellbeing", title="How are you?", times=["09:00"]),
            now=now - timedelta(hours=1),
        )
        plan.created_at = now - timedelta(hours=1)
        await session.commit()
    service = FlakyService(sessions, clock=lambda: now)
    pipeline = CheckinPipeline(
        service=service,
        lifecycle=alerts.AlertLifecycle(sessions, clock=lambda: now),
        link=lambda: None,
        call_timeout=timedelta(minutes=10),
    )
    await service.plan_ahead()
    (prompt,) = [p for p in await service.claim_due() if p.payload["type"] == "checkin_prompt"]
    await service.mark_sent([prompt.prompt_id])
    answer = devices.CommittedEvent(
        id=1,
        device_id="tablet-1",
        resident_id=resident.id,
        type="checkin_answer",
        data={"prompt_id": prompt.command_id, "answer": "fine"},
        device_ts=now + timedelta(minutes=2),
        received_at=now + timedelta(minutes=2),
    )
    await pipeline.on_batch(devices.IngestedBatch(readings=(), events=(answer,)))
    async with sessions() as session:
        row = await session.get(alerts.CheckinPrompt, prompt.prompt_id)
        assert row is not None
        assert row.status == alerts.PromptStatus.SENT  # the database error: not applied yet
    now = T0 + timedelta(minutes=45)  # the window has closed
    await pipeline.run_due()
    async with sessions() as session:
        row = await session.get(alerts.CheckinPrompt, prompt.prompt_id)
        missed = (await session.exec(select(alerts.Alert))).all()
    assert row is not None
    assert (row.status, row.answer, row.answered_via) == ("answered", "fine", "mqtt")
    assert row.answered_at == T0 + timedelta(minutes=2)
    assert missed == []
