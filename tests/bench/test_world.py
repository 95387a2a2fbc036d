"""The builder every benchmark and the console's browser tests start from."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
from bench import StaffMember, Tier, add_on_call_team


async def test_the_team_has_somebody_on_call_round_the_clock_and_a_policy_without_gaps(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        built = await add_on_call_team(
            session,
            organisation="Fjallabyggð",
            team="Ólafsfjörður",
            staff=[
                StaffMember("helga", "Helga Björnsdóttir", password="correct horse 1"),
                StaffMember("siggi", "Sigurður Tækni", care.StaffRole.TECHNICIAN, language="en"),
            ],
            on_call="helga",
            policy="Day and night",
            tiers=[Tier(30, channels=("console", "sms")), Tier(60, recipients=("team",))],
            last_tier_repeats=0,
        )
        await session.commit()

    async with sessions() as session:
        helga = await session.get(care.StaffUser, built.staff_ids["helga"])
        siggi = await session.get(care.StaffUser, built.staff_ids["siggi"])
        assert helga is not None
        assert siggi is not None
        assert (helga.role, siggi.role) == (care.StaffRole.NURSE, care.StaffRole.TECHNICIAN)
        assert (helga.language, siggi.language) == ("is", "en")
        assert care.verify_secret(helga.password_hash, "correct horse 1")
        members = (
            await session.exec(
                select(care.TeamMembership.staff_id).where(
                    care.TeamMembership.team_id == built.team_id
                )
            )
        ).all()
        assert sorted(members) == sorted(built.staff_ids.values())
        shifts = list(
            (
                await session.exec(
                    select(alerts.OnCallShift).where(alerts.OnCallShift.team_id == built.team_id)
                )
            ).all()
        )
        assert {shift.staff_id for shift in shifts} == {built.staff_ids["helga"]}
        assert alerts.coverage_gaps(shifts) == []
        policy = await session.get(alerts.EscalationPolicy, built.policy_id)
        assert policy is not None
        assert (policy.team_id, policy.name, policy.last_tier_repeats) == (
            built.team_id,
            "Day and night",
            0,
        )
        tiers = list(
            (
                await session.exec(
                    select(alerts.EscalationTier)
                    .where(alerts.EscalationTier.policy_id == policy.id)
                    .order_by(col(alerts.EscalationTier.position))
                )
            ).all()
        )
        assert [(t.position, t.timeout_s, t.recipients, t.channels) for t in tiers] == [
            (1, 30, [{"kind": "on_call"}], ["console", "sms"]),
            (2, 60, [{"kind": "team"}], ["console"]),
        ]
