"""What every notification channel shares: the message, the result and the retry loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    """One notification to one person on one channel, already in their language."""

    channel: str  # "email", "sms" or "push"
    address: str  # e-mail address, E.164 phone number, or a web-push subscription as JSON
    recipient_name: str
    language: str  # "is", "en", "sv", "fi" or "pl"
    subject: str
    body: str
    # (alert, tier, attempt, recipient, channel): the caller never delivers one key twice;
    # channels pass it on (Message-ID, reference, push topic) so duplicates show downstream.
    idempotency_key: str
    url: str | None = None  # link to the alert in the console


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one delivery attempt, in words a coordinator can read."""

    ok: bool
    detail: str  # short: "250 OK", "gateway answered 503", "subscription expired (410)"
    retryable: bool  # False when trying again cannot help (bad address, refused, expired)


class Channel(Protocol):
    """A way to reach a person; `send` reports failures instead of raising them."""

    name: str

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        """Deliver one message and say how it went."""
        ...


async def send_with_retries(
    channel: Channel,
    message: OutgoingMessage,
    *,
    attempts: int = 3,
    first_delay_s: float = 1.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> list[DeliveryResult]:
    """Send until it works, fails for good or runs out of attempts; return every result."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    results: list[DeliveryResult] = []
    delay = first_delay_s
    for attempt in range(attempts):
        if attempt:
            await sleep(delay)
            delay *= 2
        try:
            result = await channel.send(message)
        except Exception as err:
            # A channel must not raise, but if one does the alarm still needs a record
            # and another try rather than vanishing with the exception.
            log.exception(
                "channel %s raised while sending %s", channel.name, message.idempotency_key
            )
            result = DeliveryResult(
                ok=False, detail=f"channel error: {type(err).__name__}: {err}", retryable=True
            )
        results.append(result)
        if result.ok or not result.retryable:
            break
    return results
