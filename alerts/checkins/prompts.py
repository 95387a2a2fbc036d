"""Prompts as the tablet shows them, written ahead of time from the plans."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.channels.texts import supported_language, translate
from alerts.checkins.plans import (
    BUILTIN_QUESTIONS,
    DEFAULT_FOLLOW_UP,
    MAX_LOOKBACK,
    MEDICATION_ANSWERS,
    PLAN_HORIZON,
    WELLBEING_ANSWERS,
    command_id,
    resident_zone,
    slots_between,
)
from alerts.models import CheckinKind, CheckinPlan, CheckinPrompt, PromptStatus
from care import Resident, as_utc


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


def _is_postgres(session: AsyncSession) -> bool:
    """Whether the session talks to PostgreSQL (row locks) or SQLite (one writer)."""
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _aware(value: Any) -> datetime:
    """A timestamp from a raw row (SQLite gives naive UTC) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return as_utc(value)


class _ServiceBase:
    """What every part of ``CheckinService`` works through."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]


class _Planning(_ServiceBase):
    """Writing prompts ahead, and reading the ones a resident can answer now."""

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
