"""Durable escalation: due steps are claimed from the database, delivered, and followed by
the next step, so a restart or a second instance neither loses nor repeats a step.

A step is claimed with a lease of seconds (an atomic UPDATE; ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), renewed while its deliveries run, so a slow gateway never lets a second runner
take the same step, and a dead instance's steps move to a live one within seconds. Its
notifications are recorded under idempotency keys before they are sent, and each one is
taken (``pending`` → ``sending``) by one atomic update before the channel is asked, so no
key goes out twice; a crash while sending leaves ``sending`` behind, which the instance
taking over marks ``unknown`` instead of sending again. An instance that restarts takes its
own unfinished claims back at once (its name is stable), instead of waiting for their leases.

Deliveries of a step, and the steps of different alerts, run at once, each within a
deadline and behind its channel's circuit breaker. A console is not a person: when no
external channel of a tier reached anyone, the next tier is told at once, and the failed
deliveries are tried again later with backoff while the alert is open. When every tier was
tried, the last tier keeps repeating and the organisation's fallback is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.changes import AlertChange
from alerts.channels import Channel
from alerts.channels.guard import GuardedChannel
from alerts.claims import claimable
from alerts.deliveries import Delivery, DeliveryDesk
from alerts.fallback import FALLBACK_CHANNELS, FallbackContact, fallback_recipients
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
from alerts.oncall import tier_recipients
from care import Resident, as_utc, utcnow

log = logging.getLogger(__name__)

# Renewed every third of itself while a step is delivered: a dead instance's steps are
# taken over this soon.
LEASE = timedelta(seconds=15)
CLAIM_BATCH = 25
# Steps being delivered at once by one instance in the background (``dispatch_due``).
MAX_IN_FLIGHT = 200
# Past the policy's last repeat, the last tier rings again at least this far apart.
REPEAT_FLOOR = timedelta(seconds=60)


@dataclass(frozen=True)
class _StepPlan:
    """What a claimed step will do, read in one transaction before anything is sent."""

    step: EscalationStep
    alert: Alert
    resident: Resident | None
    # None only for a fallback step: the fallback needs no policy.
    policy: EscalationPolicy | None
    tiers: dict[int, EscalationTier]
    # The tier the step rings: its own, or the nearest one left after the policy was edited.
    tier: EscalationTier | None
    # Whether the step names any channel that reaches a person (not the console alone).
    external: bool
    deliveries: list[Delivery]
    fresh: list[Delivery]


class EscalationEngine:
    """Fires due escalation steps; called by the scheduler and by a periodic sweep."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lifecycle: AlertLifecycle,
        channels: Mapping[str, Channel],
        *,
        clock: Callable[[], datetime] = utcnow,
        instance: str | None = None,
        console_url: str | None = None,
        lease: timedelta = LEASE,
        deadline_s: float = 8.0,
        fallback: tuple[FallbackContact, ...] = (),
    ) -> None:
        """``channels`` maps channel names (email, sms, push) to senders; console is built in.

        Each channel is put behind a per-delivery deadline of ``deadline_s`` and a circuit
        breaker unless it already is.
        """
        self._sessions = sessions
        self._lifecycle = lifecycle
        self._channels: dict[str, GuardedChannel] = {
            name: channel
            if isinstance(channel, GuardedChannel)
            else GuardedChannel(channel, deadline_s=deadline_s)
            for name, channel in channels.items()
        }
        self._clock = clock
        self.instance = instance or f"vaki-{uuid.uuid4().hex[:8]}"
        self._console_url = console_url
        self._lease = lease
        self._desk = DeliveryDesk(sessions, self._channels, clock=clock, console_url=console_url)
        self._fallback = fallback
        self.on_step_scheduled: Callable[[datetime], None] | None = None
        # Steps and retries being delivered in the background, kept so none is lost.
        self._in_flight: set[asyncio.Task[object]] = set()
        self._retrying: asyncio.Task[int] | None = None

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
        """When the earliest pending step falls due (None when nothing waits); failed
        deliveries are retried by the sweep, their backoff being far longer than it."""
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
        """Claim and fire every due step, all at once; retry due deliveries; return how many
        steps fired."""
        fired = 0
        while True:
            claimed = await self._claim()
            if not claimed:
                break
            done = await asyncio.gather(*(self._fire_safely(step_id) for step_id in claimed))
            fired += sum(done)
        await self._desk.retry_failed()
        return fired

    async def dispatch_due(self) -> int:
        """Claim due steps and start delivering each in the background; return how many
        started. A step held up by a slow gateway never holds the next alert's step."""
        started = 0
        while (room := MAX_IN_FLIGHT - len(self._in_flight)) > 0:
            claimed = await self._claim(min(room, CLAIM_BATCH))
            if not claimed:
                break
            for step_id in claimed:
                self._keep(asyncio.create_task(self._fire_safely(step_id), name=f"step-{step_id}"))
            started += len(claimed)
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._desk.retry_failed(), name="delivery-retries")
            self._keep(self._retrying)
        return started

    def _keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a reference to a background task until it is done."""
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def drain(self, within_s: float) -> None:
        """Wait up to ``within_s`` for the steps being delivered (at shutdown); what is still
        unfinished is taken back when the instance starts again, or by another one."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=within_s)

    async def _fire_safely(self, step_id: int) -> bool:
        """Fire one step; an error is logged, and the lease brings the step back."""
        try:
            return await self._fire(step_id)
        except Exception:
            log.exception("escalation step %s failed; it will be retried", step_id)
            return False

    async def _claim(self, limit: int = CLAIM_BATCH) -> list[int]:
        """Atomically take up to ``limit`` due steps (and steps whose lease ran out)."""
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
                .limit(limit)
            )
            where = await claimable(session, candidates, col(EscalationStep.id))
            if where is None:
                return []
            result = await session.exec(
                update(EscalationStep)
                .where(where, due)
                .values(
                    status=StepStatus.CLAIMED,
                    claimed_by=self.instance,
                    claimed_until=now + self._lease,
                )
                .returning(col(EscalationStep.id))
            )
            return [row[0] for row in result.all()]

    def _holds(self, step: EscalationStep, now: datetime) -> bool:
        """True while ``step`` is claimed by this instance under a lease that has not run out."""
        return (
            step.status == StepStatus.CLAIMED
            and step.claimed_by == self.instance
            and step.claimed_until is not None
            and as_utc(step.claimed_until) > now
        )

    async def _fire(self, step_id: int) -> bool:
        """Deliver one claimed step and schedule what follows it; False when it is not ours."""
        plan = await self._plan(step_id)
        if plan is None:
            return False
        async with self._renewing(step_id):
            await asyncio.gather(
                *(self._desk.deliver(plan.alert, plan.step, plan.resident, d) for d in plan.fresh)
            )
        await self._finish(plan)
        return True

    async def _plan(self, step_id: int) -> _StepPlan | None:
        """Read the step, settle what needs no sending, and record the deliveries to make."""
        now = self._clock()
        async with self._sessions() as session:
            step = await session.get(EscalationStep, step_id)
            if step is None or not self._holds(step, now):
                return None
            alert = await session.get(Alert, step.alert_id)
            assert alert is not None
            if step.kind == StepKind.RETRIGGER:
                await self._retrigger(session, step, alert, now)
                return None
            if alert.status != AlertStatus.OPEN:
                step.status, step.done_at = StepStatus.CANCELLED, now
                session.add(step)
                await session.commit()
                return None
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
            tier = _nearest_tier(tiers, step.tier) if policy is not None else None
            if tier is not None and tier.position != step.tier:
                log.warning(
                    "alert %s: tier %s is gone from its policy; tier %s rings instead",
                    alert.id,
                    step.tier,
                    tier.position,
                )
            if tier is None and step.kind != StepKind.FALLBACK:
                # The policy or all its tiers are gone: never silence. The fallback is told
                # now, and the step rings again later, when the policy may have tiers again.
                step.status, step.done_at = StepStatus.DONE, now
                alert.escalation = EscalationState.EXHAUSTED
                following = _broken_following(step, now)
                session.add_all(
                    [
                        step,
                        alert,
                        timeline(alert, "escalation_broken", now, tier=step.tier),
                        *following,
                    ]
                )
                await session.commit()
                if self.on_step_scheduled is not None:
                    for each in following:
                        self.on_step_scheduled(each.due_at)
                return None
            if step.kind == StepKind.FALLBACK:
                recipients = await fallback_recipients(session, alert.team_id, self._fallback)
                channels: list[str] = list(FALLBACK_CHANNELS)
            else:
                assert tier is not None
                recipients = await tier_recipients(
                    session, tier, team_id=alert.team_id, resident_id=alert.resident_id, now=now
                )
                channels = list(tier.channels)
            resident = await session.get(Resident, alert.resident_id) if alert.resident_id else None
            deliveries = self._desk.deliveries(alert, step, channels, recipients)
            fresh = await self._desk.record(session, alert, deliveries, now)
            await session.commit()
        return _StepPlan(
            step=step,
            alert=alert,
            resident=resident,
            policy=policy,
            tiers=tiers,
            tier=tier,
            external=any(channel != "console" for channel in channels),
            deliveries=deliveries,
            fresh=fresh,
        )

    @contextlib.asynccontextmanager
    async def _renewing(self, step_id: int) -> AsyncIterator[None]:
        """Keep renewing our lease on ``step_id`` while its deliveries run."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._lease.total_seconds() / 3)
                try:
                    async with self._sessions() as session, session.begin():
                        await session.exec(
                            update(EscalationStep)
                            .where(
                                col(EscalationStep.id) == step_id,
                                col(EscalationStep.status) == StepStatus.CLAIMED,
                                col(EscalationStep.claimed_by) == self.instance,
                            )
                            .values(claimed_until=self._clock() + self._lease)
                        )
                except Exception as err:  # the database away: the next renewal tries again
                    log.warning("could not renew the lease of step %s: %s", step_id, err)

        task = asyncio.create_task(renew(), name=f"escalation-lease-{step_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _finish(self, plan: _StepPlan) -> None:
        """Record the step's outcome, close it, and schedule what follows."""
        now = self._clock()
        step_id, alert_id = plan.step.id, plan.alert.id or 0
        keys = [d.key for d in plan.deliveries]
        async with self._sessions() as session, session.begin():
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
            outcomes = (
                await session.exec(
                    select(Notification.channel, Notification.status).where(
                        col(Notification.idempotency_key).in_(keys)
                    )
                )
            ).all()
            sent = [channel for channel, status in outcomes if status == NotificationStatus.SENT]
            failed = sum(status != NotificationStatus.SENT for _, status in outcomes)
            # A console is not a person: only a channel that reaches someone counts, unless
            # the tier is the console alone (its author relies on staff watching it).
            reached = sum(channel != "console" for channel in sent) if plan.external else len(sent)
            following: list[EscalationStep] = []
            if step.kind == StepKind.FALLBACK:
                session.add(
                    timeline(
                        alert,
                        "fallback_notified" if reached else "fallback_unreachable",
                        now,
                        sent=len(sent),
                        failed=failed,
                    )
                )
            else:
                session.add(
                    timeline(
                        alert,
                        "notified",
                        now,
                        round=step.round,
                        tier=step.tier,
                        attempt=step.attempt,
                        sent=len(sent),
                        failed=failed,
                        channels=sorted({d.channel for d in plan.deliveries}),
                    )
                )
                assert plan.tier is not None
                following = self._following(
                    plan, step=step, alert=alert, tier=plan.tier, reached=reached, now=now
                )
                if not reached:
                    session.add(timeline(alert, "nobody_reached", now, tier=step.tier))
                exhausted = any(each.kind == StepKind.FALLBACK for each in following)
                if exhausted and alert.escalation != EscalationState.EXHAUSTED:
                    alert.escalation = EscalationState.EXHAUSTED
                    session.add(timeline(alert, "escalation_exhausted", now))
            if alert.status == AlertStatus.OPEN:
                session.add_all(following)
                session.add(alert)
            change = AlertChange.of(alert, "escalated", now)
        if self.on_step_scheduled is not None:
            for each in following:
                self.on_step_scheduled(each.due_at)
        await self._lifecycle.notify([change])

    def _following(
        self,
        plan: _StepPlan,
        *,
        step: EscalationStep,
        alert: Alert,
        tier: EscalationTier,
        reached: int,
        now: datetime,
    ) -> list[EscalationStep]:
        """The steps after a notify step: the next tier, or the last again (and, once every
        tier was tried, the fallback as well, each time the last tier rings again)."""
        # Nobody reached (no one on call, every channel failing): climb at once.
        wait = timedelta(seconds=tier.timeout_s) if reached else timedelta(0)
        assert alert.id is not None
        if step.tier < max(plan.tiers):
            return [
                EscalationStep(
                    alert_id=alert.id,
                    round=step.round,
                    tier=step.tier + 1,
                    attempt=1,
                    due_at=now + wait,
                )
            ]
        assert plan.policy is not None
        if step.attempt < plan.policy.last_tier_repeats:
            return [
                EscalationStep(
                    alert_id=alert.id,
                    round=step.round,
                    tier=step.tier,
                    attempt=step.attempt + 1,
                    due_at=now + wait,
                )
            ]
        # Every tier tried and nobody acknowledged: never silence. The fallback is told at
        # once, and the last tier rings again after its timeout (even when it reached
        # nobody, so that an unreachable tier does not ring in a busy loop).
        return [
            EscalationStep(
                alert_id=alert.id,
                kind=StepKind.FALLBACK,
                round=step.round,
                tier=step.tier,
                attempt=step.attempt,
                due_at=now,
            ),
            EscalationStep(
                alert_id=alert.id,
                round=step.round,
                tier=step.tier,
                attempt=step.attempt + 1,
                due_at=now + max(timedelta(seconds=tier.timeout_s), REPEAT_FLOOR),
            ),
        ]

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


def _nearest_tier(tiers: Mapping[int, EscalationTier], position: int) -> EscalationTier | None:
    """The tier at ``position``, else the next one up, else the last (None without tiers)."""
    if not tiers:
        return None
    above = [each for each in tiers if each >= position]
    return tiers[min(above) if above else max(tiers)]


def _broken_following(step: EscalationStep, now: datetime) -> list[EscalationStep]:
    """After a step whose policy has no tier left: the fallback now, the step again later."""
    assert step.alert_id is not None
    return [
        EscalationStep(
            alert_id=step.alert_id,
            kind=StepKind.FALLBACK,
            round=step.round,
            tier=step.tier,
            attempt=step.attempt,
            due_at=now,
        ),
        EscalationStep(
            alert_id=step.alert_id,
            round=step.round,
            tier=step.tier,
            attempt=step.attempt + 1,
            due_at=now + REPEAT_FLOOR,
        ),
    ]
