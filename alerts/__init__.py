"""Alerts and everything that makes sure a person sees them.

Owns alert rules and the alert lifecycle, check-in and reminder plans, escalation
policies with their tiers and on-call, and notification records. Never speaks MQTT or
HTTP directly.
"""

from alerts.models import (
    Alert,
    AlertRule,
    AlertSeverity,
    AlertStatus,
    AlertTimelineEntry,
    CheckinKind,
    CheckinPlan,
    EscalationPolicy,
    EscalationState,
    EscalationStep,
    EscalationTier,
    Notification,
    NotificationStatus,
    OnCallOverride,
    OnCallShift,
    PushSubscription,
    StepKind,
    StepStatus,
)

MODELS = (
    Alert,
    AlertTimelineEntry,
    EscalationPolicy,
    EscalationTier,
    EscalationStep,
    CheckinPlan,
    Notification,
    OnCallShift,
    OnCallOverride,
    AlertRule,
    PushSubscription,
)

__all__ = [
    "MODELS",
    "Alert",
    "AlertRule",
    "AlertSeverity",
    "AlertStatus",
    "AlertTimelineEntry",
    "CheckinKind",
    "CheckinPlan",
    "EscalationPolicy",
    "EscalationState",
    "EscalationStep",
    "EscalationTier",
    "Notification",
    "NotificationStatus",
    "OnCallOverride",
    "OnCallShift",
    "PushSubscription",
    "StepKind",
    "StepStatus",
]
