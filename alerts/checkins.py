"""Check-in and reminder plans turned into prompts, answers and missed check-ins.

A plan says when (local times and weekdays in the resident's own time zone). Planning
writes one prompt row per slot ahead of time; the unique (plan, slot) pair means a slot
never gets two prompts, whoever plans it and however often. Sending claims due rows with a
lease, so a sender that dies mid-way leaves the prompt to be sent again (under the same
command id, which devices act on once). Closing a window turns an unanswered prompt into a
missed one, and a prompt that never went out into "not sent": both are raised to the team
by the caller. An answer is accepted once, from whichever path brings it first.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, case, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.changes import AlertCandidate
from alerts.channels.texts import supported_language, translate
from alerts.errors import PlanError, PromptNotFoundError
from alerts.models import AlertSeverity, CheckinKind, CheckinPlan, CheckinPrompt, PromptStatus
from care import Resident, as_utc, utcnow

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


# --- What the service hands to the rest of Vaki ---------------------------------------


@dataclass(frozen=True)
class OutgoingPrompt:
    """A prompt (or its nudge before the window closes) to deliver to a resident's devices."""

    prompt_id: int
    resident_id: int
    nudge: bool
    payload: dict[str, Any]

    @property
    def command_id(self) -> str:
        """The id devices see."""
        return str(self.payload["id"])


@dataclass(frozen=True)
class ClosedPrompt:
    """A prompt whose window closed without an answer: missed, or never sent at all."""

    prompt_id: int
    resident_id: int
    plan_id: int
    kind: str
    slot_at: datetime
    closes_at: datetime
    closed_at: datetime
    status: PromptStatus


@dataclass(frozen=True)
class AnswerOutcome:
    """What an answer did: recorded (once), and what the team must now hear of it."""

    prompt_id: int
    resident_id: int
    kind: str
    answer: str
    answers: dict[str, Any]
    answered_at: datetime
    # False when another path answered first; nothing else happens then.
    accepted: bool
    # True when the window had already closed (a missed check-in answered after all).
    late: bool


@dataclass(frozen=True)
class Adherence:
    """How a resident kept to their plans over a period."""

    days: int
    prompts: int
    answered_on_time: int
    answered_late: int
    missed: int
    not_sent: int
    share_on_time: float | None
    median_response_s: float | None

    def to_json(self) -> dict[str, Any]:
        """As the console's API shows it."""
        return {
            "days": self.days,
            "prompts": self.prompts,
            "answered_on_time": self.answered_on_time,
            "answered_late": self.answered_late,
            "missed": self.missed,
            "not_sent": self.not_sent,
            "share_on_time": self.share_on_time,
            "median_response_s": self.median_response_s,
        }


def _question_for(language: str, question: dict[str, Any]) -> dict[str, Any]:
    """A question as the tablet shows it, with its text in the resident's language."""
    qid = str(question["id"])
    spec = {**BUILTIN_QUESTIONS.get(qid, {}), **question}
    text = str(spec.get("text") or translate(language, qid, "question"))
    shown: dict[str, Any] = {"id": qid, "kind": spec["kind"], "text": text}
    if spec["kind"] == "scale":
        shown |= {"min": spec.get("min", 0), "max": spec.get("max", 10)}
    elif spec["kind"] == "choice":
        shown["options"] = [
            {"value": option, "label": translate(language, f"{qid}:{option}", "option")}
            for option in spec["options"]
        ]
    return shown


def _choices(language: str, values: Sequence[str]) -> list[dict[str, str]]:
    """Answer buttons with their labels."""
    return [{"value": v, "label": translate(language, v, "answer")} for v in values]


