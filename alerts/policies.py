"""Saving a care team's escalation policy: refused while any tier would reach nobody."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.errors import InvalidSubscriptionError, PolicyGapError
from alerts.models import EscalationPolicy, EscalationTier, PushSubscription
from alerts.oncall import policy_gaps

CHANNELS = frozenset({"console", "email", "sms", "push"})
RECIPIENTS = frozenset({"on_call", "staff", "team", "relatives"})


@dataclass(frozen=True)
class TierSpec:
    """One tier as an editor submits it."""

    timeout_s: int
    recipients: list[dict[str, Any]]
    channels: list[str]


@dataclass(frozen=True)
class PolicySpec:
    """A whole policy as an editor submits it; tiers in order."""

    name: str
    tiers: list[TierSpec]
    last_tier_repeats: int = 3
    retrigger_after_min: int = 30
    problems: list[str] = field(default_factory=list)


def _shape_problems(spec: PolicySpec) -> list[str]:
    """Mistakes visible without the database: unknown channels, odd timeouts, ..."""
    problems = []
    if not spec.name.strip():
        problems.append("the policy needs a name")
    if spec.last_tier_repeats < 1:
        problems.append("the last tier must be tried at least once")
    for position, tier in enumerate(spec.tiers, start=1):
        if tier.timeout_s < 30:
            problems.append(f"Tier {position}: give people at least 30 seconds to answer")
        unknown = set(tier.channels) - CHANNELS
        if unknown:
            problems.append(f"Tier {position}: unknown channel {sorted(unknown)[0]!r}")
        for recipient in tier.recipients:
            if recipient.get("kind") not in RECIPIENTS:
                problems.append(f"Tier {position}: unknown recipient {recipient.get('kind')!r}")
            elif recipient.get("kind") == "staff" and not isinstance(recipient.get("id"), int):
                problems.append(f"Tier {position}: say which staff member (their id)")
    return problems


async def save_policy(session: AsyncSession, team_id: int, spec: PolicySpec) -> EscalationPolicy:
    """Replace the team's policy with ``spec``, or raise PolicyGapError naming every gap."""
    tiers = [
        EscalationTier(
            policy_id=0,
            position=position,
            timeout_s=tier.timeout_s,
            recipients=tier.recipients,
            channels=tier.channels,
        )
        for position, tier in enumerate(spec.tiers, start=1)
    ]
    problems = _shape_problems(spec) or await policy_gaps(session, team_id, tiers)
    if problems:
        raise PolicyGapError(problems)
    policy = (
        await session.exec(
            select(EscalationPolicy)
            .where(EscalationPolicy.team_id == team_id)
            .order_by(col(EscalationPolicy.id))
        )
    ).first()
    if policy is None:
        policy = EscalationPolicy(team_id=team_id, name=spec.name)
    policy.name = spec.name
    policy.last_tier_repeats = spec.last_tier_repeats
    policy.retrigger_after_min = spec.retrigger_after_min
    session.add(policy)
    await session.flush()
    assert policy.id is not None
    await session.exec(delete(EscalationTier).where(col(EscalationTier.policy_id) == policy.id))
    for tier in tiers:
        tier.policy_id = policy.id
        session.add(tier)
    await session.flush()
    return policy


async def add_push_subscription(
    session: AsyncSession, staff_id: int, subscription: dict[str, Any]
) -> PushSubscription:
    """Remember a browser that accepts web push for a staff member (once per endpoint)."""
    endpoint = str(subscription.get("endpoint", ""))
    keys = subscription.get("keys")
    if (
        not endpoint.startswith("https://")
        or not isinstance(keys, dict)
        or not {"p256dh", "auth"} <= set(keys)
    ):
        raise InvalidSubscriptionError("a push subscription needs an https endpoint and its keys")
    existing = (
        await session.exec(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    ).first()
    row = existing or PushSubscription(staff_id=staff_id, endpoint=endpoint, subscription={})
    row.staff_id, row.subscription = staff_id, subscription
    session.add(row)
    await session.flush()
    return row
