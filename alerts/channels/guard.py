"""A channel behind a deadline and a circuit breaker, so a failing gateway cannot hold an alarm.

Each send gets one attempt within a deadline; what fails is retried later by the escalation
engine with backoff, not here, so no step (and no other alert) waits for a gateway that
hangs. After a few failures in a row the breaker opens: sends fail at once for a cool-down,
then one trial send decides whether the channel is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts.channels.base import Channel, DeliveryResult, OutgoingMessage

log = logging.getLogger(__name__)

# Backoff of failed deliveries: first retry after this, doubling up to the cap.
RETRY_FIRST_S = 15.0
RETRY_MAX_S = 300.0


def retry_delay_s(attempts: int) -> float:
    """How long to wait before trying a delivery again that failed ``attempts`` times."""
    return min(RETRY_FIRST_S * 2.0 ** max(attempts - 1, 0), RETRY_MAX_S)


@dataclass
class CircuitBreaker:
    """Opens after ``threshold`` failures in a row; lets one trial through after ``cooldown_s``."""

    threshold: int = 3
    cooldown_s: float = 30.0
    monotonic: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _trial: bool = field(default=False, repr=False)

    @property
    def is_open(self) -> bool:
        """True while sends are refused without trying."""
        return self.opened_at is not None

    def allow(self) -> bool:
        """May a send go out now? (While open, one trial after the cool-down.)"""
        if self.opened_at is None:
            return True
        if self._trial or self.monotonic() - self.opened_at < self.cooldown_s:
            return False
        self._trial = True
        return True

    def record(self, ok: bool) -> None:
        """Count the outcome of an allowed send."""
        self._trial = False
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            # A failed trial starts a new cool-down.
            self.opened_at = self.monotonic()


class GuardedChannel:
    """A channel with a per-delivery deadline and a circuit breaker."""

    def __init__(
        self,
        channel: Channel,
        *,
        deadline_s: float = 8.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """Wrap ``channel``; ``deadline_s`` bounds each send however the channel behaves."""
        self.channel = channel
        self.name = channel.name
        self.deadline_s = deadline_s
        self.breaker = breaker or CircuitBreaker()

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        """One attempt: refused at once while the breaker is open, failed at the deadline."""
        if not self.breaker.allow():
            return DeliveryResult(
                ok=False,
                detail=f"{self.name} is failing; not tried (circuit open)",
                retryable=True,
            )
        try:
            async with asyncio.timeout(self.deadline_s):
                result = await self.channel.send(message)
        except TimeoutError:
            result = DeliveryResult(
                ok=False, detail=f"no answer within {self.deadline_s:g} s", retryable=True
            )
        except Exception as err:
            # A channel must not raise; if one does the alarm still gets a record and a retry.
            log.exception("channel %s raised while sending %s", self.name, message.idempotency_key)
            result = DeliveryResult(
                ok=False, detail=f"channel error: {type(err).__name__}: {err}", retryable=True
            )
        # A refused address says nothing about the gateway; only retryable failures count.
        self.breaker.record(result.ok or not result.retryable)
        if self.breaker.is_open and not result.ok:
            log.warning("%s channel failing (%s); circuit open", self.name, result.detail)
        return result
