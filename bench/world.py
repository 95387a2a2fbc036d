"""The world a run starts from: a care team with staff, one of them on call round the clock,
and an escalation policy, built one way for every benchmark and for the browser tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care


@dataclass(frozen=True)
class StaffMember:
    """A staff member to add to the team; an empty password draws a random one."""

    username: str
    full_name: str
    role: care.StaffRole = care.StaffRole.NURSE
    password: str = ""
    language: str = "is"
    phone: str | None = None


@dataclass(frozen=True)
class Tier:
    """One escalation tier: how long it waits, whom it calls (recipient kinds) and how."""

    timeout_s: int
    recipients: tuple[str, ...] = ("on_call",)
    channels: tuple[str, ...] = ("console",)


@dataclass(frozen=True)
class OnCallTeam:
    """What the builder made: the team, its policy and its staff's ids by username."""

    team_id: int
    policy_id: int
    staff_ids: Mapping[str, int]


async def add_on_call_team(
    session: AsyncSession,
    *,
    organisation: str,
    team: str,
    staff: Sequence[StaffMember],
    on_call: str,
    policy: str,
    tiers: Sequence[Tier],
    last_tier_repeats: int | None = None,
) -> OnCallTeam:
    """A care team of ``staff`` in ``organisation``, ``on_call`` on call all week, and a policy.

    The rows are flushed, not committed: the caller owns the transaction.
    """
    employer = await care.ensure_organisation(session, organisation)
    care_team = care.CareTeam(name=team)
    session.add(care_team)
    await session.flush()
    assert care_team.id is not None
    staff_ids: dict[str, int] = {}
    for member in staff:
        person = await care.add_staff_user(
            session,
            username=member.username,
            full_name=member.full_name,
            password=member.password or care.new_secret(),
            role=member.role,
            organisation=employer,
            language=member.language,
        )
        person.phone = member.phone
        assert person.id is not None
        staff_ids[member.username] = person.id
        session.add(care.TeamMembership(team_id=care_team.id, staff_id=person.id))
    session.add_all(
        alerts.OnCallShift(
            team_id=care_team.id,
            staff_id=staff_ids[on_call],
            weekday=weekday,
            starts="00:00",
            ends="00:00",
        )
        for weekday in range(1, 8)
    )
    escalation = alerts.EscalationPolicy(team_id=care_team.id, name=policy)
    if last_tier_repeats is not None:
        escalation.last_tier_repeats = last_tier_repeats
    session.add(escalation)
    await session.flush()
    assert escalation.id is not None
    session.add_all(
        alerts.EscalationTier(
            policy_id=escalation.id,
            position=position,
            timeout_s=tier.timeout_s,
            recipients=[{"kind": kind} for kind in tier.recipients],
            channels=list(tier.channels),
        )
        for position, tier in enumerate(tiers, start=1)
    )
    await session.flush()
    return OnCallTeam(team_id=care_team.id, policy_id=escalation.id, staff_ids=staff_ids)
