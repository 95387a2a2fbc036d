"""Durable escalation: due steps are claimed from the database, delivered, and followed by
the next step, so a restart or a second instance neither loses nor repeats a step.

A step is claimed with a lease (an atomic UPDATE; ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL). Its notifications are recorded under idempotency keys before they are sent;
if the instance dies mid-step, the lease runs out, another claim picks the step up, and only
what was not recorded as sent goes out again, under the same keys. An instance that
restarts takes its own unfinished claims back at once (its name is stable), instead of
waiting for their leases.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.changes import AlertChange
from alerts.channels import Channel, OutgoingMessage, notification_text, send_with_retries
from alerts.lifecycle import AlertLifecycle, timeline
from alerts.models import (
    Alert,
    AlertStatus,
    EscalationPolicy,
    EscalationState,
    EscalationStep,
    EscalationTier,
    Notification,
    NotificationStatus,
    StepKind,
    StepStatus,
)
from alerts.oncall import Recipient, tier_recipients
from care import Resident, as_utc, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
CLAIM_BATCH = 25


@dataclass(frozen=True)
class Delivery:
    """One message of a step: to whom, by which channel, under which key."""

    recipient: Recipient
    channel: str
    address: str
    key: str


class EscalationEngine:
    """Fires due escalation steps; called by the scheduler and by a periodic sweep."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lifecycle: AlertLifecycle,
        channels: dict[str, Channel],
        *,
        clock: Callable[[], datetime] = utcnow,
        instance: str | None = None,
        console_url: str | None = None,
    ) -> None:
        """``channels`` maps channel names (email, sms, push) to senders; console is built in."""
        self._sessions = sessions
        self._lifecycle = lifecycle
        self._channels = channels
        self._clock = clock
        self.instance = instance or f"vaki-{uuid.uuid4().hex[:8]}"
        self._console_url = console_url
        self.on_step_scheduled: Callable[[datetime], None] | None = None

    async def recover_own_claims(self) -> int:
        """After a restart: our claims from before are unfinished work; due again at once."""
        async with self._sessions() as session, session.begin():
            result = await session.exec(
                update(EscalationStep)
                .where(
                    col(EscalationStep.status) == StepStatus.CLAIMED,
                    col(EscalationStep.claimed_by) == self.instance,
                )
                .values(status=StepStatus.PENDING, claimed_by=None, claimed_until=None)
            )
            return int(result.rowcount or 0)

    async def next_due(self) -> datetime | None:
        """When the earliest pending step falls due (None when nothing waits)."""
        async with self._sessions() as session:
            found: datetime | None = (
                await session.exec(
                    select(func.min(col(EscalationStep.due_at))).where(
                        col(EscalationStep.status) == StepStatus.PENDING
                    )
                )
            ).one()
        # SQLite's bare MIN may come back without the column's type, so without a zone.
        return None if found is None else as_utc(found)

    async def run_due(self) -> int:
        """Claim and fire every due step; return how many fired."""
        fired = 0
        while True:
            claimed = await self._claim()
            if not claimed:
                return fired
            for step_id in claimed:
                try:
                    await self._fire(step_id)
                    fired += 1
                except Exception:
                    # The lease runs out and the step is claimed again: it is not lost.
                    log.exception("escalation step %s failed; it will be retried", step_id)

    async def _claim(self) -> list[int]:
        """Atomically take up to a batch of due steps (and steps whose lease ran out)."""
        now = self._clock()
        due = or_(
            and_(
                col(EscalationStep.status) == StepStatus.PENDING, col(EscalationStep.due_at) <= now
            ),
            and_(
                col(EscalationStep.status) == StepStatus.CLAIMED,
                col(EscalationStep.claimed_until) < now,
            ),
        )
        async with self._sessions() as session, session.begin():
            candidates = (
                select(EscalationStep.id)
                .where(due)
                .order_by(col(EscalationStep.due_at))
                .limit(CLAIM_BATCH)
            )
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                ids = list((await session.exec(candidates.with_for_update(skip_locked=True))).all())
                if not ids:
                    return []
                where = col(EscalationStep.id).in_(ids)
            else:
                # SQLite has one writer at a time: the UPDATE itself is the claim.
                where = col(EscalationStep.id).in_(candidates.scalar_subquery())
            result = await session.exec(
                update(EscalationStep)
                .where(where, due)
                .values(
                    status=StepStatus.CLAIMED, claimed_by=self.instance, claimed_until=now + LEASE
                )
                .returning(col(EscalationStep.id))
            )
            return [row[0] for row in result.all()]

    async def _fire(self, step_id: int) -> None:
        """Deliver one claimed step and schedule what follows it."""
        now = self._clock()
        async with self._sessions() as session:
            step = await session.get(EscalationStep, step_id)
            if step is None or step.claimed_by != self.instance:
                return
            alert = await session.get(Alert, step.alert_id)
            assert alert is not None
            if step.kind == StepKind.RETRIGGER:
                await self._retrigger(session, step, alert, now)
                return
            if alert.status != AlertStatus.OPEN:
                step.status, step.done_at = StepStatus.CANCELLED, now
                session.add(step)
                await session.commit()
                return
            policy = (
                await session.get(EscalationPolicy, alert.policy_id) if alert.policy_id else None
            )
            tiers = {
                tier.position: tier
                for tier in (
                    await session.exec(
                        select(EscalationTier).where(EscalationTier.policy_id == alert.policy_id)
                    )
                ).all()
            }
            tier = tiers.get(step.tier)
            if policy is None or tier is None:
                step.status, step.done_at = StepStatus.DONE, now
                alert.escalation = EscalationState.EXHAUSTED
                session.add_all(
                    [step, alert, timeline(alert, "escalation_broken", now, tier=step.tier)]
                )
                await session.commit()
                return
            recipients = await tier_recipients(
                session, tier, team_id=alert.team_id, resident_id=alert.resident_id, now=now
            )
            resident = await session.get(Resident, alert.resident_id) if alert.resident_id else None
            deliveries = self._deliveries(alert, step, tier, recipients)
            fresh = await self._record(session, alert, deliveries, now)
            await session.commit()
        outcomes = {
            key: await self._send_safely(alert, step, resident, delivery)
            for key, delivery in fresh.items()
        }
        await self._finish(
            step_id=step_id,
            alert_id=alert.id or 0,
            tier=tier,
            tiers=tiers,
            policy=policy,
            deliveries=deliveries,
            outcomes=outcomes,
        )

    def _deliveries(
        self, alert: Alert, step: EscalationStep, tier: EscalationTier, recipients: list[Recipient]
    ) -> list[Delivery]:
        """Every (recipient, channel, address) of the step, with its idempotency key."""
        found = []
        for recipient in recipients:
            for channel in tier.channels:
                for index, address in enumerate(recipient.addresses.get(channel, [])):
                    key = (
                        f"a{alert.id}:{step.kind}:r{step.round}:t{step.tier}:n{step.attempt}"
                        f":{recipient.key}:{channel}:{index}"
                    )
                    found.append(Delivery(recipient, channel, address, key))
        return found

    async def _record(
        self, session: AsyncSession, alert: Alert, deliveries: list[Delivery], now: datetime
    ) -> dict[str, Delivery]:
        """Record each delivery under its key; return those not already sent."""
        if not deliveries:
            return {}
        rows = [
            {
                "alert_id": alert.id,
                "channel": d.channel,
                "recipient_kind": d.recipient.kind,
                "recipient_id": d.recipient.id,
                "address": d.address[:255],
                "language": d.recipient.language,
                "idempotency_key": d.key,
                "status": NotificationStatus.PENDING,
                "attempts": 0,
                "created_at": now,
            }
            for d in deliveries
        ]
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(Notification)
        await session.exec(
            insert.on_conflict_do_nothing(index_elements=["idempotency_key"]).values(rows)
        )
        sent = set(
            (
                await session.exec(
                    select(Notification.idempotency_key).where(
                        col(Notification.idempotency_key).in_([d.key for d in deliveries]),
                        Notification.status == NotificationStatus.SENT,
                    )
                )
            ).all()
        )
        return {d.key: d for d in deliveries if d.key not in sent}

    async def _send_safely(
        self, alert: Alert, step: EscalationStep, resident: Resident | None, delivery: Delivery
    ) -> tuple[bool, str, int]:
        """One delivery whose failure, of any kind, is recorded rather than stopping the step:
        the others still go out, and if nobody was reached the next tier is told at once."""
        try:
            return await self._send(alert, step, resident, delivery)
        except Exception as err:
            log.exception("delivery %s failed unexpectedly", delivery.key)
            return False, f"{type(err).__name__}: {err}"[:300], 1

    async def _send(
        self, alert: Alert, step: EscalationStep, resident: Resident | None, delivery: Delivery
    ) -> tuple[bool, str, int]:
        """Send one delivery: (ok, detail, attempts). The console needs no sending."""
        if delivery.channel == "console":
            return True, "on the live console", 1
        channel = self._channels.get(delivery.channel)
        if channel is None:
            return False, f"channel {delivery.channel} is not configured", 0
        subject, body = notification_text(
            delivery.recipient.language,
            alert_title=alert.title,
            resident_name=resident.full_name if resident else "—",
            severity=alert.severity,
            tier=step.tier,
            console_url=f"{self._console_url}/alerts/{alert.id}" if self._console_url else None,
        )
        message = OutgoingMessage(
            channel=delivery.channel,
            address=delivery.address,
            recipient_name=delivery.recipient.name,
            language=delivery.recipient.language,
            subject=subject,
            body=body,
            idempotency_key=delivery.key,
            url=f"{self._console_url}/alerts/{alert.id}" if self._console_url else None,
        )
        results = await send_with_retries(channel, message, attempts=3, first_delay_s=0.5)
        last = results[-1]
        return last.ok, last.detail, len(results)

    async def _finish(
        self,
        *,
        step_id: int,
        alert_id: int,
        tier: EscalationTier,
        tiers: dict[int, EscalationTier],
        policy: EscalationPolicy,
        deliveries: list[Delivery],
        outcomes: dict[str, tuple[bool, str, int]],
    ) -> None:
        """Record the outcomes, close the step, and schedule the next one."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            for key, (ok, detail, attempts) in outcomes.items():
                await session.exec(
                    update(Notification)
                    .where(col(Notification.idempotency_key) == key)
                    .values(
                        status=NotificationStatus.SENT if ok else NotificationStatus.FAILED,
                        attempts=Notification.attempts + attempts,
                        last_error=None if ok else detail,
                        sent_at=now if ok else None,
                    )
                )
            # Close the step only if it is still ours and still claimed: an acknowledgement
            # meanwhile cancelled it, or our lease ran out and another instance has it.
            closed = await session.exec(
                update(EscalationStep)
                .where(
                    col(EscalationStep.id) == step_id,
                    col(EscalationStep.status) == StepStatus.CLAIMED,
                    col(EscalationStep.claimed_by) == self.instance,
                )
                .values(status=StepStatus.DONE, done_at=now)
            )
            step = await session.get(EscalationStep, step_id)
            alert = await session.get(Alert, alert_id)
            assert step is not None
            assert alert is not None
            if closed.rowcount == 0:
                return
            # Deliveries recorded as sent before (by an instance that died mid-step) reached
            # their people too.
            reached = sum(1 for ok, _, _ in outcomes.values() if ok) + (
                len(deliveries) - len(outcomes)
            )
            failed = len(outcomes) - sum(1 for ok, _, _ in outcomes.values() if ok)
            session.add(
                timeline(
                    alert,
                    "notified",
                    now,
                    round=step.round,
                    tier=step.tier,
                    attempt=step.attempt,
                    sent=reached,
                    failed=failed,
                    channels=sorted({d.channel for d in deliveries}),
                )
            )
            # Nobody reached (no one on call, every channel failing): climb at once.
            wait = timedelta(seconds=tier.timeout_s) if reached else timedelta(0)
            if not reached:
                session.add(timeline(alert, "nobody_reached", now, tier=step.tier))
            last = max(tiers)
            if step.tier < last:
                following = EscalationStep(
                    alert_id=alert_id,
                    round=step.round,
                    tier=step.tier + 1,
                    attempt=1,
                    due_at=now + wait,
                )
            elif step.attempt < policy.last_tier_repeats:
                following = EscalationStep(
                    alert_id=alert_id,
                    round=step.round,
                    tier=step.tier,
                    attempt=step.attempt + 1,
                    due_at=now + wait,
                )
            else:
                following = None
                alert.escalation = EscalationState.EXHAUSTED
                session.add(alert)
                session.add(timeline(alert, "escalation_exhausted", now))
            if following is not None and alert.status == AlertStatus.OPEN:
                session.add(following)
            change = AlertChange.of(alert, "escalated", now)
        if following is not None and self.on_step_scheduled is not None:
            self.on_step_scheduled(following.due_at)
        await self._lifecycle.notify([change])

    async def _retrigger(
        self, session: AsyncSession, step: EscalationStep, alert: Alert, now: datetime
    ) -> None:
        """Acknowledged but not resolved in time: open again and escalate from tier 1."""
        step.status, step.done_at = StepStatus.DONE, now
        session.add(step)
        if alert.status != AlertStatus.ACKNOWLEDGED:
            await session.commit()
            return
        assert alert.id is not None
        alert.status = AlertStatus.OPEN
        alert.escalation = EscalationState.ACTIVE
        session.add(alert)
        session.add(timeline(alert, "retriggered", now, reason="acknowledged but not resolved"))
        session.add(
            EscalationStep(
                alert_id=alert.id,
                round=step.round,
                tier=1,
                attempt=1,
                due_at=now,
            )
        )
        change = AlertChange.of(alert, "retriggered", now)
        await session.commit()
        if self.on_step_scheduled is not None:
            self.on_step_scheduled(now)
        await self._lifecycle.notify([change])
