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

    AlarmPipeline.sweep, every few seconds: alarm events no alert was raised for
    (alerts.RuleEngine.unhandled_alarms), silent devices and quiet homes
    (alerts.RuleEngine.sweep), and conditions that cleared by themselves.

Each hop is one call into a domain's public surface; what is an alarm, how loud, and who
hears it are decided in ``alerts``, never here.

The steps live in the database; APScheduler only decides when to look. A step scheduled
for a moment wakes the engine then; a sweep every few seconds catches everything else,
including steps that were due while the service was down.
"""

from __future__ import annotations

from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from litestar.channels import ChannelsPlugin

import alerts
import devices
from care import utcnow
from server.settings import Settings

ALERTS_CHANNEL = "alerts"
ESCALATION_WAKE = "escalation-wake"


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
        scheduler: AsyncIOScheduler,
        live: ChannelsPlugin | None,
    ) -> None:
        """Connect the parts; nothing runs before ``start``."""
        self.lifecycle = lifecycle
        self.rules = rules
        self.escalation = escalation
        self._scheduler = scheduler
        self._live = live
        lifecycle.listen(self.publish_change)
        lifecycle.on_step_scheduled = self.wake_escalation
        escalation.on_step_scheduled = self.wake_escalation

    def start(self, settings: Settings) -> None:
        """Schedule the sweeps; overdue steps from before a restart fire at once."""
        self._scheduler.add_job(
            self.escalation.run_due,
            "interval",
            seconds=settings.escalation_sweep_s,
            id="escalation-sweep",
            next_run_time=utcnow(),
            replace_existing=True,
        )
        self._scheduler.add_job(
            self.sweep,
            "interval",
            seconds=settings.rules_sweep_s,
            id="rules-sweep",
            next_run_time=utcnow(),
            replace_existing=True,
        )

    async def on_batch(self, batch: devices.IngestedBatch) -> None:
        """A committed batch: raise what the rules find."""
        candidates = await self.rules.on_batch(batch)
        if candidates:
            await self.lifecycle.raise_alerts(candidates)

    async def sweep(self) -> None:
        """Periodic checks: unhandled alarm events, silent devices, quiet homes."""
        now = utcnow()
        # Raising each one marks its event handled in the same transaction.
        stragglers = await self.rules.unhandled_alarms(now)
        if stragglers:
            await self.lifecycle.raise_alerts(stragglers)
        candidates, cleared = await self.rules.sweep(now)
        if candidates:
            await self.lifecycle.raise_alerts(candidates)
        for key in cleared:
            await self.lifecycle.resolve_condition(key, outcome="cleared by itself")

    def wake_escalation(self, due_at: datetime) -> None:
        """Run the engine at ``due_at`` (at once when it is past).

        One wake is pending at a time, the earliest: a burst of alerts starts one engine
        run, not one each; after each run the next wake is set from the database.
        """
        run_at = max(due_at, utcnow())
        job = self._scheduler.get_job(ESCALATION_WAKE)
        if job is not None and job.next_run_time is not None and job.next_run_time <= run_at:
            return
        self._scheduler.add_job(
            self.run_escalation,
            DateTrigger(run_date=run_at),
            id=ESCALATION_WAKE,
            replace_existing=True,
        )

    async def run_escalation(self) -> None:
        """Fire due steps, then wake again when the next one falls due."""
        await self.escalation.run_due()
        following = await self.escalation.next_due()
        if following is not None:
            self.wake_escalation(following)

    async def publish_change(self, change: alerts.AlertChange) -> None:
        """Tell every console (on every instance, with the PostgreSQL channel backend)."""
        if self._live is not None:
            self._live.publish(change.to_json(), ALERTS_CHANNEL)
