"""Answers from a tablet or an MQTT event: read, checked against their questions, recorded once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select

from alerts.checkins.plans import (
    BUILTIN_QUESTIONS,
    DEFAULT_FOLLOW_UP,
    MEDICATION_ANSWERS,
    QUESTIONNAIRE_ANSWER,
    UNCLEAR,
    WELLBEING_ANSWERS,
    prompt_id_of,
)
from alerts.checkins.prompts import _ServiceBase
from alerts.errors import PromptNotFoundError
from alerts.models import CheckinKind, CheckinPlan, CheckinPrompt, PromptStatus
from devices import CommittedEvent


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


class _Answering(_ServiceBase):
    """Recording answers."""

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


# --- Answers that come as device events ----------------------------------------------------

# Events from a resident's devices that the check-ins act on.
CALL_REQUEST_EVENT = "call_request"
RESIDENT_EVENTS = frozenset({"checkin_answer", "reminder_ack", CALL_REQUEST_EVENT})
# A device time further off than this from the arrival is not believed.
_AHEAD_LIMIT = timedelta(minutes=1)
_OFFLINE_LIMIT = timedelta(hours=6)


@dataclass(frozen=True)
class EventAnswer:
    """The answer a device event gives to a prompt."""

    reference: str
    answer: str | None
    answers: dict[str, Any] | None
    at: datetime


def event_answer(event: CommittedEvent) -> EventAnswer:
    """What a ``checkin_answer`` or ``reminder_ack`` event answers; a confirmed reminder is
    "taken"."""
    answer = event.data.get("answer") if event.type == "checkin_answer" else "taken"
    answers = event.data.get("answers")
    return EventAnswer(
        reference=str(event.data.get("prompt_id", "")),
        answer=answer if isinstance(answer, str) else None,
        answers=answers if isinstance(answers, dict) else None,
        at=answered_at(event),
    )


def answered_at(event: CommittedEvent) -> datetime:
    """When the resident answered: the device's time when it is believable (a tablet that
    was offline sends its answer later), else when the answer arrived."""
    ts = event.device_ts
    if ts is not None and -_AHEAD_LIMIT <= event.received_at - ts <= _OFFLINE_LIMIT:
        return ts
    return event.received_at
