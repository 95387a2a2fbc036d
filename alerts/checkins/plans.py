"""Check-in and reminder plans as staff edit them, and the slots they make in local time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.errors import PlanError
from alerts.models import CheckinKind, CheckinPlan, CheckinPrompt, PromptStatus
from care import utcnow

# Planning writes prompts this far ahead; a sweep keeps the horizon moving.
PLAN_HORIZON = timedelta(hours=36)
# After a longer downtime, only the last week's slots are reported one by one.
MAX_LOOKBACK = timedelta(days=7)
# How long a sender holds a claimed prompt before another may send it again.
LEASE = timedelta(seconds=30)
CLAIM_BATCH = 1000

WELLBEING_ANSWERS = ("fine", "not_so_good", "call_me")
MEDICATION_ANSWERS = ("taken", "not_taken")
QUESTIONNAIRE_ANSWER = "done"
# An answer the service cannot read is kept as this, and the team is told.
UNCLEAR = "unclear"
# Answers that call for someone: an alert, or a place in the call queue.
ALERTING_ANSWERS = ("not_so_good", "call_me", "not_taken", UNCLEAR)

# Questions staff can put in a questionnaire or a check-in's follow-up, with their texts
# in the catalogues (context "question"). Staff may also write their own ("text").
BUILTIN_QUESTIONS: dict[str, dict[str, Any]] = {
    "pain": {"kind": "scale", "min": 0, "max": 10},
    "breathlessness": {"kind": "choice", "options": ["none", "some", "a_lot"]},
    "sleep": {"kind": "choice", "options": ["well", "so_so", "badly"]},
    "mood": {"kind": "choice", "options": ["good", "so_so", "low"]},
}
DEFAULT_FOLLOW_UP = ("pain", "breathlessness", "sleep", "mood")


def command_id(prompt_id: int, nudge: bool = False) -> str:
    """The id a prompt goes out under on MQTT and the tablet ("p-42"; its nudge "p-42.2")."""
    return f"p-{prompt_id}.2" if nudge else f"p-{prompt_id}"


def prompt_id_of(reference: str) -> int | None:
    """The prompt behind a command id from an answer; None when it is not one of ours."""
    body = reference.removeprefix("p-").split(".", 1)[0]
    if not reference.startswith("p-") or not body.isdigit() or len(body) > 18:
        return None
    return int(body)


def resident_zone(name: str) -> ZoneInfo:
    """The resident's time zone; Reykjavik when the stored name is not a zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Atlantic/Reykjavik")


def _parse_times(times: Iterable[str]) -> list[time]:
    """ "08:30" strings as times (validated when the plan was saved)."""
    parsed = []
    for value in times:
        hours, _, minutes = value.partition(":")
        parsed.append(time(int(hours), int(minutes)))
    return parsed


def slots_between(
    times: Sequence[str], weekdays: Sequence[int], zone: ZoneInfo, after: datetime, until: datetime
) -> list[datetime]:
    """The plan's slots in (after, until], as UTC instants, each local time once a day.

    A local time that does not exist on the spring-forward day (02:30 when clocks jump from
    02:00 to 03:00) is moved on by the gap; one that exists twice in autumn is taken the
    first time. Either way each time of day gives exactly one slot.
    """
    parsed = _parse_times(times)
    first: date = after.astimezone(zone).date() - timedelta(days=1)
    last: date = until.astimezone(zone).date() + timedelta(days=1)
    slots = set()
    day = first
    while day <= last:
        if day.isoweekday() in weekdays:
            for moment in parsed:
                # fold=0: the gap moves forward, the repeated hour counts its first pass.
                slot = datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)
                if after < slot <= until:
                    slots.add(slot)
        day += timedelta(days=1)
    return sorted(slots)


# --- Plans as staff edit them ---------------------------------------------------------


@dataclass(frozen=True)
class PlanSpec:
    """A plan as an editor submits it."""

    kind: str
    title: str
    times: list[str]
    weekdays: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])
    window_min: int = 30
    reminder_before_close_min: int = 10
    questions: list[dict[str, Any]] = field(default_factory=list)
    is_active: bool = True


def _time_problem(value: str) -> str | None:
    """Why a time of day is not "HH:MM", or None."""
    hours, sep, minutes = value.partition(":")
    ok = sep and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
    if not ok or not (0 <= int(hours) <= 23 and 0 <= int(minutes) <= 59):
        return f"{value!r} is not a time of day; write it like 08:30"
    return None