def prompt_payload(
    prompt: CheckinPrompt, plan: CheckinPlan, resident: Resident, nudge: bool
) -> dict[str, Any]:
    """The command a device gets (and the tablet page shows) for one prompt."""
    assert prompt.id is not None
    language = supported_language(resident.language)
    name = resident.preferred_name or resident.full_name.split(" ", 1)[0]
    payload: dict[str, Any] = {
        "id": command_id(prompt.id, nudge),
        "type": "reminder" if prompt.kind == CheckinKind.MEDICATION else "checkin_prompt",
        "prompt_id": command_id(prompt.id),
        "kind": prompt.kind,
        "lang": language,
        "title": plan.title,
        "closes_at": prompt.closes_at.isoformat().replace("+00:00", "Z"),
        "repeat": nudge,
    }
    if prompt.kind == CheckinKind.WELLBEING:
        payload["text"] = translate(language, "Good day, {name}. How are you today?").format(
            name=name
        )
        payload["answers"] = _choices(language, WELLBEING_ANSWERS)
        follow_up = plan.questions or [{"id": qid} for qid in DEFAULT_FOLLOW_UP]
        payload["follow_up"] = [_question_for(language, q) for q in follow_up]
    elif prompt.kind == CheckinKind.MEDICATION:
        payload["text"] = translate(language, "{name}, it is time for your medicine.").format(
            name=name
        )
        payload["answers"] = _choices(language, MEDICATION_ANSWERS)
    else:
        payload["text"] = translate(language, "{name}, a few short questions for you.").format(
            name=name
        )
        payload["questions"] = [_question_for(language, q) for q in plan.questions]
    return payload


