"""The alert lifecycle: raised → acknowledged → resolved, every change on the timeline.

One open alert per condition (its dedupe key): a repeat counts up on the open alert. Raising
an alert schedules its first escalation step in the same transaction, so an alert can never
exist without the step that makes sure somebody hears of it.

A new alarm event on an acknowledged alert (the pendant pressed again) means the situation
changed: the alert opens again and escalates from the first tier. A condition a sweep finds
again while it lasts (a device still silent) changes nothing. Technical alerts never climb the
care team's clinical policy, which may tell relatives: they go to the team's technicians.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.changes import AlertCandidate, AlertChange, TeamNews
from alerts.errors import AlertNotFoundError, AlertStateError
from alerts.models import (
    Alert,
    AlertSeverity,
    AlertStatus,
    AlertTimelineEntry,
    EscalationPolicy,
    EscalationState,
    EscalationStep,
    StepKind,
    StepStatus,
)
from care import ResidentTeam, utcnow
from devices import mark_alarms_handled

log = logging.getLogger(__name__)

ChangeListener = Callable[[AlertChange | TeamNews], Awaitable[None]]
# A technical alert that clears and comes back within this time reopens, instead of
# ringing anew: flapping is damped.
FLAP_WINDOW = timedelta(minutes=15)
# Conditions raised in one transaction.
RAISE_BATCH = 100


def timeline(
    alert: Alert, kind: str, at: datetime, actor: int | None = None, **data: Any
) -> AlertTimelineEntry:
    """A timeline entry of ``alert``."""
    assert alert.id is not None
    return AlertTimelineEntry(alert_id=alert.id, at=at, kind=kind, actor_staff_id=actor, data=data)


class AlertLifecycle:
    """Raises, acknowledges and resolves alerts; tells listeners about every change."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Work on ``sessions``; ``clock`` is injectable for tests."""
        self.sessions = sessions
        self._clock = clock
        self._listeners: list[ChangeListener] = []
        self.on_step_scheduled: Callable[[datetime], None] | None = None

    def listen(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every committed change."""
        self._listeners.append(listener)

    async def tell_teams(self, change: str, resident_id: int) -> TeamNews:
        """Tell the consoles of the resident's team news that is not an alert (a call request)."""
        async with self.sessions() as session:
            team_id = await self._team_of(session, resident_id)
        news = TeamNews(change=change, at=self._clock(), team_id=team_id, resident_id=resident_id)
        await self.notify([news])
        return news

    async def notify(self, changes: Sequence[AlertChange | TeamNews]) -> None:
        """Hand committed changes to the listeners; one failing listener stops no other."""
        for change in changes:
            for listener in self._listeners:
                try:
                    await listener(change)
                except Exception:  # a console that cannot be told must not stop the alarm
                    log.exception("alert listener failed on %s", change)

    async def raise_alerts(self, candidates: list[AlertCandidate]) -> list[AlertChange]:
        """Open an alert per new condition, or count a repeat on the open one.

        Up to RAISE_BATCH conditions share one transaction (a burst of missed check-ins is
        not a burst of commits); when a chunk fails, its conditions are retried one by one,
        so one that cannot be raised holds back no other. Consoles hear of every alert
        recorded; then, when any failed, ``AlertStateError`` names them.
        """
        changes: list[AlertChange] = []
        failed: list[str] = []
        try:
            for start in range(0, len(candidates), RAISE_BATCH):
                chunk = candidates[start : start + RAISE_BATCH]
                try:
                    changes += await self._raise_together(chunk)
                except Exception:
                    for candidate in chunk:
                        try:
                            changes += await self._raise_alone(candidate)
                        except Exception:
                            log.exception("could not raise alert %s", candidate.dedupe_key)
                            failed.append(candidate.dedupe_key)
        finally:
            await self.notify(changes)
        if failed:
            raise AlertStateError(f"could not raise {len(failed)} alerts: {', '.join(failed)}")
        return changes

    async def _raise_alone(self, candidate: AlertCandidate) -> list[AlertChange]:
        """One candidate in its own transaction, retried when another instance got there first."""
        for _ in range(3):
            try:
                return await self._raise_together([candidate])
            except IntegrityError:
                # Another instance opened the same condition a moment ago: now a repeat.
                continue
        raise AlertStateError(f"could not record alert {candidate.dedupe_key}")

    async def _raise_together(self, chunk: list[AlertCandidate]) -> list[AlertChange]:
        """Candidates in one transaction; wake the escalation once when any step was set."""
        now = self._clock()
        changes = []
        scheduled = False
        async with self.sessions() as session, session.begin():
            for candidate in chunk:
                change, step = await self._raise_in(session, candidate, now)
                if change is not None:
                    changes.append(change)
                scheduled = scheduled or step
        if scheduled and self.on_step_scheduled is not None:
            self.on_step_scheduled(now)
        return changes

    async def _raise_in(
        self, session: AsyncSession, candidate: AlertCandidate, now: datetime
    ) -> tuple[AlertChange | None, bool]:
        """One candidate inside the caller's transaction (which also marks its event handled);
        with whether an escalation step was scheduled. None when nothing changed."""
        event_id = (candidate.details or {}).get("event_id")
        if isinstance(event_id, int):
            await mark_alarms_handled(session, [event_id], now)
        query = select(Alert).where(
            Alert.dedupe_key == candidate.dedupe_key, Alert.status != AlertStatus.RESOLVED
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update()
        existing = (await session.exec(query)).first()
        if existing is not None and candidate.continuing:
            # Still the same state: the open alert says so already.
            return None, False
        if existing is not None and self._is_new_alarm(existing, candidate):
            return await self._pressed_again(session, existing, now), True
        if existing is not None:
            existing.count += 1
            existing.last_seen_at = now
            session.add(existing)
            session.add(timeline(existing, "repeated", now, count=existing.count))
            return AlertChange.of(existing, "repeated", now), False
        reopened = await self._reopen_if_flapping(session, candidate, now)
        if reopened is not None:
            return reopened, False
        team_id = candidate.team_id or await self._team_of(session, candidate.resident_id)
        technical = candidate.severity == AlertSeverity.TECHNICAL
        # A technical alert never climbs the clinical policy (which may tell relatives).
        policy = None if technical else await self._policy_of(session, team_id)
        alert = Alert(
            resident_id=candidate.resident_id,
            device_id=candidate.device_id,
            team_id=team_id,
            kind=candidate.kind,
            dedupe_key=candidate.dedupe_key,
            severity=AlertSeverity(candidate.severity),
            title=candidate.title,
            details={**(candidate.details or {}), "auto_resolves": candidate.auto_resolves},
            first_seen_at=now,
            last_seen_at=now,
            policy_id=policy.id if policy else None,
            escalation=EscalationState.ACTIVE if policy else EscalationState.NONE,
        )
        session.add(alert)
        await session.flush()
        session.add(timeline(alert, "raised", now, title=candidate.title))
        if policy is not None:
            assert alert.id is not None
            session.add(EscalationStep(alert_id=alert.id, tier=1, attempt=1, due_at=now))
        elif technical:
            # The team's technicians see it on their console; no nurse is woken for it.
            session.add(timeline(alert, "for_technicians", now, team_id=team_id))
        else:
            session.add(timeline(alert, "no_policy", now, team_id=team_id))
            # Nobody will be told, and no team's console shows it: say so loudly.
            log.error(
                "alert %s (%s) has no care team or escalation policy to reach anybody",
                alert.id,
                candidate.dedupe_key,
            )
        return AlertChange.of(alert, "raised", now), policy is not None

    @staticmethod
    def _is_new_alarm(existing: Alert, candidate: AlertCandidate) -> bool:
        """A new alarm event (not a lasting state) on an alert someone has acknowledged."""
        return (
            existing.status == AlertStatus.ACKNOWLEDGED
            and not candidate.continuing
            and isinstance((candidate.details or {}).get("event_id"), int)
        )

    async def _pressed_again(
        self, session: AsyncSession, alert: Alert, now: datetime
    ) -> AlertChange:
        """Pressed again after it was acknowledged: open again, escalate from the first tier."""
        assert alert.id is not None
        previously = alert.acknowledged_by
        alert.count += 1
        alert.last_seen_at = now
        alert.status = AlertStatus.OPEN
        alert.acknowledged_by, alert.acknowledged_at = None, None
        session.add(alert)
        session.add(
            timeline(alert, "pressed_again", now, count=alert.count, acknowledged_by=previously)
        )
        await _cancel_steps(session, alert.id)
        policy = await session.get(EscalationPolicy, alert.policy_id) if alert.policy_id else None
        if policy is not None:
            alert.escalation = EscalationState.ACTIVE
            session.add(
                EscalationStep(
                    alert_id=alert.id,
                    round=await next_round(session, alert.id),
                    tier=1,
                    attempt=1,
                    due_at=now,
                )
            )
        return AlertChange.of(alert, "pressed_again", now)

    async def _reopen_if_flapping(
        self, session: AsyncSession, candidate: AlertCandidate, now: datetime
    ) -> AlertChange | None:
        """A technical condition back within the flap window reopens its last alert."""
        if not candidate.auto_resolves:
            return None
        recent = (
            await session.exec(
                select(Alert)
                .where(
                    Alert.dedupe_key == candidate.dedupe_key,
                    Alert.status == AlertStatus.RESOLVED,
                    col(Alert.resolved_by).is_(None),
                    col(Alert.resolved_at) >= now - FLAP_WINDOW,
                )
                .order_by(col(Alert.id).desc())
            )
        ).first()
        if recent is None:
            return None
        recent.status = AlertStatus.OPEN
        recent.count += 1
        recent.last_seen_at = now
        recent.resolved_at = None
        recent.outcome = None
        session.add(recent)
        session.add(timeline(recent, "reopened", now, reason="flapping"))
        return AlertChange.of(recent, "reopened", now)

    @staticmethod
    async def _team_of(session: AsyncSession, resident_id: int | None) -> int | None:
        """The care team that answers for a resident (the first, when there are several)."""
        if resident_id is None:
            return None
        return (
            await session.exec(
                select(ResidentTeam.team_id)
                .where(ResidentTeam.resident_id == resident_id)
                .order_by(col(ResidentTeam.team_id))
            )
        ).first()

    @staticmethod
    async def _policy_of(session: AsyncSession, team_id: int | None) -> EscalationPolicy | None:
        """The team's escalation policy."""
        if team_id is None:
            return None
        return (
            await session.exec(
                select(EscalationPolicy)
                .where(EscalationPolicy.team_id == team_id)
                .order_by(col(EscalationPolicy.id))
            )
        ).first()

    async def acknowledge(self, alert_id: int, staff_id: int) -> AlertChange:
        """Someone has it: escalation stops; it rings again if not resolved in time."""
        now = self._clock()
        async with self.sessions() as session, session.begin():
            alert = await self._load(session, alert_id)
            if alert.status != AlertStatus.OPEN:
                raise AlertStateError(f"alert {alert_id} is {alert.status}, not open")
            alert.status = AlertStatus.ACKNOWLEDGED
            alert.acknowledged_by, alert.acknowledged_at = staff_id, now
            alert.escalation = EscalationState.STOPPED
            session.add(alert)
            session.add(timeline(alert, "acknowledged", now, actor=staff_id))
            await _cancel_steps(session, alert_id)
            policy = (
                await session.get(EscalationPolicy, alert.policy_id) if alert.policy_id else None
            )
            if policy is not None and policy.retrigger_after_min > 0:
                session.add(
                    EscalationStep(
                        alert_id=alert_id,
                        kind=StepKind.RETRIGGER,
                        round=await next_round(session, alert_id),
                        tier=0,
                        attempt=1,
                        due_at=now + timedelta(minutes=policy.retrigger_after_min),
                    )
                )
            change = AlertChange.of(alert, "acknowledged", now)
        await self.notify([change])
        return change

    async def resolve(
        self,
        alert_id: int,
        staff_id: int | None,
        *,
        outcome: str,
        note: str = "",
        settled_by_resident: bool = False,
    ) -> AlertChange:
        """Closed, with what happened; nothing more escalates.

        Without a staff member, only a technical alert or one the resident settled (by
        answering the check-in it is about) can be resolved.
        """
        now = self._clock()
        async with self.sessions() as session, session.begin():
            alert = await self._load(session, alert_id)
            if alert.status == AlertStatus.RESOLVED:
                raise AlertStateError(f"alert {alert_id} is already resolved")
            by_itself = alert.details.get("auto_resolves") or settled_by_resident
            if staff_id is None and not by_itself:
                raise AlertStateError(f"alert {alert_id} ({alert.kind}) never resolves itself")
            alert.status = AlertStatus.RESOLVED
            alert.resolved_by, alert.resolved_at = staff_id, now
            alert.outcome, alert.note = outcome, note or None
            alert.escalation = EscalationState.STOPPED
            session.add(alert)
            session.add(
                timeline(alert, "resolved", now, actor=staff_id, outcome=outcome, note=note)
            )
            await _cancel_steps(session, alert_id)
            change = AlertChange.of(alert, "resolved", now)
        await self.notify([change])
        return change

    async def resolve_condition(
        self, dedupe_key: str, outcome: str, *, settled_by_resident: bool = False
    ) -> AlertChange | None:
        """A condition that cleared: resolve its open alert, if any.

        Only technical alerts clear by themselves; an alarm is resolved this way only when
        the resident settled it (answered the check-in the alert is about).
        """
        async with self.sessions() as session:
            alert = (
                await session.exec(
                    select(Alert).where(
                        Alert.dedupe_key == dedupe_key, Alert.status != AlertStatus.RESOLVED
                    )
                )
            ).first()
        if alert is None or alert.id is None:
            return None
        if not (settled_by_resident or alert.details.get("auto_resolves")):
            return None
        return await self.resolve(
            alert.id, None, outcome=outcome, settled_by_resident=settled_by_resident
        )

    @staticmethod
    async def _load(session: AsyncSession, alert_id: int) -> Alert:
        """The alert, locked for update on PostgreSQL."""
        query = select(Alert).where(Alert.id == alert_id)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update()
        alert = (await session.exec(query)).first()
        if alert is None:
            raise AlertNotFoundError(f"no alert has id {alert_id}")
        return alert


async def _cancel_steps(session: AsyncSession, alert_id: int) -> None:
    """Call off every step of the alert that has not fired."""
    await session.exec(
        update(EscalationStep)
        .where(
            col(EscalationStep.alert_id) == alert_id,
            col(EscalationStep.status).in_([StepStatus.PENDING, StepStatus.CLAIMED]),
        )
        .values(status=StepStatus.CANCELLED)
    )


async def next_round(session: AsyncSession, alert_id: int) -> int:
    """The number of the alert's next escalation round (one more than any step's so far)."""
    highest = (
        await session.exec(
            select(func.max(EscalationStep.round)).where(EscalationStep.alert_id == alert_id)
        )
    ).first()
    return (highest or 0) + 1
