"""Who is on call now, who a tier reaches, and whether a policy leaves anyone unreachable."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.models import EscalationTier, OnCallOverride, OnCallShift, PushSubscription
from care import CareTeam, Contact, StaffUser, TeamMembership

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Recipient:
    """A person a tier reaches, with the addresses each channel needs."""

    kind: str  # "staff" or "contact"
    id: int
    name: str
    language: str
    addresses: dict[str, list[str]]  # channel → addresses ("console" → ["console"])

    @property
    def key(self) -> str:
        """Stable identity for idempotency keys."""
        return f"{self.kind}{self.id}"


def _minutes(clock: str) -> int:
    """Minutes after midnight of "HH:MM"."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def shift_covers(shift: OnCallShift, local: datetime) -> bool:
    """True when the weekly shift covers the local time (overnight shifts included)."""
    start, end = _minutes(shift.starts), _minutes(shift.ends)
    minute = local.hour * 60 + local.minute
    weekday = local.isoweekday()
    if start < end:
        return shift.weekday == weekday and start <= minute < end
    # Overnight: from start on its weekday until end on the next day (24 h when equal).
    yesterday = (weekday - 2) % 7 + 1
    return (shift.weekday == weekday and minute >= start) or (
        shift.weekday == yesterday and minute < end
    )


async def on_call_now(session: AsyncSession, team_id: int, now: datetime) -> list[StaffUser]:
    """The team's on-call staff at ``now``: overrides win over the weekly rota."""
    overrides = (
        await session.exec(
            select(StaffUser)
            .join(OnCallOverride, col(OnCallOverride.staff_id) == col(StaffUser.id))
            .where(
                OnCallOverride.team_id == team_id,
                col(OnCallOverride.starts_at) <= now,
                col(OnCallOverride.ends_at) > now,
                col(StaffUser.is_active),
            )
        )
    ).all()
    if overrides:
        return list(overrides)
    team = await session.get(CareTeam, team_id)
    zone = ZoneInfo(team.time_zone if team else "Atlantic/Reykjavik")
    local = now.astimezone(zone)
    shifts = (await session.exec(select(OnCallShift).where(OnCallShift.team_id == team_id))).all()
    staff_ids = {shift.staff_id for shift in shifts if shift_covers(shift, local)}
    if not staff_ids:
        return []
    found = await session.exec(
        select(StaffUser).where(col(StaffUser.id).in_(staff_ids), col(StaffUser.is_active))
    )
    return list(found.all())


async def staff_recipient(session: AsyncSession, staff: StaffUser) -> Recipient:
    """A staff member and where each channel reaches them."""
    assert staff.id is not None
    pushes = (
        await session.exec(
            select(PushSubscription.endpoint, PushSubscription.subscription).where(
                PushSubscription.staff_id == staff.id
            )
        )
    ).all()
    addresses: dict[str, list[str]] = {
        "console": ["console"],
        "email": [staff.email] if staff.email else [],
        "sms": [staff.phone] if staff.phone else [],
        "push": [json.dumps(subscription) for _endpoint, subscription in pushes],
    }
    return Recipient("staff", staff.id, staff.full_name, staff.language, addresses)


async def tier_recipients(
    session: AsyncSession,
    tier: EscalationTier,
    *,
    team_id: int | None,
    resident_id: int | None,
    now: datetime,
) -> list[Recipient]:
    """Everyone ``tier`` reaches at ``now``, each once."""
    people: dict[str, Recipient] = {}
    for target in tier.recipients:
        for recipient in await _resolve(session, target, team_id, resident_id, now):
            people.setdefault(recipient.key, recipient)
    return list(people.values())


