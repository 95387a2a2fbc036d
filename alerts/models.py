"""Alerts, their timeline, escalation policies, check-in plans and notifications."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlmodel import Field, Index, SQLModel

from care import BigIntId, UTCDateTime, utcnow


class AlertSeverity(StrEnum):
    """How urgent an alert is; critical ones come first in every queue."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    TECHNICAL = "technical"


class AlertStatus(StrEnum):
    """Where an alert is in its life: open → acknowledged → resolved."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(SQLModel, table=True):
    """Something a person must look at: a panic, a fall, a missed check-in, a silent device."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_status_severity", "status", "severity"),)

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", index=True)
    device_id: str | None = Field(default=None, foreign_key="device.id", max_length=64)
    team_id: int | None = Field(default=None, foreign_key="care_team.id", index=True)
    kind: str = Field(max_length=48)
    severity: AlertSeverity = Field(sa_type=String(16))
    status: AlertStatus = Field(default=AlertStatus.OPEN, sa_type=String(16))
    title: str = Field(max_length=300)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Repeats of the same condition raise the count instead of opening a new alert.
    count: int = Field(default=1)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_by: int | None = Field(default=None, foreign_key="staff_user.id")
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: int | None = Field(default=None, foreign_key="staff_user.id")
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, sa_type=Text)


class AlertTimelineEntry(SQLModel, table=True):
    """One change in an alert's life, in order: raised, repeated, notified, acknowledged, ..."""

    __tablename__ = "alert_timeline"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True, ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    kind: str = Field(max_length=32)
    actor_staff_id: int | None = Field(default=None, foreign_key="staff_user.id")
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class EscalationPolicy(SQLModel, table=True):
    """How a care team's alerts climb through tiers of staff until someone acknowledges."""

    __tablename__ = "escalation_policy"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_escalation_policy_team_name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="care_team.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    # The last tier is repeated this many times before the policy is exhausted.
    last_tier_repeats: int = Field(default=3)
    # An acknowledged alert not resolved within this many minutes escalates again.
    retrigger_after_min: int = Field(default=30)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EscalationTier(SQLModel, table=True):
    """One tier of a policy: who is told, through which channels, and how long they have."""

    __tablename__ = "escalation_tier"
    __table_args__ = (
        UniqueConstraint("policy_id", "position", name="uq_escalation_tier_position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    policy_id: int = Field(foreign_key="escalation_policy.id", ondelete="CASCADE")
    position: int
    timeout_s: int = Field(default=120)
    # [{"kind": "on_call"} | {"kind": "staff", "id": 3} | {"kind": "team"} | {"kind": "relatives"}]
    recipients: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    channels: list[str] = Field(default_factory=list, sa_type=JSON)


class CheckinKind(StrEnum):
    """What a planned prompt asks of the resident."""

    WELLBEING = "wellbeing"
    MEDICATION = "medication"
    QUESTIONNAIRE = "questionnaire"


class CheckinPlan(SQLModel, table=True):
    """When a resident is asked how they are or reminded of their medication."""

    __tablename__ = "checkin_plan"

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True, ondelete="CASCADE")
    kind: CheckinKind = Field(sa_type=String(16))
    title: str = Field(max_length=200)
    # Local times ("08:30") in the resident's time zone, and ISO weekdays (1 = Monday).
    times: list[str] = Field(default_factory=list, sa_type=JSON)
    weekdays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], sa_type=JSON)
    window_min: int = Field(default=30)
    reminder_before_close_min: int = Field(default=10)
    questions: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NotificationStatus(StrEnum):
    """Delivery state of one notification."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(SQLModel, table=True):
    """One message to one recipient about one alert, delivered at most once by its key."""

    __tablename__ = "notification"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=16)
    recipient_kind: str = Field(max_length=16)
    recipient_id: int | None = Field(default=None)
    address: str | None = Field(default=None, max_length=255)
    language: str = Field(default="is", max_length=8)
    # (alert, tier, attempt, recipient, channel): the same step is never delivered twice.
    idempotency_key: str = Field(max_length=200, unique=True)
    status: NotificationStatus = Field(default=NotificationStatus.PENDING, sa_type=String(16))
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
