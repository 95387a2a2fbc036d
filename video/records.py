"""The consultation record: who may take part, who did, when, and how good the call was.

Kept in the consultation's own columns: ``participants`` (a list of entries, one per person:
``{"who": "staff:7", "invited_by": 3, "joined_at": ..., "left_at": ..., "joins": 2}``),
``started_at``/``ended_at``, and ``quality`` (the summary of the call).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

import care
from video.errors import NotParticipantError
from video.models import Consultation, ConsultationStatus
from video.tokens import participant_id


async def consultation_of(session: AsyncSession, consultation_id: int) -> Consultation:
    """The consultation, or NotFoundError."""
    consultation = await session.get(Consultation, consultation_id)
    if consultation is None:
        raise care.NotFoundError(f"no consultation {consultation_id}")
    return consultation


def _entry(consultation: Consultation, who: str) -> dict[str, Any] | None:
    """The participants entry of ``who``, if any."""
    return next((e for e in consultation.participants if e.get("who") == who), None)


def is_invited(consultation: Consultation, staff_id: int) -> bool:
    """True when a staff member was invited to the consultation (a specialist, say)."""
    entry = _entry(consultation, participant_id("staff", staff_id))
    return entry is not None and "invited_by" in entry


async def staff_participant(
    session: AsyncSession, consultation: Consultation, staff_id: int, team_ids: frozenset[int]
) -> str:
    """The staff member as a participant: on one of the resident's teams, or invited."""
    resident_teams = await care.resident_team_ids(session, consultation.resident_id)
    if resident_teams & team_ids or is_invited(consultation, staff_id):
        return participant_id("staff", staff_id)
    raise NotParticipantError(f"staff {staff_id} is not a participant of this consultation")


def resident_participant(consultation: Consultation, resident_id: int) -> str:
    """The resident as a participant: only the resident the consultation is with."""
    if consultation.resident_id != resident_id:
        raise NotParticipantError("this consultation is with another resident")
    return participant_id("resident", resident_id)


def _updated(consultation: Consultation, who: str, **changes: Any) -> None:
    """Merge ``changes`` into the entry of ``who`` (a new list, so the JSON column is saved)."""
    entries = [dict(e) for e in consultation.participants]
    entry = next((e for e in entries if e.get("who") == who), None)
    if entry is None:
        entry = {"who": who}
        entries.append(entry)
    entry.update(changes)
    consultation.participants = entries


def record_invitation(
    consultation: Consultation, staff_id: int, *, invited_by: int, now: datetime
) -> None:
    """Note that ``staff_id`` may join, and who asked them."""
    _updated(
        consultation,
        participant_id("staff", staff_id),
        invited_by=invited_by,
        invited_at=now.isoformat(),
    )


def record_join(consultation: Consultation, who: str, now: datetime) -> None:
    """A participant joined: the call is active from its first join."""
    entry = _entry(consultation, who) or {}
    _updated(
        consultation,
        who,
        joined_at=entry.get("joined_at", now.isoformat()),
        joins=int(entry.get("joins", 0)) + 1,
    )
    if consultation.started_at is None:
        consultation.started_at = now
    consultation.ended_at = None
    consultation.status = ConsultationStatus.ACTIVE


def record_leave(consultation: Consultation, who: str, now: datetime) -> None:
    """A participant left."""
    _updated(consultation, who, left_at=now.isoformat())


def record_end(consultation: Consultation, now: datetime, quality: dict[str, Any]) -> None:
    """The last participant left: the call ended; keep its duration and quality."""
    consultation.ended_at = now
    consultation.status = ConsultationStatus.ENDED
    started = consultation.started_at or now
    consultation.quality = {**quality, "duration_s": round((now - started).total_seconds(), 1)}