def question_problems(questions: Sequence[dict[str, Any]]) -> list[str]:
    """Mistakes in a list of questions, in words an editor understands."""
    problems = []
    seen: set[str] = set()
    for number, question in enumerate(questions, start=1):
        qid = question.get("id")
        if not isinstance(qid, str) or not qid.strip():
            problems.append(f"Question {number} needs an id")
            continue
        if qid in seen:
            problems.append(f"Question {number}: {qid!r} is asked twice")
        seen.add(qid)
        spec = {**BUILTIN_QUESTIONS.get(qid, {}), **question}
        kind = spec.get("kind")
        if qid not in BUILTIN_QUESTIONS and not str(spec.get("text", "")).strip():
            problems.append(f"Question {number} ({qid}): write the question's text")
        if kind == "scale":
            low, high = spec.get("min", 0), spec.get("max", 10)
            if not (isinstance(low, int) and isinstance(high, int) and low < high <= 100):
                problems.append(f"Question {number} ({qid}): the scale must run up from min to max")
        elif kind == "choice":
            options = spec.get("options")
            if not (isinstance(options, list) and 2 <= len(options) <= 6):
                problems.append(f"Question {number} ({qid}): give between 2 and 6 options")
        elif kind != "yes_no":
            problems.append(f"Question {number} ({qid}): the kind must be scale, choice or yes_no")
    return problems


def plan_problems(spec: PlanSpec) -> list[str]:
    """Everything wrong with a plan, in plain language; empty when it can be saved."""
    problems = []
    if spec.kind not in {kind.value for kind in CheckinKind}:
        problems.append("The kind must be wellbeing, medication or questionnaire")
    if not spec.title.strip():
        problems.append("Give the plan a title the resident will see")
    if len(spec.title) > 200:
        problems.append("The title is too long (200 characters at most)")
    if not spec.times:
        problems.append("Give at least one time of day")
    problems += [p for value in spec.times if (p := _time_problem(value))]
    if len(set(spec.times)) != len(spec.times):
        problems.append("The same time is given twice")
    if not spec.weekdays or any(d not in range(1, 8) for d in spec.weekdays):
        problems.append("Weekdays are numbers from 1 (Monday) to 7 (Sunday), at least one")
    if not 5 <= spec.window_min <= 240:
        problems.append("The resident needs between 5 minutes and 4 hours to answer")
    if not 0 <= spec.reminder_before_close_min < spec.window_min:
        problems.append("The reminder must come after the prompt, before the window closes")
    if spec.kind == CheckinKind.QUESTIONNAIRE and not spec.questions:
        problems.append("A questionnaire needs at least one question")
    problems += question_problems(spec.questions)
    valid_times = [t for t in spec.times if _time_problem(t) is None]
    ordered = sorted(_parse_times(valid_times))
    for earlier, later in pairwise(ordered):
        gap = (later.hour * 60 + later.minute) - (earlier.hour * 60 + earlier.minute)
        if gap < spec.window_min:
            problems.append(
                f"{earlier:%H:%M} and {later:%H:%M} are closer than the answer window; "
                "shorten the window or move a time"
            )
    return problems


async def save_plan(
    session: AsyncSession,
    resident_id: int,
    spec: PlanSpec,
    plan_id: int | None = None,
    now: datetime | None = None,
) -> CheckinPlan:
    """Create or change a plan; future prompts of a changed plan are planned anew."""
    problems = plan_problems(spec)
    if problems:
        raise PlanError(problems)
    now = now or utcnow()
    if plan_id is None:
        plan = CheckinPlan(resident_id=resident_id, kind=CheckinKind(spec.kind), title=spec.title)
    else:
        existing = await session.get(CheckinPlan, plan_id)
        if existing is None or existing.resident_id != resident_id:
            raise PlanError([f"There is no plan {plan_id} for this resident"])
        plan = existing
        # Prompts not yet due follow the new plan; those out already keep their window.
        await session.exec(
            update(CheckinPrompt)
            .where(
                col(CheckinPrompt.plan_id) == plan_id,
                col(CheckinPrompt.status) == PromptStatus.SCHEDULED,
                col(CheckinPrompt.slot_at) > now,
            )
            .values(status=PromptStatus.CANCELLED, closed_at=now)
        )
        # Cancelled rows keep their slot: a time moved back to where it was is planned anew.
        await session.exec(
            CheckinPrompt.__table__.delete().where(  # type: ignore[attr-defined]
                col(CheckinPrompt.plan_id) == plan_id,
                col(CheckinPrompt.status) == PromptStatus.CANCELLED,
                col(CheckinPrompt.slot_at) > now,
            )
        )
        plan.planned_until = now
    plan.kind = CheckinKind(spec.kind)
    plan.title = spec.title.strip()
    plan.times = sorted(spec.times)
    plan.weekdays = sorted(set(spec.weekdays))
    plan.window_min = spec.window_min
    plan.reminder_before_close_min = spec.reminder_before_close_min
    plan.questions = list(spec.questions)
    plan.is_active = spec.is_active
    plan.updated_at = now
    session.add(plan)
    await session.flush()
    return plan