async def _resolve(
    session: AsyncSession,
    target: dict[str, Any],
    team_id: int | None,
    resident_id: int | None,
    now: datetime,
) -> list[Recipient]:
    """The people one recipient entry of a tier stands for."""
    kind = target.get("kind")
    staff: list[StaffUser] = []
    if kind == "on_call" and team_id is not None:
        staff = await on_call_now(session, team_id, now)
    elif kind == "staff":
        member = await session.get(StaffUser, int(target["id"]))
        staff = [member] if member is not None and member.is_active else []
    elif kind == "team" and team_id is not None:
        staff = list(
            (
                await session.exec(
                    select(StaffUser)
                    .join(TeamMembership, col(TeamMembership.staff_id) == col(StaffUser.id))
                    .where(TeamMembership.team_id == team_id, col(StaffUser.is_active))
                )
            ).all()
        )
    elif kind == "relatives" and resident_id is not None:
        contacts = (
            await session.exec(
                select(Contact).where(
                    Contact.resident_id == resident_id, col(Contact.receives_alerts)
                )
            )
        ).all()
        return [
            Recipient(
                "contact",
                contact.id or 0,
                contact.name,
                contact.language,
                {
                    "email": [contact.email] if contact.email else [],
                    "sms": [contact.phone] if contact.phone else [],
                },
            )
            for contact in contacts
        ]
    return [await staff_recipient(session, member) for member in staff]


def coverage_gaps(shifts: list[OnCallShift]) -> list[str]:
    """The times of the week no shift covers, as "Sunday 02:00–08:00" (15-minute steps)."""
    monday = datetime(2024, 1, 1)  # noqa: DTZ001 (a weekday grid, not a moment)
    gaps: list[str] = []
    start: datetime | None = None
    step = timedelta(minutes=15)
    moment = monday
    while moment < monday + timedelta(days=7):
        covered = any(shift_covers(shift, moment) for shift in shifts)
        if not covered and start is None:
            start = moment
        if covered and start is not None:
            gaps.append(_span(start, moment))
            start = None
        moment += step
    if start is not None:
        gaps.append(_span(start, moment))
    return gaps


def _span(start: datetime, end: datetime) -> str:
    """A gap in words: "Sunday 02:00–08:00", "Monday 22:00–Tuesday 08:00", "all week"."""
    if end - start >= timedelta(days=7):
        return "all week"
    day = WEEKDAYS[start.weekday()]
    if end.time() == time(0) and end - start <= timedelta(days=1):
        return f"{day} {start:%H:%M}–24:00"
    if end.date() == start.date():
        return f"{day} {start:%H:%M}–{end:%H:%M}"
    return f"{day} {start:%H:%M}–{WEEKDAYS[end.weekday()]} {end:%H:%M}"


async def policy_gaps(
    session: AsyncSession, team_id: int, tiers: list[EscalationTier]
) -> list[str]:
    """Plain-language reasons a policy would leave an alert with nobody to tell."""
    gaps: list[str] = []
    if not tiers:
        return ["the policy has no tiers"]
    for tier in sorted(tiers, key=lambda t: t.position):
        label = f"Tier {tier.position}"
        if not tier.channels:
            gaps.append(f"{label} has no channel")
            continue
        if not tier.recipients:
            gaps.append(f"{label} names nobody")
            continue
        for target in tier.recipients:
            kind = target.get("kind")
            if kind == "on_call":
                shifts = list(
                    (
                        await session.exec(
                            select(OnCallShift).where(OnCallShift.team_id == team_id)
                        )
                    ).all()
                )
                uncovered = coverage_gaps(shifts)
                if uncovered:
                    shown = ", ".join(uncovered[:3]) + (" and more" if len(uncovered) > 3 else "")
                    gaps.append(f"{label}: nobody is on call on {shown}")
            elif kind == "staff":
                member = await session.get(StaffUser, int(target.get("id", 0)))
                if member is None or not member.is_active:
                    gaps.append(f"{label}: staff member {target.get('id')} does not exist")
                    continue
                reachable = await staff_recipient(session, member)
                if not any(reachable.addresses.get(channel) for channel in tier.channels):
                    channels = " or ".join(tier.channels)
                    gaps.append(f"{label}: {member.full_name} cannot be reached by {channels}")
            elif kind not in ("team", "relatives"):
                gaps.append(f"{label}: unknown recipient {kind!r}")
    return gaps
