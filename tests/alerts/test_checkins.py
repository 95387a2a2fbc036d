"""Check-in prompts on a real database with an injected clock: one prompt per slot, answers
once, downtime, adherence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care

HELSINKI = ZoneInfo("Europe/Helsinki")


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


async def resident_with_plan(
    sessions: async_sessionmaker[AsyncSession], now: datetime, **plan: object
) -> tuple[int, int]:
    async with sessions() as session:
        resident = care.Resident(
            full_name="Aino Virtanen", language="fi", time_zone="Europe/Helsinki"
        )
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        spec = alerts.PlanSpec(
            **({"kind": "wellbeing", "title": "Päivän kuulumiset", "times": ["09:30"]} | plan)  # type: ignore[arg-type]
        )
        saved = await alerts.save_plan(session, resident.id, spec, now=now)
        saved.created_at = now
        await session.commit()
        assert saved.id is not None
        return resident.id, saved.id


async def prompts(sessions: async_sessionmaker[AsyncSession]) -> list[alerts.CheckinPrompt]:
    async with sessions() as session:
        rows = await session.exec(
            select(alerts.CheckinPrompt).order_by(col(alerts.CheckinPrompt.slot_at))
        )
        return list(rows.all())


async def test_planning_twice_never_makes_two_prompts_for_a_slot(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock(utc(2027, 3, 27, 12))
    await resident_with_plan(sessions, clock.now, times=["09:30", "20:00"])
    service = alerts.CheckinService(sessions, clock=clock)
    first = await service.plan_ahead()
    second = await service.plan_ahead()
    # Two services (two instances) planning the same plan from scratch: still one per slot.
    async with sessions() as session:
        plan = (await session.exec(select(alerts.CheckinPlan))).one()
        plan.planned_until = None
        session.add(plan)
        await session.commit()
    third = await alerts.CheckinService(sessions, clock=clock).plan_ahead()
    rows = await prompts(sessions)
    assert (first, second, third) == (len(rows), 0, 0)
    # 36 hours from Saturday noon UTC: 20:00 Sat, 09:30 and 20:00 Sun, 09:30 Mon is past it.
    local = [p.slot_at.astimezone(HELSINKI).strftime("%a %H:%M") for p in rows]
    assert local == ["Sat 20:00", "Sun 09:30", "Sun 20:00"]
    async with sessions() as session:
        pairs = await session.exec(
            select(alerts.CheckinPrompt.plan_id, alerts.CheckinPrompt.slot_at, func.count())
            .group_by(col(alerts.CheckinPrompt.plan_id), col(alerts.CheckinPrompt.slot_at))
            .having(func.count() > 1)
        )
        assert pairs.all() == []


async def test_an_answer_is_taken_once_whichever_path_is_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock(utc(2027, 5, 3, 6, 0))  # 09:00 in Helsinki
    resident_id, _ = await resident_with_plan(sessions, clock.now - timedelta(hours=1))
    service = alerts.CheckinService(sessions, clock=clock)
    await service.plan_ahead()
    clock.now = utc(2027, 5, 3, 6, 30)  # 09:30: due
    (outgoing,) = await service.claim_due()
    assert outgoing.payload["type"] == "checkin_prompt"
    assert outgoing.payload["text"] == "Hyvää päivää, Aino. Mitä sinulle kuuluu tänään?"
    assert [a["value"] for a in outgoing.payload["answers"]] == ["fine", "not_so_good", "call_me"]
    # A second sender finds nothing to claim while the first holds the lease.
    assert await service.claim_due() == []
    await service.mark_sent([outgoing.prompt_id])
    clock.now += timedelta(minutes=3)
    first = await service.answer(
        outgoing.command_id,
        "not_so_good",
        {"pain": 6, "sleep": "badly", "mood": "purple"},
        via="tablet",
        resident_id=resident_id,
    )
    second = await service.answer(
        outgoing.command_id, "fine", {}, via="mqtt", resident_id=resident_id
    )
    assert first.accepted
    assert not second.accepted
    row = next(p for p in await prompts(sessions) if p.id == outgoing.prompt_id)
    assert row.status == alerts.PromptStatus.ANSWERED
    assert (row.answer, row.answered_via) == ("not_so_good", "tablet")
    assert row.answers == {
        "pain": 6,
        "sleep": "badly",
        "_problems": ["mood: choose one of good, so_so, low"],
    }
    candidate = alerts.answer_alert(first)
    assert candidate is not None
    assert candidate.kind == "checkin_not_good"
    assert alerts.answer_alert(second) is None
    with pytest.raises(alerts.PromptNotFoundError):
        await service.answer(outgoing.command_id, "fine", via="tablet", resident_id=resident_id + 1)


async def test_after_a_downtime_open_windows_go_out_late_and_closed_ones_are_not_sent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock(utc(2027, 5, 3, 3, 0))  # 06:00 in Helsinki, Monday
    await resident_with_plan(sessions, clock.now, times=["08:00", "12:00", "20:00"], window_min=60)
    service = alerts.CheckinService(sessions, clock=clock)
    await service.plan_ahead(horizon=timedelta(hours=1))  # planned only up to 07:00
    # Down until Tuesday 12:20 Helsinki time: nothing ran in between.
    clock.now = utc(2027, 5, 4, 9, 20)
    await service.plan_ahead()
    closed = sorted(await service.close_due(), key=lambda c: c.slot_at)
    outgoing = await service.claim_due()

    def local(moment: datetime) -> str:
        return moment.astimezone(HELSINKI).strftime("%a %H:%M")

    assert [(local(c.slot_at), c.status) for c in closed] == [
        ("Mon 08:00", "not_sent"),
        ("Mon 12:00", "not_sent"),
        ("Mon 20:00", "not_sent"),
        ("Tue 08:00", "not_sent"),
    ]
    candidate = alerts.closed_prompt_alert(closed[0])
    assert (candidate.kind, candidate.severity) == ("checkin_not_sent", "high")
    assert candidate.title == "Check-in not sent while the system was down"
    # 12:00 is still open until 13:00: it goes out now, late.
    assert [p.payload["prompt_id"] for p in outgoing] == [f"p-{closed[-1].prompt_id + 1}"]


async def test_adherence_counts_on_time_late_missed_and_not_sent_apart(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    start = utc(2027, 5, 1, 3, 0)
    clock = Clock(start)
    resident_id, _ = await resident_with_plan(sessions, start, times=["08:00"], window_min=30)
    service = alerts.CheckinService(sessions, clock=clock)
    # Five days: answered after 2, 4 and 10 minutes, once late (after closing), once missed.
    behaviour = [2, 4, 10, 45, None]
    for day, minutes in enumerate(behaviour):
        clock.now = start + timedelta(days=day)
        await service.plan_ahead(horizon=timedelta(hours=12))
        clock.now = start + timedelta(days=day, hours=2)  # 08:00 Helsinki (EEST)
        (outgoing,) = await service.claim_due()
        await service.mark_sent([outgoing.prompt_id])
        if minutes is not None and minutes < 30:
            clock.now += timedelta(minutes=minutes)
            await service.answer(outgoing.command_id, "fine", via="tablet", resident_id=resident_id)
        clock.now = start + timedelta(days=day, hours=2, minutes=31)
        await service.close_due()
        if minutes is not None and minutes >= 30:
            clock.now = start + timedelta(days=day, hours=2, minutes=minutes)
            late = await service.answer(
                outgoing.command_id, "fine", via="mqtt", resident_id=resident_id
            )
            assert late.accepted
            assert late.late
    async with sessions() as session:
        week = await alerts.adherence(session, resident_id, clock.now, days=7)
    assert week.to_json() == {
        "days": 7,
        "prompts": 5,
        "answered_on_time": 3,
        "answered_late": 1,
        "missed": 1,
        "not_sent": 0,
        "share_on_time": 0.6,
        "median_response_s": 420.0,
    }
