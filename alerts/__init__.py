"""Alerts and everything that makes sure a person sees them.

Owns alert rules and the alert lifecycle, check-in and reminder plans, escalation
policies with their tiers and on-call, and notification records. Never speaks MQTT or
HTTP directly.
"""

from alerts.changes import AlertCandidate, AlertChange
from alerts.channels import (
    Channel,
    DeliveryResult,
    EmailChannel,
    OutgoingMessage,
    SmsGatewayChannel,
    WebPushChannel,
    generate_vapid_keys,
)
from alerts.errors import (
    AlertNotFoundError,
    AlertsError,
    AlertStateError,
    InvalidSubscriptionError,
    PolicyGapError,
)
from alerts.escalation import EscalationEngine
from alerts.lifecycle import AlertLifecycle
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
from alerts.oncall import coverage_gaps, on_call_now, policy_gaps
from alerts.policies import PolicySpec, TierSpec, add_push_subscription, save_policy
from alerts.rules import DEFAULT_RULES, EVENT_ALARMS, RuleEngine, event_alarm

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
    "DEFAULT_RULES",
    "EVENT_ALARMS",
    "MODELS",
    "Alert",
    "AlertCandidate",
    "AlertChange",
    "AlertLifecycle",
    "AlertNotFoundError",
    "AlertRule",
    "AlertSeverity",
    "AlertStateError",
    "AlertStatus",
    "AlertTimelineEntry",
    "AlertsError",
    "Channel",
    "CheckinKind",
    "CheckinPlan",
    "DeliveryResult",
    "EmailChannel",
    "EscalationEngine",
    "EscalationPolicy",
    "EscalationState",
    "EscalationStep",
    "EscalationTier",
    "InvalidSubscriptionError",
    "Notification",
    "NotificationStatus",
    "OnCallOverride",
    "OnCallShift",
    "OutgoingMessage",
    "PolicyGapError",
    "PolicySpec",
    "PushSubscription",
    "RuleEngine",
    "SmsGatewayChannel",
    "StepKind",
    "StepStatus",
    "TierSpec",
    "WebPushChannel",
    "add_push_subscription",
    "coverage_gaps",
    "event_alarm",
    "generate_vapid_keys",
    "on_call_now",
    "policy_gaps",
    "save_policy",
]
