"""On-call: who is on call now (rota, overnight shifts, overrides) and policy gaps in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care


async def _team(session: AsyncSession) -> tuple[int, care.StaffUser, care.StaffUser]:
    org = await care.ensure_organisation(session, "Fjallabyggð")
    team = care.CareTeam(name="Team", time_zone="Europe/Helsinki")
    session.add(team)
    await session.flush()
    day = await care.add_staff_user(
        session,
        username="day",
        full_name="Dagný",
        password="x" * 12,
        role=care.StaffRole.HOME_CARE_WORKER,
        organisation=org,
        email="day@vaki.example",
    )
    night = await care.add_staff_user(
        session,
        username="night",
        full_name="Nótt Nurse",
        password="x" * 12,
        role=care.StaffRole.NURSE,
        organisation=org,
    )
    assert team.id is not None
    return team.id, day, night


async def test_rota_overnight_and_override(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        team_id, day, night = await _team(session)
        assert day.id is not None
        assert night.id is not None
        # Monday: day 08:00-20:00, night 20:00 until 08:00 on Tuesday (team time, Helsinki).
        session.add_all(
            [
                alerts.OnCallShift(
                    team_id=team_id, staff_id=day.id, weekday=1, starts="08:00", ends="20:00"
                ),
                alerts.OnCallShift(
                    team_id=team_id, staff_id=night.id, weekday=1, starts="20:00", ends="08:00"
                ),
            ]
        )
        await session.commit()
        # 2026-11-23 is a Monday; Helsinki is UTC+2 in November.
        monday_noon = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
        tuesday_0300 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
        tuesday_0900 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
        assert [s.username for s in await alerts.on_call_now(session, team_id, monday_noon)] == [
            "day"
        ]
        assert [s.username for s in await alerts.on_call_now(session, team_id, tuesday_0300)] == [
            "night"
        ]
        assert await alerts.on_call_now(session, team_id, tuesday_0900) == []
        # Day is sick: an override puts Night on call instead.
        session.add(
            alerts.OnCallOverride(
                team_id=team_id,
                staff_id=night.id,
                starts_at=monday_noon - timedelta(hours=1),
                ends_at=monday_noon + timedelta(hours=1),
                note="Dagný sick",
            )
        )
        await session.commit()
        assert [s.username for s in await alerts.on_call_now(session, team_id, monday_noon)] == [
            "night"
        ]


async def test_policy_gaps_are_named_in_plain_words(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        team_id, day, night = await _team(session)
        assert day.id is not None
        assert night.id is not None
        for weekday in range(1, 8):
            session.add(
                alerts.OnCallShift(
                    team_id=team_id, staff_id=day.id, weekday=weekday, starts="08:00", ends="22:00"
                )
            )
        await session.commit()
        tiers = [
            alerts.EscalationTier(
                policy_id=0, position=1, recipients=[{"kind": "on_call"}], channels=["console"]
            ),
            alerts.EscalationTier(
                policy_id=0,
                position=2,
                recipients=[{"kind": "staff", "id": night.id}],
                channels=["sms", "email"],
            ),
            alerts.EscalationTier(policy_id=0, position=3, recipients=[], channels=["email"]),
        ]
        gaps = await alerts.policy_gaps(session, team_id, tiers)
        assert (
            gaps[0]
            == "Tier 1: nobody is on call on Monday 00:00–08:00, Monday 22:00–08:00 (next day)"
            or gaps[0].startswith("Tier 1: nobody is on call on Monday 00:00–08:00")
        )
        assert "Tier 2: Nótt Nurse cannot be reached by sms or email" in gaps
        assert "Tier 3 names nobody" in gaps
        # Cover the nights and give the nurse a phone: no gaps left.
        for weekday in range(1, 8):
            session.add(
                alerts.OnCallShift(
                    team_id=team_id,
                    staff_id=night.id,
                    weekday=weekday,
                    starts="22:00",
                    ends="08:00",
                )
            )
        night.phone = "+354 800 0000"
        session.add(night)
        await session.commit()
        tiers[2].recipients = [{"kind": "team"}]
        assert await alerts.policy_gaps(session, team_id, tiers) == []


def test_coverage_gaps_of_an_empty_rota_is_the_whole_week() -> None:
    assert alerts.coverage_gaps([]) == ["all week"]
