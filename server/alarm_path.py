"""The alarm path, top to bottom, in one place.

    devices/gateways ──MQTT──▶ broker ──▶ devices.Ingestor ──▶ store (readings, events)
                                                 │  commits, then acks; hands the batch to
                                                 ▼
                                     AlarmPipeline.on_batch ──▶ alerts.RuleEngine.on_batch
                                                 │           (alarm events, vital ranges, ...)
                                                 ▼
                                     alerts.AlertLifecycle.raise_alerts ──▶ Alert
                                                 │  opens or counts it, marks its event
                                                 ▼  handled, schedules escalation step 1
                                     AlarmPipeline.wake_escalation ──▶ alerts.EscalationEngine
                                                 │  fires due steps by tier, then the next
                                                 ▼
                                     notifiers: console, web push, e-mail, SMS gateway
                                                 │
                                                 ▼
                                     AlarmPipeline.publish_change ──"alerts" channel──▶ consoles

    AlarmPipeline.sweep_alarms, every few seconds (the escalation sweep's cadence): alarm
    events no alert was raised for (alerts.RuleEngine.unhandled_alarms), whether raising
    failed, another instance died before it, or another rule of the batch failed.
    AlarmPipeline.sweep, every minute: the same, then silent devices and quiet homes
    (alerts.RuleEngine.sweep), and conditions that cleared by themselves.

Each hop is one call into a domain's public surface; what is an alarm, how loud, and who
hears it are decided in ``alerts``, never here.

The steps live in the database; a ``Waker`` on the monotonic clock only decides when to
look (server/wakes.py), so a wall-clock step neither stops nor hurries it. A step scheduled
for a moment wakes the engine then; a sweep every few seconds catches everything else,
including steps that were due while the service was down. Due steps are delivered in the
background, each under a lease it renews, so a slow gateway never holds the next alert.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime

from litestar.channels import ChannelsPlugin

import alerts
import devices
from care import utcnow
from server.settings import Settings
from server.wakes import Waker

ALERTS_CHANNEL = "alerts"

log = logging.getLogger(__name__)

# Committed batches whose vital-sign and door rules could not be raised, kept to try again
# (alarm events need no list: the database marks them until an alert is raised).
RETRY_BATCHES = 1000


def build_channels(settings: Settings) -> dict[str, alerts.Channel]:
    """The notification channels the settings configure."""
    channels: dict[str, alerts.Channel] = {}
    if settings.smtp_host:
        channels["email"] = alerts.EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    if settings.sms_gateway_url:
        channels["sms"] = alerts.SmsGatewayChannel(
            settings.sms_gateway_url, token=settings.sms_gateway_token, sender=settings.sms_sender
        )
    if settings.vapid_private_key:
        channels["push"] = alerts.WebPushChannel(
            settings.vapid_private_key, subject=settings.vapid_subject
        )
    return channels


class AlarmPipeline:
    """Wires rules, lifecycle, escalation and the live channel together."""

    def __init__(
        self,
        *,
        lifecycle: alerts.AlertLifecycle,
        rules: alerts.RuleEngine,
        escalation: alerts.EscalationEngine,
        live: ChannelsPlugin | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Connect the parts; nothing runs before ``start``."""
        self.lifecycle = lifecycle
        self.rules = rules
        self.escalation = escalation
        self._live = live
        self.clock = clock
        self.escalation_wake = Waker("escalation", self.run_escalation, 2.0, clock=clock)
        self.rules_wake = Waker("rules-sweep", self.sweep, 60.0)
        self.alarms_wake = Waker("unhandled-alarms", self.sweep_alarms, 2.0)
        self._retry: deque[devices.IngestedBatch] = deque()
        lifecycle.listen(self.publish_change)
        lifecycle.on_step_scheduled = self.wake_escalation
        escalation.on_step_scheduled = self.wake_escalation

    def start(self, settings: Settings) -> None:
        """Start the sweeps; overdue steps from before a restart fire at once."""
        self.escalation_wake.interval_s = settings.escalation_sweep_s
        self.rules_wake.interval_s = settings.rules_sweep_s
        self.alarms_wake.interval_s = settings.escalation_sweep_s
        self.escalation_wake.start()
        self.alarms_wake.start()
        self.rules_wake.start()

    async def stop(self) -> None:
        """Stop the sweeps, letting the steps being delivered finish first."""
        await self.escalation_wake.stop()
        await self.alarms_wake.stop()
        await self.rules_wake.stop()
        await self.escalation.drain(within_s=10)

    async def on_batch(self, batch: devices.IngestedBatch) -> None:
        """A committed batch: raise its alarm events first, then what the other rules find.

        An alarm event left unhandled is raised by ``sweep_alarms`` within seconds; a batch
        whose other rules could not be raised is kept for ``sweep_alarms`` to try again.
        """
        alarms = self.rules.event_alarms(batch)
        if alarms:
            try:
                await self.lifecycle.raise_alerts(alarms)
            except Exception:
                log.exception("raising the alarm events of a batch failed; the sweep will")
        try:
            await self._raise_rules(batch)
        except Exception:
            log.exception("raising the rules of a batch failed; trying again shortly")
            self._keep(batch)

    async def _raise_rules(self, batch: devices.IngestedBatch) -> None:
        """What the rules other than the alarm events find in ``batch``."""
        candidates = await self.rules.on_batch(batch, event_alarms=False)
        if candidates:
            await self.lifecycle.raise_alerts(candidates)

    def _keep(self, batch: devices.IngestedBatch) -> None:
        """Keep ``batch`` to try again; past RETRY_BATCHES the oldest is given up."""
        if len(self._retry) >= RETRY_BATCHES:
            lost = self._retry.popleft()
            log.error(
                "gave up raising the rules of a batch of %s readings and %s events",
                len(lost.readings),
                len(lost.events),
            )
        self._retry.append(batch)

    @property
    def batches_to_retry(self) -> int:
        """Committed batches whose rules wait to be raised again."""
        return len(self._retry)

    async def sweep_alarms(self) -> None:
        """Raise the alarm events no alert was raised for (each marks its event handled),
        then try again the batches whose rules could not be raised."""
        try:
            stragglers = await self.rules.unhandled_alarms(utcnow())
            if stragglers:
                await self.lifecycle.raise_alerts(stragglers)
        finally:
            await self._retry_batches()

    async def _retry_batches(self) -> None:
        """Each kept batch once, oldest first, until one fails (the database still away)."""
        for _ in range(len(self._retry)):
            if not self._retry:  # the other sweep took the rest
                return
            batch = self._retry.popleft()
            try:
                await self._raise_rules(batch)
            except Exception:
                log.exception("raising the rules of a kept batch failed again")
                self._retry.append(batch)
                return

    async def sweep(self) -> None:
        """Periodic checks: unhandled alarm events, silent devices, quiet homes.

        Each check runs whatever the one before it did.
        """
        now = utcnow()
        try:
            await self.sweep_alarms()
        except Exception:
            log.exception("raising unhandled alarm events failed")
        candidates, cleared = await self.rules.sweep(now)
        if candidates:
            try:
                await self.lifecycle.raise_alerts(candidates)
            except Exception:
                log.exception("raising the sweep's conditions failed")
        for key in cleared:
            try:
                await self.lifecycle.resolve_condition(key, outcome="cleared by itself")
            except Exception:
                log.exception("resolving %s failed", key)

    def wake_escalation(self, due_at: datetime) -> None:
        """Run the engine at ``due_at`` (at once when it is past).

        One wake is pending at a time, the earliest: a burst of alerts starts one engine
        run, not one each; after each run the next wake is set from the database.
        """
        self.escalation_wake.wake_at(due_at)

    async def run_escalation(self) -> None:
        """Start delivering due steps, then wake again when the next one falls due."""
        started = await self.escalation.dispatch_due()
        following = await self.escalation.next_due()
        # A step already due that none was started for waits in another instance's claim
        # or for room here: the sweep looks again, rather than a busy loop.
        if following is not None and (started or following > self.clock()):
            self.wake_escalation(following)

    async def publish_change(self, change: alerts.AlertChange | alerts.TeamNews) -> None:
        """Tell every console (on every instance, with the PostgreSQL channel backend)."""
        if self._live is not None:
            self._live.publish(change.to_json(), ALERTS_CHANNEL)
