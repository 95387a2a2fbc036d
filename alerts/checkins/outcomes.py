"""Windows that close unanswered, and what the team hears of every outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, update
from sqlmodel import col, select

from alerts.changes import AlertCandidate
from alerts.checkins.answers import AnswerOutcome
from alerts.checkins.plans import ALERTING_ANSWERS, CLAIM_BATCH, UNCLEAR
from alerts.checkins.prompts import _aware, _ServiceBase
from alerts.claims import claimable
from alerts.models import AlertSeverity, CheckinKind, CheckinPrompt, PromptStatus

# How long a recorded outcome may wait for its alert before the sweep raises it anyway.
UNREPORTED_GRACE = timedelta(minutes=2)


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


class _Closing(_ServiceBase):
    """Closing windows, finding the next due moment, and recording what the team was told."""

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
            where = await claimable(session, candidates, col(CheckinPrompt.id))
            if where is None:
                return []
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

    async def unreported(
        self, grace: timedelta = UNREPORTED_GRACE
    ) -> tuple[list[ClosedPrompt], list[AnswerOutcome]]:
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


def settled_note(outcome: AnswerOutcome) -> str:
    """What a condition settled by an answer records as its outcome."""
    return f"the resident answered at {outcome.answered_at:%Y-%m-%d %H:%M} UTC"


def call_reason(outcome: AnswerOutcome) -> str | None:
    """Why the resident is put in the call queue after this answer; None when they are not."""
    return "Please call me" if outcome.accepted and outcome.answer == "call_me" else None


def call_not_taken_alert(
    resident_id: int, call_request_id: int | None, source: str
) -> AlertCandidate:
    """The alert for a call request nobody took in time: it climbs the tiers like any alarm."""
    return AlertCandidate(
        kind="call_request_not_taken",
        severity=AlertSeverity.HIGH,
        title="Call request not taken",
        dedupe_key=f"resident:{resident_id}:call_request",
        resident_id=resident_id,
        details={"call_request_id": call_request_id, "source": source},
    )
