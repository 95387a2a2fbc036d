"""Video consultations between a resident and care staff."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, String, Text, text
from sqlmodel import Field, Index, SQLModel

from care import UTCDateTime, utcnow


class ConsultationKind(StrEnum):
    """Booked in advance or asked for by the resident."""

    SCHEDULED = "scheduled"
    ON_DEMAND = "on_demand"


class ConsultationStatus(StrEnum):
    """Where a consultation is in its life."""

    BOOKED = "booked"
    WAITING = "waiting"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"
    MISSED = "missed"


class Consultation(SQLModel, table=True):
    """A video call with a resident: who, when, how long, how good; never its media."""

    __tablename__ = "consultation"

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True, ondelete="CASCADE")
    team_id: int | None = Field(default=None, foreign_key="care_team.id")
    kind: ConsultationKind = Field(sa_type=String(16))
    status: ConsultationStatus = Field(default=ConsultationStatus.BOOKED, sa_type=String(16))
    scheduled_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="staff_user.id")
    participants: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    quality: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    notes: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CallRequestStatus(StrEnum):
    """A resident's wish to be called: waiting in the queue, taken by someone, or done."""

    WAITING = "waiting"
    TAKEN = "taken"
    DONE = "done"
    CANCELLED = "cancelled"


class CallRequest(SQLModel, table=True):
    """ "Please call me": one entry in the care team's call queue."""

    __tablename__ = "call_request"
    __table_args__ = (
        # One waiting request per resident: asking twice does not queue twice.
        Index(
            "uq_call_request_waiting",
            "resident_id",
            unique=True,
            sqlite_where=text("status = 'waiting'"),
            postgresql_where=text("status = 'waiting'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True, ondelete="CASCADE")
    # Where the wish came from: a check-in answer, the tablet's call button, a device event.
    source: str = Field(max_length=32)
    reason: str = Field(default="", max_length=300)
    status: CallRequestStatus = Field(default=CallRequestStatus.WAITING, sa_type=String(16))
    taken_by: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    taken_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when nobody took the call in time and the team's escalation was started.
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RoomTokenUse(SQLModel, table=True):
    """A room token that has been used: it opens a room once (kept until it expires)."""

    __tablename__ = "room_token_use"

    nonce: str = Field(max_length=32, primary_key=True)
    consultation_id: int = Field(sa_type=BigInteger)
    participant: str = Field(max_length=64)
    used_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
