"""Notification channels: how an escalation reaches a person.

Owns the outgoing message and delivery result, the retry loop, one channel per way of
reaching staff (e-mail over SMTP, SMS through an HTTP gateway, Web Push to browsers) and
the notification texts in each recipient's language. Channels report every failure as a
DeliveryResult, never as an exception; the escalation engine records each attempt.
"""

from alerts.channels.base import Channel, DeliveryResult, OutgoingMessage, send_with_retries
from alerts.channels.guard import CircuitBreaker, GuardedChannel
from alerts.channels.mail import EmailChannel
from alerts.channels.push import WebPushChannel, generate_vapid_keys
from alerts.channels.sms import SmsGatewayChannel
from alerts.channels.texts import LANGUAGES, notification_text

__all__ = [
    "LANGUAGES",
    "Channel",
    "CircuitBreaker",
    "DeliveryResult",
    "EmailChannel",
    "GuardedChannel",
    "OutgoingMessage",
    "SmsGatewayChannel",
    "WebPushChannel",
    "generate_vapid_keys",
    "notification_text",
    "send_with_retries",
]
