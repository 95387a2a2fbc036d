"""The alarm path, top to bottom, in one place.

    MQTT message → devices.Ingestor commits readings and events
      → RuleEngine finds alarms in the committed batch (and in a periodic sweep)
      → AlertLifecycle opens or counts the alert and schedules its first escalation step
      → EscalationEngine fires due steps: notifications by tier, then the next tier
      → every alert change is published on the "alerts" channel → consoles' live stream

The steps live in the database; APScheduler only decides when to look. A step scheduled
for a moment wakes the engine then; a sweep every few seconds catches everything else,
including steps that were due while the service was down.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from litestar.channels import ChannelsPlugin

import alerts
import devices
from care import utcnow
from server.settings import Settings

log = logging.getLogger(__name__)

ALERTS_CHANNEL = "alerts"
# An alarm event that the batch path did not turn into an alert within this time is
# picked up by the sweep.
UNHANDLED_GRACE = timedelta(seconds=5)


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
        async with self.lifecycle.sessions() as session:
            stragglers = await devices.unhandled_alarm_events(session, now - UNHANDLED_GRACE)
        if stragglers:
            log.warning("%s alarm events had no alert yet; raising them now", len(stragglers))
            await self.lifecycle.raise_alerts(
                [c for event in stragglers if (c := alerts.event_alarm(event))]
            )
            async with self.lifecycle.sessions() as session, session.begin():
                ids = [event.id for event in stragglers if event.id is not None]
                await devices.mark_alarms_handled(session, ids, now)
        candidates, cleared = await self.rules.sweep(now)
        if candidates:
            await self.lifecycle.raise_alerts(candidates)
        for key in cleared:
            await self.lifecycle.resolve_condition(key, outcome="cleared by itself")

    def wake_escalation(self, due_at: datetime) -> None:
        """Run the engine at ``due_at`` (at once when it is past)."""
        self._scheduler.add_job(
            self.escalation.run_due,
            DateTrigger(run_date=max(due_at, utcnow())),
            id=f"escalation-at-{due_at.timestamp():.3f}",
            replace_existing=True,
        )

    async def publish_change(self, change: alerts.AlertChange) -> None:
        """Tell every console (on every instance, with the PostgreSQL channel backend)."""
        if self._live is not None:
            self._live.publish(change.to_json(), ALERTS_CHANNEL)
