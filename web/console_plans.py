"""A resident's check-in plans in the console: the list, and a form to add or change one.

Coordinators, nurses and specialists of the resident's team edit; the rest of the team
reads. A plan the domain refuses comes back with every problem next to the form, and with
what was typed still in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
from web.auth import visible_resident
from web.console_view import Viewer, back_to, console_page, refuse_technician, viewer_of
from web.console_words import in_words, weekday_names
from web.i18n import gettext as _

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]

KINDS = tuple(kind.value for kind in alerts.CheckinKind)
BUILTIN_IDS = tuple(alerts.BUILTIN_QUESTIONS)
# The id of the editor's own yes/no question.
OWN_QUESTION = "own"


@dataclass
class PlanForm:
    """The plan form as shown and as typed (strings, so a mistake is shown as typed)."""

    kind: str = "wellbeing"
    title: str = ""
    times: str = "09:00"
    weekdays: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    window_min: str = "30"
    reminder_min: str = "10"
    builtin: list[str] = field(default_factory=list)
    own_question: str = ""
    is_active: bool = True
    # Questions the form has no field for (made through the API): kept as they are.
    other_questions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of_plan(cls, plan: alerts.CheckinPlan) -> PlanForm:
        """The form filled in from a stored plan."""
        ids = [str(q.get("id")) for q in plan.questions]
        own = next((q for q in plan.questions if q.get("id") == OWN_QUESTION), None)
        return cls(
            kind=str(plan.kind),
            title=plan.title,
            times=", ".join(plan.times),
            weekdays=list(plan.weekdays),
            window_min=str(plan.window_min),
            reminder_min=str(plan.reminder_before_close_min),
            builtin=[qid for qid in BUILTIN_IDS if qid in ids],
            own_question=str(own.get("text", "")) if own else "",
            is_active=plan.is_active,
            other_questions=[
                q for q in plan.questions if q.get("id") not in (*BUILTIN_IDS, OWN_QUESTION)
            ],
        )

    @classmethod
    def of_post(cls, form: FormMultiDict) -> PlanForm:
        """The form as the editor sent it."""
        weekdays = [int(d) for d in form.getall("weekday", []) if str(d).isdigit()]
        return cls(
            kind=str(form.get("kind", "")),
            title=str(form.get("title", "")),
            times=str(form.get("times", "")),
            weekdays=sorted(set(weekdays)),
            window_min=str(form.get("window_min", "")).strip(),
            reminder_min=str(form.get("reminder_min", "")).strip(),
            builtin=[q for q in BUILTIN_IDS if q in form.getall("question", [])],
            own_question=str(form.get("own_question", "")).strip(),
            is_active=form.get("is_active") == "on",
        )

    def questions(self) -> list[dict[str, Any]]:
        """The questions as the domain stores them."""
        chosen = [{"id": qid, **alerts.BUILTIN_QUESTIONS[qid]} for qid in self.builtin]
        if self.own_question:
            chosen.append({"id": OWN_QUESTION, "kind": "yes_no", "text": self.own_question})
        return chosen + self.other_questions

    def spec(self) -> tuple[alerts.PlanSpec, list[str]]:
        """The plan for the domain, and the form's own problems (numbers that are not).

        A number that is not one stands in as a harmless default, so the domain can still
        name every other problem at once.
        """
        problems = []
        numbers: dict[str, int] = {}
        for name, value, default, problem in (
            ("window", self.window_min, 30, _("Write the answer window in whole minutes.")),
            ("reminder", self.reminder_min, 0, _("Write the reminder in whole minutes.")),
        ):
            try:
                numbers[name] = int(value)
            except ValueError:
                numbers[name] = default
                problems.append(problem)
        times = [t.strip() for t in self.times.replace(";", ",").split(",") if t.strip()]
        spec = alerts.PlanSpec(
            kind=self.kind,
            title=self.title,
            times=times,
            weekdays=self.weekdays,
            window_min=numbers["window"],
            reminder_before_close_min=numbers["reminder"],
            questions=self.questions(),
            is_active=self.is_active,
        )
        return spec, problems


def _may_edit(viewer: Viewer) -> bool:
    """Coordinators, nurses and specialists change plans (care's role table says who)."""
    return care.may(viewer.identity.role, care.Permission.EDIT_PLANS)


def _refuse_reader(viewer: Viewer) -> None:
    """403 for a team member whose role may read plans but not change them."""
    if not _may_edit(viewer):
        raise PermissionDeniedException(_("Your role may read check-in plans but not change them."))


async def _resident(
    session: AsyncSession, viewer: Viewer, resident_id: int, context: str
) -> care.Resident:
    """The resident of the caller's teams, with the read logged."""
    return await visible_resident(
        session, viewer.identity, resident_id, action="console.plans", context=context
    )


def _form_page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    resident: care.Resident,
    form: PlanForm,
    *,
    plan_id: int | None,
    problems: list[str] | None = None,
) -> Template:
    """The add-or-change form, with the problems of the last try when there were any."""
    return console_page(
        request,
        viewer,
        "console_plan_form.html",
        section="residents",
        resident=resident,
        form=form,
        plan_id=plan_id,
        problems=problems or [],
        kinds=KINDS,
        builtin_ids=BUILTIN_IDS,
        weekdays=list(enumerate(weekday_names(), start=1)),
        status_code=HTTP_400_BAD_REQUEST if problems else 200,
    )


