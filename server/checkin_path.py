"""Check-ins and reminders, top to bottom, in one place.

    plans → alerts.CheckinService.plan_ahead writes one prompt per slot, ahead of time
      → at the slot's time: claim → ``cmd`` to the resident's tablets (devices.send_command)
        → mark sent (the tablet page shows it too)
      → before the window closes: a nudge, the same way
      → an answer (MQTT event or tablet page) is recorded once (CheckinService.answer)
        → what it calls for (alerts.answer_alert, alerts.call_reason): an alert, a place in
          the call queue (video.request_call); any answer settles an open missed check-in
      → a window that closes unanswered: missed (or not sent) → alerts.closed_prompt_alert
        → the alarm path's AlertLifecycle → escalation
      → a call request nobody takes in time → alerts.call_not_taken_alert → the same

Each hop is one call into a domain's public surface; the rules (what an answer means,
when a device's clock is believed, when a call waited too long) live in ``alerts``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import devices
import video
from server.settings import Settings
from server.wakes import Waker

log = logging.getLogger(__name__)

# Prompts that could not go out are tried again this soon.
DELIVERY_RETRY = timedelta(seconds=1)
# Publishes in flight at once while a slot goes out.
SEND_CONCURRENCY = 500


class CheckinPipeline:
    """Wires the check-in service, the MQTT link, the call queue and the alert lifecycle.

    The prompts are the truth, in the database; a ``Waker`` on the monotonic clock only says
    when to look: a wake at the next due moment, and a sweep every few seconds that also
    catches up after a restart (open windows are sent late, closed ones reported as not
    sent), so a wall-clock step neither stops nor hurries it.
    """

    def __init__(
        self,
        *,
        service: alerts.CheckinService,
        lifecycle: alerts.AlertLifecycle,
        link: Callable[[], devices.MqttLink | None],
        call_timeout: timedelta,
    ) -> None:
        """Connect the parts; nothing runs before ``start``."""
        self.service = service
        self.lifecycle = lifecycle
        self._link = link
        self._call_timeout = call_timeout
        self._running = asyncio.Lock()
        self._reporting = asyncio.Lock()
        # Resident events whose application failed, applied again at the next run.
        self._retry: list[devices.CommittedEvent] = []
        self.plan_wake = Waker("checkin-plan", self.plan, 600.0, clock=service.clock)
        self.wake = Waker("checkin", self.run_due, 5.0, clock=service.clock)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The database sessions the service works through."""
        return self.service.sessions

    def start(self, settings: Settings) -> None:
        """Plan now and every few minutes; sweep often; everything due fires at once."""
        self.wake.interval_s = settings.checkin_sweep_s
        self.plan_wake.start()
        self.wake.start()

    async def stop(self) -> None:
        """Stop planning and sweeping, letting a run in progress finish first."""
        await self.plan_wake.stop()
        await self.wake.stop()

    async def plan(self) -> None:
        """Write prompts up to the horizon, then do whatever that made due."""
        created = await self.service.plan_ahead()
        if created:
            log.info("planned %s check-in prompts", created)
        await self.run_due()

    async def run_due(self) -> None:
        """Send due prompts and nudges, close passed windows, tell the team, set the wake."""
        await self._apply_retries()
        undelivered = False
        async with self._running:
            for nudges in (False, True):
                while batch := await self.service.claim_due(nudges=nudges):
                    if not await self._deliver(batch, nudges=nudges):
                        undelivered = True
                        break
            closed = await self.service.close_due()
            wake = await self.service.next_wake()
        if undelivered:
            # The MQTT link is not up yet (at start-up) or the broker is away: try again
            # in a second rather than at the next sweep.
            retry = self.service.clock() + DELIVERY_RETRY
            wake = retry if wake is None else min(wake, retry)
        if wake is not None:
            self.wake.wake_at(wake)
        # Closing handed these prompts to this caller alone, so telling the team needs no
        # lock: a slot falling due meanwhile goes out at once instead of waiting for alerts.
        if closed:
            await self._report_closed(closed)
        async with self._reporting:
            await self._catch_up()
            await self._escalate_unanswered_calls()

    async def _deliver(self, batch: list[alerts.OutgoingPrompt], *, nudges: bool) -> bool:
        """Publish each prompt to its resident's devices; True when every one went out."""
        link = self._link()
        if link is None:
            await self.service.release([p.prompt_id for p in batch])
            log.warning("%s check-in prompts wait for the MQTT link", len(batch))
            return False
        async with self.sessions() as session:
            targets = await devices.command_targets(session, sorted({p.resident_id for p in batch}))
        limit = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(prompt: alerts.OutgoingPrompt) -> bool:
            async with limit:
                try:
                    for device_id in targets.get(prompt.resident_id, []):
                        await devices.send_command(link, device_id, prompt.payload)
                except devices.MqttUnavailableError as err:
                    log.warning("prompt %s not sent yet: %s", prompt.command_id, err)
                    return False
                return True

        results = await asyncio.gather(*(send(p) for p in batch))
        sent = [p.prompt_id for p, ok in zip(batch, results, strict=True) if ok]
        failed = [p.prompt_id for p, ok in zip(batch, results, strict=True) if not ok]
        await self.service.mark_sent(sent, nudges=nudges)
        await self.service.release(failed)
        return not failed

    async def _report_closed(self, closed: list[alerts.ClosedPrompt]) -> None:
        """Raise the alerts of windows that closed unanswered, then record that it is done."""
        not_sent = sum(c.status == alerts.PromptStatus.NOT_SENT for c in closed)
        if not_sent:
            log.warning(
                "%s check-in prompts could not be sent before their window closed", not_sent
            )
        await self.lifecycle.raise_alerts([alerts.closed_prompt_alert(c) for c in closed])
        await self.service.mark_reported([c.prompt_id for c in closed])

    async def _catch_up(self) -> None:
        """Tell the team of outcomes recorded by an instance that stopped before telling."""
        closed, answered = await self.service.unreported()
        if closed:
            log.warning("%s closed check-ins were not reported yet; reporting now", len(closed))
            await self._report_closed(closed)
        for outcome in answered:
            await self._tell_team(outcome)

    async def answer(
        self,
        reference: str,
        answer: str | None,
        answers: dict[str, Any] | None,
        *,
        via: str,
        resident_id: int | None,
        at: datetime | None = None,
    ) -> alerts.AnswerOutcome:
        """Record an answer (from MQTT or the tablet page) and act on it."""
        outcome = await self.service.answer(
            reference, answer, answers, via=via, resident_id=resident_id, at=at
        )
        if outcome.accepted:
            await self._tell_team(outcome)
        return outcome

    async def _tell_team(self, outcome: alerts.AnswerOutcome) -> None:
        """Settle missed check-ins, queue a call, raise what the answer calls for."""
        for key in alerts.settled_conditions(outcome):
            await self.lifecycle.resolve_condition(
                key,
                outcome=alerts.settled_note(outcome),
                settled_by_resident=True,
            )
        reason = alerts.call_reason(outcome)
        if reason is not None:
            await self.request_call(outcome.resident_id, source="checkin", reason=reason)
        candidate = alerts.answer_alert(outcome)
        if candidate is not None:
            await self.lifecycle.raise_alerts([candidate])
        await self.service.mark_reported([outcome.prompt_id])

    async def request_call(self, resident_id: int, *, source: str, reason: str) -> None:
        """Put the resident in the call queue (once, while they are waiting)."""
        async with self.sessions() as session, session.begin():
            _, new = await video.request_call(
                session, resident_id, source=source, reason=reason, now=self.service.clock()
            )
        if new:
            log.info("resident %s asked to be called (%s)", resident_id, source)
            await self.lifecycle.tell_teams("call_requested", resident_id)

    async def _escalate_unanswered_calls(self) -> None:
        """A call request nobody took in time becomes an alert that climbs the tiers."""
        async with self.sessions() as session, session.begin():
            overdue = await video.unanswered_calls(
                session, self.service.clock(), self._call_timeout
            )
        await self.lifecycle.raise_alerts(
            [
                alerts.call_not_taken_alert(request.resident_id, request.id, request.source)
                for request in overdue
            ]
        )

    async def on_batch(self, batch: devices.IngestedBatch) -> None:
        """Answers, reminder confirmations and call requests that came over MQTT.

        Each event is applied on its own; one that fails (the database busy, say) is kept
        and tried again before the next windows close, so a resident who answered is not
        escalated as missed because of a passing error.
        """
        for event in batch.events:
            if event.resident_id is not None and event.type in alerts.RESIDENT_EVENTS:
                await self._apply_or_keep(event)

    async def _apply_or_keep(self, event: devices.CommittedEvent) -> None:
        """Apply one resident event; keep it for a retry when that fails."""
        try:
            await self._apply(event)
        except alerts.PromptNotFoundError as err:
            log.warning("answer from %s ignored: %s", event.device_id, err)
        except Exception:
            log.exception("event %s from %s will be applied again", event.id, event.device_id)
            self._retry.append(event)

    async def _apply_retries(self) -> None:
        """Apply again the events that failed earlier (oldest first)."""
        waiting, self._retry = self._retry, []
        for event in waiting:
            await self._apply_or_keep(event)

    async def _apply(self, event: devices.CommittedEvent) -> None:
        """A call request joins the queue; an answer or a confirmation answers its prompt."""
        assert event.resident_id is not None
        if event.type == alerts.CALL_REQUEST_EVENT:
            await self.request_call(event.resident_id, source="device", reason="")
            return
        reply = alerts.event_answer(event)
        await self.answer(
            reply.reference,
            reply.answer,
            reply.answers,
            via="mqtt",
            resident_id=event.resident_id,
            at=reply.at,
        )
