"""Check-in plans and adherence of a resident, for staff of the resident's care teams."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
from web.auth import identify

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]


class PlanBody(BaseModel):
    """A check-in plan as an editor submits it."""

    kind: str = Field(examples=["wellbeing"])
    title: str = Field(max_length=200, examples=["How are you today?"])
    times: list[str] = Field(max_length=12, examples=[["09:30"]])
    weekdays: list[int] = Field(default=[1, 2, 3, 4, 5, 6, 7], max_length=7)
    window_min: int = 30
    reminder_before_close_min: int = 10
    questions: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    is_active: bool = True

    def spec(self) -> alerts.PlanSpec:
        """As the alerts domain takes it."""
        return alerts.PlanSpec(**self.model_dump())


def _plan_json(plan: alerts.CheckinPlan) -> dict[str, Any]:
    """A plan as the API shows it."""
    return {
        "id": plan.id,
        "resident_id": plan.resident_id,
        "kind": plan.kind,
        "title": plan.title,
        "times": plan.times,
        "weekdays": plan.weekdays,
        "window_min": plan.window_min,
        "reminder_before_close_min": plan.reminder_before_close_min,
        "questions": plan.questions,
        "is_active": plan.is_active,
        "updated_at": plan.updated_at.isoformat(),
    }


class CheckinsController(Controller):
    """A resident's check-in plans (read and edit) and how they keep to them."""

    path = "/api/residents/{resident_id:int}"
    tags = ("check-ins",)

    @get("/checkin-plans", summary="The resident's check-in and reminder plans")
    async def plans(
        self, request: Request[Any, Any, Any], sessions: Sessions, resident_id: FromPath[int]
    ) -> list[dict[str, Any]]:
        """Every plan of the resident."""
        identity = await identify(request, sessions)
        found = await alerts.CheckinPlanService(sessions).plans(identity.actor, resident_id)
        return [_plan_json(plan) for plan in found]

    @post("/checkin-plans", summary="Add a plan", status_code=201)
    async def add_plan(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        resident_id: FromPath[int],
        data: JSONBody[PlanBody],
    ) -> dict[str, Any]:
        """A new plan; 422 with every problem in plain words when it cannot be saved."""
        return await self._save(request, sessions, resident_id, data, None)

    @put("/checkin-plans/{plan_id:int}", summary="Change a plan")
    async def change_plan(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        resident_id: FromPath[int],
        plan_id: FromPath[int],
        data: JSONBody[PlanBody],
    ) -> dict[str, Any]:
        """Change a plan; prompts not yet due follow the new plan."""
        return await self._save(request, sessions, resident_id, data, plan_id)

    @staticmethod
    async def _save(
        request: Request[Any, Any, Any],
        sessions: async_sessionmaker[AsyncSession],
        resident_id: int,
        data: PlanBody,
        plan_id: int | None,
    ) -> dict[str, Any]:
        """Validate and store a plan for an editor of the resident's team."""
        identity = await identify(request, sessions)
        plan = await alerts.CheckinPlanService(sessions).save(
            identity.actor, resident_id, data.spec(), plan_id
        )
        return _plan_json(plan)

    @get("/adherence", summary="Share answered on time and median response, 7 and 30 days")
    async def adherence(
        self, request: Request[Any, Any, Any], sessions: Sessions, resident_id: FromPath[int]
    ) -> dict[str, Any]:
        """How the resident kept to their check-ins and reminders."""
        identity = await identify(request, sessions)
        periods = await alerts.CheckinPlanService(sessions).adherence(
            identity.actor, resident_id, (7, 30)
        )
        return {"resident_id": resident_id, "periods": [p.to_json() for p in periods]}