@get("/console/residents/{resident_id:int}/plans", include_in_schema=False)
async def plans_list(
    request: Request[Any, Any, Any], resident_id: FromPath[int], sessions: Sessions
) -> Template:
    """The resident's check-in and reminder plans."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"resident {resident_id}")
    async with sessions() as session:
        resident = await _resident(session, viewer, resident_id, "check-in plans")
        plans = (
            await session.exec(
                select(alerts.CheckinPlan)
                .where(alerts.CheckinPlan.resident_id == resident_id)
                .order_by(col(alerts.CheckinPlan.id))
            )
        ).all()
        await session.commit()
    return console_page(
        request,
        viewer,
        "console_plans.html",
        section="residents",
        resident=resident,
        plans=plans,
        may_edit=_may_edit(viewer),
        weekdays=weekday_names(),
        notice=request.query_params.get("notice"),
    )


@get("/console/residents/{resident_id:int}/plans/new", include_in_schema=False)
async def new_plan_form(
    request: Request[Any, Any, Any], resident_id: FromPath[int], sessions: Sessions
) -> Template:
    """An empty plan form."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"resident {resident_id}")
    async with sessions() as session:
        resident = await _resident(session, viewer, resident_id, "new check-in plan form")
        await session.commit()
    _refuse_reader(viewer)
    return _form_page(request, viewer, resident, PlanForm(), plan_id=None)


@get("/console/residents/{resident_id:int}/plans/{plan_id:int}", include_in_schema=False)
async def edit_plan_form(
    request: Request[Any, Any, Any],
    resident_id: FromPath[int],
    plan_id: FromPath[int],
    sessions: Sessions,
) -> Template | Redirect:
    """A plan's form, filled in."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"resident {resident_id}")
    async with sessions() as session:
        resident = await _resident(session, viewer, resident_id, f"check-in plan {plan_id}")
        plan = await session.get(alerts.CheckinPlan, plan_id)
        await session.commit()
    _refuse_reader(viewer)
    if plan is None or plan.resident_id != resident_id:
        return back_to(f"/console/residents/{resident_id}/plans")
    return _form_page(request, viewer, resident, PlanForm.of_plan(plan), plan_id=plan_id)


async def _save(
    request: Request[Any, Any, Any],
    sessions: async_sessionmaker[AsyncSession],
    resident_id: int,
    plan_id: int | None,
) -> Template | Redirect:
    """Save the posted plan, or show the form again with every problem in words."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"resident {resident_id}")
    form = PlanForm.of_post(await request.form())
    async with sessions() as session:
        resident = await _resident(
            session, viewer, resident_id, f"edit check-in plan {plan_id or 'new'}"
        )
        _refuse_reader(viewer)
        if plan_id is not None:
            stored = await session.get(alerts.CheckinPlan, plan_id)
            if stored is not None and stored.resident_id == resident_id:
                form.other_questions = PlanForm.of_plan(stored).other_questions
        spec, problems = form.spec()
        if problems:
            problems += [in_words(problem) for problem in alerts.plan_problems(spec)]
        else:
            try:
                await alerts.save_plan(session, resident_id, spec, plan_id)
            except alerts.PlanError as err:
                problems = [in_words(problem) for problem in err.problems]
        # A refused plan wrote nothing (the domain checks before it writes): the commit
        # keeps only the logged read.
        await session.commit()
        if problems:
            return _form_page(request, viewer, resident, form, plan_id=plan_id, problems=problems)
    return back_to(f"/console/residents/{resident_id}/plans?notice=plan_saved")


@post("/console/residents/{resident_id:int}/plans", include_in_schema=False)
async def add_plan(
    request: Request[Any, Any, Any], resident_id: FromPath[int], sessions: Sessions
) -> Template | Redirect:
    """A new plan."""
    return await _save(request, sessions, resident_id, None)


@post("/console/residents/{resident_id:int}/plans/{plan_id:int}", include_in_schema=False)
async def change_plan(
    request: Request[Any, Any, Any],
    resident_id: FromPath[int],
    plan_id: FromPath[int],
    sessions: Sessions,
) -> Template | Redirect:
    """A changed plan; prompts not yet due follow it."""
    return await _save(request, sessions, resident_id, plan_id)


PLAN_ROUTES: list[ControllerRouterHandler] = [
    plans_list,
    new_plan_form,
    edit_plan_form,
    add_plan,
    change_plan,
]
