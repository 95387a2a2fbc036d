"""send_with_retries: back-off, stopping rules, and a channel that breaks its promise."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest

from alerts.channels import Channel, DeliveryResult, OutgoingMessage, send_with_retries

MESSAGE = OutgoingMessage(
    channel="test",
    address="nowhere",
    recipient_name="Anna",
    language="en",
    subject="HIGH: Fall detected — Jón",
    body="Fall detected — Jón",
    idempotency_key="alert:1/tier:1/attempt:0/staff:1/test",
)
TEMPORARY = DeliveryResult(ok=False, detail="busy", retryable=True)
PERMANENT = DeliveryResult(ok=False, detail="no such number", retryable=False)
DELIVERED = DeliveryResult(ok=True, detail="sent", retryable=False)


class ScriptedChannel:
    """A channel of this test's own that answers from a script (an exception is raised)."""

    name = "scripted"

    def __init__(self, answers: Iterable[DeliveryResult | Exception]) -> None:
        self.answers = iter(answers)
        self.sent = 0

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        """The next scripted answer."""
        self.sent += 1
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Sleeps(list[float]):
    """Records the delays asked for instead of waiting."""

    async def __call__(self, delay: float) -> None:
        """Note the delay and return at once."""
        self.append(delay)


async def run(channel: Channel, sleeps: Sleeps, attempts: int = 4) -> list[DeliveryResult]:
    """send_with_retries with a short first delay and recorded sleeps."""
    return await send_with_retries(
        channel, MESSAGE, attempts=attempts, first_delay_s=0.25, sleep=sleeps
    )


async def test_doubles_the_delay_and_stops_on_success() -> None:
    channel, sleeps = ScriptedChannel([TEMPORARY, TEMPORARY, DELIVERED, DELIVERED]), Sleeps()

    assert await run(channel, sleeps) == [TEMPORARY, TEMPORARY, DELIVERED]
    assert sleeps == [0.25, 0.5]


async def test_stops_at_a_permanent_failure() -> None:
    channel, sleeps = ScriptedChannel([TEMPORARY, PERMANENT, DELIVERED]), Sleeps()

    assert await run(channel, sleeps) == [TEMPORARY, PERMANENT]
    assert sleeps == [0.25]


async def test_returns_every_attempt_when_all_fail() -> None:
    channel, sleeps = ScriptedChannel([TEMPORARY] * 3), Sleeps()

    assert await run(channel, sleeps, attempts=3) == [TEMPORARY] * 3
    assert sleeps == [0.25, 0.5]


async def test_a_channel_that_raises_still_leaves_a_record_and_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel, sleeps = ScriptedChannel([RuntimeError("bug"), DELIVERED]), Sleeps()

    with caplog.at_level(logging.ERROR):
        results = await run(channel, sleeps)

    assert [result.ok for result in results] == [False, True]
    assert results[0].retryable
    assert "RuntimeError: bug" in results[0].detail
    assert "scripted" in caplog.text


async def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="attempts"):
        await run(ScriptedChannel([]), Sleeps(), attempts=0)
