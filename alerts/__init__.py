"""Alerts and everything that makes sure a person sees them.

Owns alert rules and the alert lifecycle, check-in and reminder plans, escalation
policies with their tiers and on-call, and notification records. Never speaks MQTT or
HTTP directly.
"""

from alerts.models import (
    Alert,
    AlertSeverity,
    AlertStatus,
    AlertTimelineEntry,
    CheckinKind,
    CheckinPlan,
    EscalationPolicy,
    EscalationTier,
    Notification,
    NotificationStatus,
)

MODELS = (
    Alert,
    AlertTimelineEntry,
    EscalationPolicy,
    EscalationTier,
    CheckinPlan,
    Notification,
)

__all__ = [
    "MODELS",
    "Alert",
    "AlertSeverity",
    "AlertStatus",
    "AlertTimelineEntry",
    "CheckinKind",
    "CheckinPlan",
    "EscalationPolicy",
    "EscalationTier",
    "Notification",
    "NotificationStatus",
]
