"""Alerts, their timeline, escalation policies, check-in plans and notifications."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint, text
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


class EscalationState(StrEnum):
    """Whether an alert is still climbing through its policy's tiers."""

    NONE = "none"
    ACTIVE = "active"
    STOPPED = "stopped"
    EXHAUSTED = "exhausted"


class Alert(SQLModel, table=True):
    """Something a person must look at: a panic, a fall, a missed check-in, a silent device."""

    __tablename__ = "alert"
    __table_args__ = (
        Index("ix_alert_status_severity", "status", "severity"),
        # One open alert per condition: repeats count up instead of piling up.
        Index(
            "uq_alert_open_condition",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", index=True)
    device_id: str | None = Field(default=None, foreign_key="device.id", max_length=64)
    team_id: int | None = Field(default=None, foreign_key="care_team.id", index=True)
    kind: str = Field(max_length=48)
    # The condition this alert stands for, e.g. "resident:7:panic" or "device:scale-1:silent".
    dedupe_key: str = Field(max_length=160)
    severity: AlertSeverity = Field(sa_type=String(16))
    status: AlertStatus = Field(default=AlertStatus.OPEN, sa_type=String(16))
    policy_id: int | None = Field(default=None, foreign_key="escalation_policy.id")
    escalation: EscalationState = Field(default=EscalationState.NONE, sa_type=String(16))
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
    # Questionnaire questions, or the follow-ups after "not so good" on a wellbeing check-in:
    # [{"id": "pain", "kind": "scale", "min": 0, "max": 10}, {"id": "sleep", "kind": "choice",
    #   "options": ["good", "fair", "poor"]}, ...]; built-in ids have translated texts.
    questions: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Prompts exist in the database for every slot up to here; planning goes on from it, so
    # the slots of a downtime are found and reported rather than skipped.
    planned_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PromptStatus(StrEnum):
    """Where one planned prompt is: waiting for its time, out, answered or not."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    ANSWERED = "answered"
    MISSED = "missed"
    # Its window closed before it could be sent (the service or the broker was down).
    NOT_SENT = "not_sent"
    CANCELLED = "cancelled"


class CheckinPrompt(SQLModel, table=True):
    """One slot of a plan: sent once, answered once, or missed and escalated.

    The unique (plan, slot) pair is what makes "never two prompts for one slot" hold across
    restarts and instances.
    """

    __tablename__ = "checkin_prompt"
    __table_args__ = (
        UniqueConstraint("plan_id", "slot_at", name="uq_checkin_prompt_slot"),
        Index("ix_checkin_prompt_status_slot", "status", "slot_at"),
        Index("ix_checkin_prompt_status_closes", "status", "closes_at"),
        Index("ix_checkin_prompt_resident_slot", "resident_id", "slot_at"),
    )

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    plan_id: int = Field(foreign_key="checkin_plan.id", ondelete="CASCADE")
    resident_id: int = Field(foreign_key="resident.id", ondelete="CASCADE")
    kind: CheckinKind = Field(sa_type=String(16))
    slot_at: datetime = Field(sa_type=UTCDateTime)
    remind_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closes_at: datetime = Field(sa_type=UTCDateTime)
    status: PromptStatus = Field(default=PromptStatus.SCHEDULED, sa_type=String(16))
    # A sender holds the prompt while it publishes; a crashed sender's lease runs out.
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_via: str | None = Field(default=None, max_length=16)
    answer: str | None = Field(default=None, max_length=32)
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the team was told what the outcome calls for (a missed check-in, "not so good",
    # "please call me"); a sweep tells them of any outcome still unreported.
    reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NotificationStatus(StrEnum):
    """Delivery state of one notification.

    A row is ``sending`` from just before the channel is asked until its answer is stored,
    so a crash in between leaves it visible: whoever takes the step over marks it
    ``unknown`` and sends nothing under that key again (the next tier is told instead).
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Notification(SQLModel, table=True):
    """One message to one recipient about one alert, delivered at most once by its key."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_retry", "status", "retry_at"),)

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
    # A failed delivery is tried again from this moment (backoff), while its alert is open.
    retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class StepKind(StrEnum):
    """What a due escalation step does when it fires."""

    NOTIFY = "notify"
    RETRIGGER = "retrigger"
    # Every tier was tried and nobody acknowledged: the organisation's fallback is told.
    FALLBACK = "fallback"


class StepStatus(StrEnum):
    """Where a step is: waiting for its time, being delivered, finished or called off."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"


class EscalationStep(SQLModel, table=True):
    """One durable step of an alert's escalation: who is told at which tier, and when.

    The database is the clock's memory: a restart, or a second instance, finds every step
    here; claiming a step is one atomic update, so no step fires twice.
    """

    __tablename__ = "escalation_step"
    __table_args__ = (
        UniqueConstraint(
            "alert_id", "kind", "round", "tier", "attempt", name="uq_escalation_step_round"
        ),
        Index("ix_escalation_step_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", ondelete="CASCADE")
    kind: StepKind = Field(default=StepKind.NOTIFY, sa_type=String(16))
    # Each climb through the tiers is a round: the first when the alert is raised, one more
    # each time an acknowledged alert rings again for not being resolved.
    round: int = Field(default=1)
    tier: int
    # Which time this tier is tried in this round (the last tier repeats).
    attempt: int = Field(default=1)
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: StepStatus = Field(default=StepStatus.PENDING, sa_type=String(16))
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OnCallShift(SQLModel, table=True):
    """A weekly on-call shift of a team: who, which weekday, from when to when (team's time)."""

    __tablename__ = "oncall_shift"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="care_team.id", index=True, ondelete="CASCADE")
    staff_id: int = Field(foreign_key="staff_user.id", ondelete="CASCADE")
    # ISO weekday of the start (1 = Monday); a shift ending before it starts runs overnight.
    weekday: int
    starts: str = Field(max_length=5)
    ends: str = Field(max_length=5)


class OnCallOverride(SQLModel, table=True):
    """Someone else is on call for a while (swap, sickness, holiday)."""

    __tablename__ = "oncall_override"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="care_team.id", index=True, ondelete="CASCADE")
    staff_id: int = Field(foreign_key="staff_user.id", ondelete="CASCADE")
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", max_length=300)


class AlertRule(SQLModel, table=True):
    """A rule as data: a care team's default, or one resident's own (which wins)."""

    __tablename__ = "alert_rule"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int | None = Field(default=None, foreign_key="care_team.id", index=True)
    resident_id: int | None = Field(default=None, foreign_key="resident.id", index=True)
    # "vital_range", "weight_gain", "device_silent", "low_battery", ...
    kind: str = Field(max_length=32)
    # What the rule watches, e.g. "spo2" for a vital range; rules of one kind and subject
    # at resident level replace the team's.
    subject: str = Field(default="", max_length=48)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    severity: AlertSeverity = Field(default=AlertSeverity.HIGH, sa_type=String(16))
    enabled: bool = Field(default=True)


class PushSubscription(SQLModel, table=True):
    """A staff member's browser or phone that accepts web push notifications."""

    __tablename__ = "push_subscription"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff_user.id", index=True, ondelete="CASCADE")
    endpoint: str = Field(max_length=1000, unique=True)
    subscription: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
