"""Editing a team's escalation policy, and registering a browser for web push."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
from web.auth import identify

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
Alerts = NamedDependency[alerts.AlertService]


class TierIn(BaseModel):
    """One tier: who, how, and how long they have."""

    timeout_s: int = Field(ge=1, le=86400)
    recipients: list[dict[str, Any]]
    channels: list[str]


class PolicyIn(BaseModel):
    """A team's escalation policy."""

    name: str = Field(max_length=200)
    tiers: list[TierIn] = Field(min_length=1, max_length=10)
    last_tier_repeats: int = Field(default=3, ge=1, le=20)
    retrigger_after_min: int = Field(default=30, ge=0, le=1440)


class PushSubscriptionIn(BaseModel):
    """What a browser's PushManager.subscribe() gives."""

    endpoint: str = Field(max_length=1000)
    keys: dict[str, str]


class PoliciesController(Controller):
    """A team's escalation policy, saved only when every tier reaches somebody."""

    path = "/api"
    tags = ("escalation",)

    @put("/teams/{team_id:int}/escalation-policy", summary="Replace the team's policy")
    async def save(
        self,
        request: Request[Any, Any, Any],
        team_id: FromPath[int],
        data: JSONBody[PolicyIn],
        sessions: Sessions,
        alert_service: Alerts,
    ) -> dict[str, Any]:
        """Save, or 422 with every gap named in plain words (coordinators of the team)."""
        identity = await identify(request, sessions)
        spec = alerts.PolicySpec(
            name=data.name,
            tiers=[alerts.TierSpec(t.timeout_s, t.recipients, t.channels) for t in data.tiers],
            last_tier_repeats=data.last_tier_repeats,
            retrigger_after_min=data.retrigger_after_min,
        )
        policy = await alert_service.save_policy(identity.actor, team_id, spec)
        return {"id": policy.id, "name": policy.name, "tiers": len(spec.tiers)}

    @post("/push-subscriptions", summary="This browser accepts my alert notifications")
    async def subscribe(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PushSubscriptionIn],
        sessions: Sessions,
        alert_service: Alerts,
    ) -> dict[str, Any]:
        """Register the caller's browser for web push."""
        identity = await identify(request, sessions)
        row = await alert_service.subscribe_to_push(identity.actor, data.model_dump())
        return {"id": row.id}