def clean_answers(
    questions: Sequence[dict[str, Any]], answers: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The answers that fit their questions, and what was wrong with the others."""
    kept: dict[str, Any] = {}
    problems = []
    known = {
        str(q.get("id")): {**BUILTIN_QUESTIONS.get(str(q.get("id")), {}), **q} for q in questions
    }
    for qid, value in answers.items():
        spec = known.get(qid)
        if spec is None:
            problems.append(f"{qid}: not one of the questions")
        elif spec["kind"] == "scale":
            low, high = spec.get("min", 0), spec.get("max", 10)
            if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
                kept[qid] = value
            else:
                problems.append(f"{qid}: give a whole number from {low} to {high}")
        elif spec["kind"] == "choice":
            if value in spec["options"]:
                kept[qid] = value
            else:
                problems.append(f"{qid}: choose one of {', '.join(spec['options'])}")
        elif isinstance(value, bool):
            kept[qid] = value
        else:
            problems.append(f"{qid}: answer yes or no")
    return kept, problems


def _is_postgres(session: AsyncSession) -> bool:
    """Whether the session talks to PostgreSQL (row locks) or SQLite (one writer)."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


class CheckinService:
    """Plans prompts, claims due ones, closes windows, records answers: all in the database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Work through ``sessions``; ``clock`` is injectable for tests."""
        self.sessions = sessions
        self.clock = clock

    # Planning --------------------------------------------------------------------------

    async def plan_ahead(self, horizon: timedelta = PLAN_HORIZON) -> int:
        """Write the prompts of every active plan up to the horizon; return how many are new.

        Planning goes on from where it last stopped, so the slots of a downtime are written
        too (their windows have closed, and closing them reports them as not sent).
        """
        now = self.clock()
        until = now + horizon
        created = 0
        async with self.sessions() as session, session.begin():
            rows = (
                await session.exec(
                    select(CheckinPlan, Resident.time_zone)
                    .join(Resident, col(Resident.id) == col(CheckinPlan.resident_id))
                    .where(
                        col(CheckinPlan.is_active),
                        col(Resident.is_active),
                        or_(
                            col(CheckinPlan.planned_until).is_(None),
                            col(CheckinPlan.planned_until) < until,
                        ),
                    )
                )
            ).all()
            values: list[dict[str, Any]] = []
            for plan, zone_name in rows:
                assert plan.id is not None
                start = max(plan.planned_until or plan.created_at, now - MAX_LOOKBACK)
                window = timedelta(minutes=plan.window_min)
                remind = window - timedelta(minutes=plan.reminder_before_close_min)
                for slot in slots_between(
                    plan.times, plan.weekdays, resident_zone(zone_name), start, until
                ):
                    values.append(
                        {
                            "plan_id": plan.id,
                            "resident_id": plan.resident_id,
                            "kind": plan.kind,
                            "slot_at": slot,
                            "remind_at": slot + remind if plan.reminder_before_close_min else None,
                            "closes_at": slot + window,
                            "status": PromptStatus.SCHEDULED,
                            "answers": {},
                        }
                    )
                plan.planned_until = until
                session.add(plan)
            for chunk in range(0, len(values), 2000):
                created += await self._insert_new(session, values[chunk : chunk + 2000])
        return created

    @staticmethod
    async def _insert_new(session: AsyncSession, values: list[dict[str, Any]]) -> int:
        """Insert prompts whose slot is not taken yet; a taken slot stays as it is."""
        if not values:
            return 0
        dialect_insert = pg_insert if _is_postgres(session) else sqlite_insert
        statement = (
            dialect_insert(CheckinPrompt)
            .values(values)
            .on_conflict_do_nothing(index_elements=["plan_id", "slot_at"])
            .returning(col(CheckinPrompt.id))
        )
        result = await session.exec(statement)
        return len(result.all())

    # Sending ---------------------------------------------------------------------------

    async def claim_due(self, nudges: bool = False) -> list[OutgoingPrompt]:
        """Take due prompts (or due nudges) for sending, under a lease; with their payloads."""
        now = self.clock()
        free = or_(
            col(CheckinPrompt.claimed_until).is_(None), col(CheckinPrompt.claimed_until) < now
        )
        if nudges:
            due = and_(
                col(CheckinPrompt.status) == PromptStatus.SENT,
                col(CheckinPrompt.remind_at) <= now,
                col(CheckinPrompt.reminded_at).is_(None),
                col(CheckinPrompt.closes_at) > now,
                free,
            )
        else:
            due = and_(
                col(CheckinPrompt.status) == PromptStatus.SCHEDULED,
                col(CheckinPrompt.slot_at) <= now,
                col(CheckinPrompt.closes_at) > now,
                free,
            )
        async with self.sessions() as session, session.begin():
            candidates = (
                select(CheckinPrompt.id)
                .where(due)
                .order_by(col(CheckinPrompt.slot_at))
                .limit(CLAIM_BATCH)
            )
            if _is_postgres(session):
                ids = list((await session.exec(candidates.with_for_update(skip_locked=True))).all())
                if not ids:
                    return []
                where = col(CheckinPrompt.id).in_(ids)
            else:
                where = col(CheckinPrompt.id).in_(candidates.scalar_subquery())
            claimed = (
                await session.exec(
                    update(CheckinPrompt)
                    .where(where, due)
                    .values(claimed_until=now + LEASE)
                    .returning(col(CheckinPrompt.id))
                )
            ).all()
            if not claimed:
                return []
            rows = (
                await session.exec(
                    select(CheckinPrompt, CheckinPlan, Resident)
                    .join(CheckinPlan, col(CheckinPlan.id) == col(CheckinPrompt.plan_id))
                    .join(Resident, col(Resident.id) == col(CheckinPrompt.resident_id))
                    .where(col(CheckinPrompt.id).in_([row[0] for row in claimed]))
                )
            ).all()
        return [
            OutgoingPrompt(
                prompt_id=prompt.id,
                resident_id=prompt.resident_id,
                nudge=nudges,
                payload=prompt_payload(prompt, plan, resident, nudges),
            )
            for prompt, plan, resident in rows
            if prompt.id is not None
        ]

    async def mark_sent(self, prompt_ids: Sequence[int], nudges: bool = False) -> None:
        """Record that these prompts (or nudges) reached the broker; release their lease."""
        if not prompt_ids:
            return
        now = self.clock()
        values: dict[str, Any] = {"claimed_until": None}
        if nudges:
            values["reminded_at"] = now
            statuses = [PromptStatus.SENT, PromptStatus.ANSWERED]
        else:
            values |= {"sent_at": now, "status": PromptStatus.SENT}
            statuses = [PromptStatus.SCHEDULED]
        async with self.sessions() as session, session.begin():
            await session.exec(
                update(CheckinPrompt)
                .where(
                    col(CheckinPrompt.id).in_(list(prompt_ids)),
                    col(CheckinPrompt.status).in_(statuses),
                )
                .values(**values)
            )

    async def release(self, prompt_ids: Sequence[int]) -> None:
        """Give back prompts that could not be sent now, for the next sweep to try again."""
        if not prompt_ids:
            return
        async with self.sessions() as session, session.begin():
            await session.exec(
                update(CheckinPrompt)
                .where(col(CheckinPrompt.id).in_(list(prompt_ids)))
                .values(claimed_until=None)
            )

    # Closing windows -------------------------------------------------------------------

    async def close_due(self) -> list[ClosedPrompt]:
        """Close every window that has passed without an answer: missed, or not sent."""
        now = self.clock()
        due = and_(
            col(CheckinPrompt.status).in_([PromptStatus.SCHEDULED, PromptStatus.SENT]),
            col(CheckinPrompt.closes_at) <= now,
            # A prompt being sent right now is closed once its sender is done with it.
            or_(col(CheckinPrompt.claimed_until).is_(None), col(CheckinPrompt.claimed_until) < now),
        )
        async with self.sessions() as session, session.begin():
            candidates = select(CheckinPrompt.id).where(due).limit(CLAIM_BATCH * 5)
            if _is_postgres(session):
                ids = list((await session.exec(candidates.with_for_update(skip_locked=True))).all())
                if not ids:
                    return []
                where = col(CheckinPrompt.id).in_(ids)
            else:
                where = col(CheckinPrompt.id).in_(candidates.scalar_subquery())
            result = await session.exec(
                update(CheckinPrompt)
                .where(where, due)
                .values(
                    status=case(
                        (
                            col(CheckinPrompt.status) == PromptStatus.SENT,
                            PromptStatus.MISSED.value,
                        ),
                        else_=PromptStatus.NOT_SENT.value,
                    ),
                    closed_at=now,
                    claimed_until=None,
                )
                .returning(
                    col(CheckinPrompt.id),
                    col(CheckinPrompt.resident_id),
                    col(CheckinPrompt.plan_id),
                    col(CheckinPrompt.kind),
                    col(CheckinPrompt.slot_at),
                    col(CheckinPrompt.closes_at),
                    col(CheckinPrompt.status),
                )
            )
            rows = result.all()
        return [
            ClosedPrompt(
                prompt_id=row[0],
                resident_id=row[1],
                plan_id=row[2],
                kind=str(row[3]),
                slot_at=_aware(row[4]),
                closes_at=_aware(row[5]),
                closed_at=now,
                status=PromptStatus(row[6]),
            )
            for row in rows
        ]

    async def next_wake(self) -> datetime | None:
        """The next moment something is due: a slot, a nudge or a window closing."""
        now = self.clock()
        async with self.sessions() as session:
            moments = [
                (
                    await session.exec(
                        select(func.min(column)).where(
                            col(CheckinPrompt.status).in_(statuses), column > now, *extra
                        )
                    )
                ).one()
                for column, statuses, extra in (
                    (col(CheckinPrompt.slot_at), [PromptStatus.SCHEDULED], ()),
                    (
                        col(CheckinPrompt.remind_at),
                        [PromptStatus.SENT],
                        (col(CheckinPrompt.reminded_at).is_(None),),
                    ),
                    (
                        col(CheckinPrompt.closes_at),
                        [PromptStatus.SCHEDULED, PromptStatus.SENT],
                        (),
                    ),
                )
            ]
        found = [_aware(m) for m in moments if m is not None]
        return min(found) if found else None

    # Answers ---------------------------------------------------------------------------

    async def answer(
        self,
        reference: str,
        answer: str | None,
        answers: dict[str, Any] | None = None,
        *,
        via: str,
        resident_id: int | None = None,
        at: datetime | None = None,
    ) -> AnswerOutcome:
        """Record the answer to a prompt once; a second answer (from the other path) is not.

        ``resident_id``, when given, must own the prompt (a tablet answers only its own).
        Raises PromptNotFoundError for a reference that is not a prompt of that resident.
        """
        prompt_id = prompt_id_of(reference)
        if prompt_id is None:
            raise PromptNotFoundError(f"{reference!r} is not a prompt id")
        now = self.clock()
        answered_at = min(at, now) if at is not None else now
        async with self.sessions() as session, session.begin():
            row = (
                await session.exec(
                    select(CheckinPrompt, CheckinPlan)
                    .join(CheckinPlan, col(CheckinPlan.id) == col(CheckinPrompt.plan_id))
                    .where(col(CheckinPrompt.id) == prompt_id)
                )
            ).first()
            if row is None or (resident_id is not None and row[0].resident_id != resident_id):
                raise PromptNotFoundError(f"there is no prompt {reference!r}")
            prompt, plan = row
            if prompt.sent_at is not None:
                answered_at = max(answered_at, prompt.sent_at)
            value, kept = _read_answer(prompt.kind, plan, answer, answers or {})
            late = prompt.status in {PromptStatus.MISSED, PromptStatus.NOT_SENT}
            answerable = [
                PromptStatus.SCHEDULED,
                PromptStatus.SENT,
                PromptStatus.MISSED,
                PromptStatus.NOT_SENT,
            ]
            done = (
                await session.exec(
                    update(CheckinPrompt)
                    .where(
                        col(CheckinPrompt.id) == prompt_id,
                        col(CheckinPrompt.answered_at).is_(None),
                        col(CheckinPrompt.status).in_(answerable),
                    )
                    .values(
                        status=PromptStatus.ANSWERED,
                        answered_at=answered_at,
                        answered_via=via[:16],
                        answer=value,
                        answers=kept,
                        closed_at=func.coalesce(col(CheckinPrompt.closed_at), now),
                        claimed_until=None,
                        # What the answer calls for is still to be told to the team.
                        reported_at=None,
                    )
                    .returning(col(CheckinPrompt.id))
                )
            ).first()
        return AnswerOutcome(
            prompt_id=prompt_id,
            resident_id=prompt.resident_id,
            kind=prompt.kind,
            answer=value,
            answers=kept,
            answered_at=answered_at,
            accepted=done is not None,
            late=late,
        )

    # Telling the team ------------------------------------------------------------------

    async def mark_reported(self, prompt_ids: Sequence[int]) -> None:
        """The team has been told what these prompts' outcomes call for."""
        if not prompt_ids:
            return
        now = self.clock()
        async with self.sessions() as session, session.begin():
            await session.exec(
                update(CheckinPrompt)
                .where(col(CheckinPrompt.id).in_(list(prompt_ids)))
                .values(reported_at=now)
            )

    async def unreported(self, grace: timedelta) -> tuple[list[ClosedPrompt], list[AnswerOutcome]]:
        """Outcomes older than ``grace`` that the team was never told of (a crash between
        recording and telling): closed windows, and answers that call for someone."""
        now = self.clock()
        cutoff = now - grace
        async with self.sessions() as session:
            closed = (
                await session.exec(
                    select(CheckinPrompt)
                    .where(
                        col(CheckinPrompt.status).in_([PromptStatus.MISSED, PromptStatus.NOT_SENT]),
                        col(CheckinPrompt.reported_at).is_(None),
                        col(CheckinPrompt.closed_at) < cutoff,
                    )
                    .limit(CLAIM_BATCH)
                )
            ).all()
            answered = (
                await session.exec(
                    select(CheckinPrompt)
                    .where(
                        col(CheckinPrompt.status) == PromptStatus.ANSWERED,
                        col(CheckinPrompt.answer).in_(ALERTING_ANSWERS),
                        col(CheckinPrompt.reported_at).is_(None),
                        col(CheckinPrompt.answered_at) < cutoff,
                    )
                    .limit(CLAIM_BATCH)
                )
            ).all()
        return (
            [
                ClosedPrompt(
                    prompt_id=p.id,
                    resident_id=p.resident_id,
                    plan_id=p.plan_id,
                    kind=p.kind,
                    slot_at=p.slot_at,
                    closes_at=p.closes_at,
                    closed_at=p.closed_at or now,
                    status=p.status,
                )
                for p in closed
                if p.id is not None
            ],
            [
                AnswerOutcome(
                    prompt_id=p.id,
                    resident_id=p.resident_id,
                    kind=p.kind,
                    answer=p.answer or UNCLEAR,
                    answers=p.answers,
                    answered_at=p.answered_at or now,
                    accepted=True,
                    late=(p.answered_at or now) > p.closes_at,
                )
                for p in answered
                if p.id is not None
            ],
        )

    # Reading ---------------------------------------------------------------------------

    async def open_prompts(self, resident_id: int) -> list[dict[str, Any]]:
        """The prompts a resident can answer now, as the tablet shows them (oldest first)."""
        now = self.clock()
        async with self.sessions() as session:
            rows = (
                await session.exec(
                    select(CheckinPrompt, CheckinPlan, Resident)
                    .join(CheckinPlan, col(CheckinPlan.id) == col(CheckinPrompt.plan_id))
                    .join(Resident, col(Resident.id) == col(CheckinPrompt.resident_id))
                    .where(
                        col(CheckinPrompt.resident_id) == resident_id,
                        col(CheckinPrompt.status) == PromptStatus.SENT,
                        col(CheckinPrompt.closes_at) > now,
                    )
                    .order_by(col(CheckinPrompt.slot_at))
                )
            ).all()
        return [prompt_payload(prompt, plan, resident, False) for prompt, plan, resident in rows]


def _aware(value: Any) -> datetime:
    """A timestamp from a raw row (SQLite gives naive UTC) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return as_utc(value)


def _read_answer(
    kind: str, plan: CheckinPlan, answer: str | None, answers: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The answer as stored: a known value or "unclear", and the answers that fit."""
    if kind == CheckinKind.WELLBEING:
        value = answer if answer in WELLBEING_ANSWERS else UNCLEAR
        questions = plan.questions or [{"id": qid} for qid in DEFAULT_FOLLOW_UP]
    elif kind == CheckinKind.MEDICATION:
        value = answer if answer in MEDICATION_ANSWERS else "taken" if answer is None else UNCLEAR
        questions = []
    else:
        value = QUESTIONNAIRE_ANSWER
        questions = plan.questions
    kept, problems = clean_answers(questions, answers)
    if problems:
        kept["_problems"] = problems
    return value, kept


async def adherence(session: AsyncSession, resident_id: int, now: datetime, days: int) -> Adherence:
    """Share of prompts answered on time and the median response time over ``days`` days.

    Only closed prompts count: one still open can be neither on time nor late yet. Prompts
    the service failed to send are counted apart and not held against the resident.
    """
    rows = (
        await session.exec(
            select(CheckinPrompt).where(
                col(CheckinPrompt.resident_id) == resident_id,
                col(CheckinPrompt.slot_at) > now - timedelta(days=days),
                col(CheckinPrompt.status).in_(
                    [PromptStatus.ANSWERED, PromptStatus.MISSED, PromptStatus.NOT_SENT]
                ),
                or_(
                    col(CheckinPrompt.status) != PromptStatus.ANSWERED,
                    col(CheckinPrompt.answered_at).is_not(None),
                ),
            )
        )
    ).all()
    on_time = late = missed = not_sent = 0
    responses = []
    for prompt in rows:
        if prompt.status == PromptStatus.NOT_SENT:
            not_sent += 1
        elif prompt.status == PromptStatus.MISSED:
            missed += 1
        elif prompt.answered_at is not None and prompt.answered_at <= prompt.closes_at:
            on_time += 1
        else:
            late += 1
        if prompt.answered_at is not None and prompt.sent_at is not None:
            responses.append((prompt.answered_at - prompt.sent_at).total_seconds())
    counted = on_time + late + missed
    return Adherence(
        days=days,
        prompts=len(rows),
        answered_on_time=on_time,
        answered_late=late,
        missed=missed,
        not_sent=not_sent,
        share_on_time=round(on_time / counted, 3) if counted else None,
        median_response_s=round(statistics.median(responses), 1) if responses else None,
    )


# --- What the team hears --------------------------------------------------------------


def _missed_key(resident_id: int, kind: str) -> str:
    """The condition of a resident's unanswered prompts of one kind (repeats count up)."""
    what = "medication_missed" if kind == CheckinKind.MEDICATION else "checkin_missed"
    return f"resident:{resident_id}:{what}"


def closed_prompt_alert(closed: ClosedPrompt) -> AlertCandidate:
    """The alert for a window that closed unanswered, or for a prompt that never went out."""
    medication = closed.kind == CheckinKind.MEDICATION
    details = {
        "prompt_id": closed.prompt_id,
        "plan_id": closed.plan_id,
        "slot_at": closed.slot_at.isoformat(),
        "closes_at": closed.closes_at.isoformat(),
        "closed_at": closed.closed_at.isoformat(),
    }
    if closed.status == PromptStatus.NOT_SENT:
        # Nobody knows how the resident is: someone should ask, as for a missed check-in.
        return AlertCandidate(
            kind="checkin_not_sent",
            severity=AlertSeverity.NORMAL if medication else AlertSeverity.HIGH,
            title="Check-in not sent while the system was down",
            dedupe_key=f"resident:{closed.resident_id}:checkin_not_sent",
            resident_id=closed.resident_id,
            details=details,
        )
    return AlertCandidate(
        kind="medication_missed" if medication else "checkin_missed",
        severity=AlertSeverity.NORMAL if medication else AlertSeverity.HIGH,
        title="Missed medicine reminder" if medication else "Missed check-in",
        dedupe_key=_missed_key(closed.resident_id, closed.kind),
        resident_id=closed.resident_id,
        details=details,
    )


# Answers the team must hear of: answer → (alert kind, title); all of normal severity.
ANSWER_ALERTS = {
    "not_so_good": ("checkin_not_good", "Not feeling well today"),
    UNCLEAR: ("checkin_unclear", "Check-in answer not understood"),
    "not_taken": ("medication_not_taken", "Medicine not taken"),
}


def answer_alert(outcome: AnswerOutcome) -> AlertCandidate | None:
    """The alert an answer calls for: "not so good", an unreadable answer, medicine not taken.

    "Please call me" goes to the call queue instead, and "I'm fine" needs nobody.
    """
    found = ANSWER_ALERTS.get(outcome.answer)
    if not outcome.accepted or found is None:
        return None
    kind, title = found
    return AlertCandidate(
        kind=kind,
        severity=AlertSeverity.NORMAL,
        title=title,
        dedupe_key=f"resident:{outcome.resident_id}:{kind}",
        resident_id=outcome.resident_id,
        details={
            "prompt_id": outcome.prompt_id,
            "answer": outcome.answer,
            "answers": outcome.answers,
        },
    )


def settled_conditions(outcome: AnswerOutcome) -> list[str]:
    """Alert conditions an accepted answer settles: the resident has been heard from."""
    if not outcome.accepted:
        return []
    keys = [f"resident:{outcome.resident_id}:checkin_not_sent"]
    if outcome.kind == CheckinKind.MEDICATION:
        keys.append(_missed_key(outcome.resident_id, outcome.kind))
    else:
        keys.append(_missed_key(outcome.resident_id, CheckinKind.WELLBEING))
    return keys
