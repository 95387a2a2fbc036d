"""What staff do with alerts, as one service: the queue, acknowledge, resolve, policies.

The service owns the queries, the role rule and the transaction; the web layer parses,
calls one method and renders. Technicians see and handle technical alerts only (a silent
device, a low battery); clinical alerts are for the care roles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.changes import AlertChange
from alerts.console_views import AlertStory, QueueEntry, alert_story, entries_of
from alerts.errors import AlertNotFoundError
from alerts.lifecycle import AlertLifecycle
from alerts.models import (
    Alert,
    AlertSeverity,
    AlertStatus,
    EscalationPolicy,
    OnCallOverride,
    OnCallShift,
    PushSubscription,
)
from alerts.policies import PolicySpec, add_push_subscription, save_policy
from alerts.queue import QueueFilter, queue_alerts, ringing_alerts, technical_problems
from care import Actor, CareTeam, NotFoundError, Permission, visible_resident

SEVERITY_ORDER = {"critical": 0, "high": 1, "normal": 2, "technical": 3}


def is_technical(severity: str) -> bool:
    """Whether an alert of ``severity`` is about a device, not a resident's care."""
    return severity == AlertSeverity.TECHNICAL.value


def may_see(actor: Actor, team_id: int | None, severity: str) -> bool:
    """Whether ``actor`` may see an alert (or a change of one) of this team and severity."""
    if team_id not in actor.team_ids:
        return False
    if is_technical(severity):
        return actor.may(Permission.READ_TECHNICAL_ALERTS)
    return actor.may(Permission.READ_CLINICAL)


class AlertService:
    """Alerts of a staff member's care teams, as far as their role reaches."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], lifecycle: AlertLifecycle | None = None
    ) -> None:
        """Query through ``sessions``; acknowledge and resolve through ``lifecycle``."""
        self._sessions = sessions
        self._lifecycle = lifecycle

    def _alarms(self) -> AlertLifecycle:
        """The alert lifecycle (acknowledge and resolve need the alarm path running)."""
        if self._lifecycle is None:
            raise RuntimeError("the alarm path is not running")
        return self._lifecycle

    async def queue(self, actor: Actor, *, include_resolved: bool = False) -> list[Alert]:
        """The caller's alert queue: critical first, newest first within a severity.

        A technician's queue holds technical alerts only.
        """
        async with self._sessions() as session:
            query = select(Alert).where(col(Alert.team_id).in_(actor.team_ids))
            if not include_resolved:
                query = query.where(Alert.status != AlertStatus.RESOLVED)
            if not actor.may(Permission.READ_CLINICAL):
                query = query.where(Alert.severity == AlertSeverity.TECHNICAL.value)
            found = list((await session.exec(query)).all())
        found.sort(key=lambda a: (SEVERITY_ORDER.get(a.severity, 9), -a.last_seen_at.timestamp()))
        return found

    async def _to_act_on(self, actor: Actor, alert_id: int) -> Alert:
        """The alert, if ``actor`` may act on it: 404 for another team's, 403 beyond the role."""
        async with self._sessions() as session:
            alert = await session.get(Alert, alert_id)
        if alert is None or alert.team_id not in actor.team_ids:
            raise AlertNotFoundError(f"no alert {alert_id}")
        actor.require(
            Permission.READ_TECHNICAL_ALERTS
            if is_technical(alert.severity)
            else Permission.ACT_ON_ALERTS
        )
        return alert

    async def visible(self, actor: Actor, alert_id: int) -> Alert:
        """The alert, if one of the caller's teams answers for it and their role reaches it."""
        async with self._sessions() as session:
            alert = await session.get(Alert, alert_id)
        if alert is None or not may_see(actor, alert.team_id, alert.severity):
            raise AlertNotFoundError(f"no alert {alert_id}")
        return alert

    async def console_queue(
        self, actor: Actor, wanted: QueueFilter | None = None
    ) -> list[QueueEntry]:
        """Open and acknowledged alerts of the caller's teams with names and devices, most
        urgent first (unacknowledged, then severity, then age), as ``wanted`` filters them.

        The care roles' default leaves technical alerts out; a technician's queue holds
        technical alerts only.
        """
        wanted = wanted or QueueFilter()
        if not actor.may(Permission.READ_CLINICAL):
            wanted = QueueFilter(mine=wanted.mine, severity="technical", team_id=wanted.team_id)
        async with self._sessions() as session:
            found = await queue_alerts(session, actor.team_ids, actor.staff_id, wanted)
            found = [a for a in found if may_see(actor, a.team_id, a.severity)]
            return await entries_of(session, found)

    async def technical_problems(self, actor: Actor) -> int:
        """How many technical problems the caller's teams have (the queue shows the number)."""
        async with self._sessions() as session:
            return await technical_problems(session, actor.team_ids)

    async def ringing(self, actor: Actor) -> list[QueueEntry]:
        """Critical and high alerts nobody has acknowledged: they ring on every console page."""
        if not actor.may(Permission.READ_CLINICAL):
            return []
        async with self._sessions() as session:
            return await entries_of(session, await ringing_alerts(session, actor.team_ids))

    async def team_names(self, actor: Actor) -> dict[int, str]:
        """The caller's care teams by id, for the queue's team filter."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(CareTeam).where(col(CareTeam.id).in_(sorted(actor.team_ids)))
            )
            return {team.id: team.name for team in rows.all() if team.id is not None}

    async def story(self, actor: Actor, alert_id: int) -> AlertStory:
        """Everything about one alert; reading its resident's part is logged."""
        alert = await self.visible(actor, alert_id)
        async with self._sessions() as session, session.begin():
            resident = (
                await visible_resident(
                    session,
                    actor,
                    alert.resident_id,
                    action="console.alert",
                    context=f"alert {alert_id}",
                )
                if alert.resident_id is not None
                else None
            )
            return await alert_story(session, alert, resident)

    async def tell_teams(self, change: str, resident_id: int) -> None:
        """Tell the resident's team's consoles of news that is not an alert (a call taken)."""
        if self._lifecycle is not None:
            await self._lifecycle.tell_teams(change, resident_id)

    async def acknowledge(self, actor: Actor, alert_id: int) -> AlertChange:
        """I have it: the escalation stops."""
        await self._to_act_on(actor, alert_id)
        return await self._alarms().acknowledge(alert_id, actor.staff_id)

    async def resolve(self, actor: Actor, alert_id: int, *, outcome: str, note: str) -> AlertChange:
        """Close the alert with what happened and a note."""
        await self._to_act_on(actor, alert_id)
        return await self._alarms().resolve(alert_id, actor.staff_id, outcome=outcome, note=note)

    @staticmethod
    def _runs_team(actor: Actor, team_id: int) -> None:
        """Not found for a team of others; not allowed for a role that does not run teams."""
        if team_id not in actor.team_ids:
            raise NotFoundError(f"no team {team_id}")
        actor.require(Permission.EDIT_POLICY)

    async def save_policy(self, actor: Actor, team_id: int, spec: PolicySpec) -> EscalationPolicy:
        """Replace a team's escalation policy; :class:`PolicyGapError` names every gap."""
        self._runs_team(actor, team_id)
        async with self._sessions() as session, session.begin():
            return await save_policy(session, team_id, spec)

    async def subscribe_to_push(
        self, actor: Actor, subscription: dict[str, Any]
    ) -> PushSubscription:
        """This staff member's browser takes web push notifications."""
        async with self._sessions() as session, session.begin():
            return await add_push_subscription(session, actor.staff_id, subscription)

    async def add_shift(
        self, actor: Actor, team_id: int, *, staff_id: int, weekday: int, starts: str, ends: str
    ) -> OnCallShift:
        """A weekly on-call shift; one ending before it starts runs overnight."""
        self._runs_team(actor, team_id)
        shift = OnCallShift(
            team_id=team_id, staff_id=staff_id, weekday=weekday, starts=starts, ends=ends
        )
        async with self._sessions() as session, session.begin():
            session.add(shift)
        return shift

    async def remove_shift(self, actor: Actor, team_id: int, shift_id: int) -> None:
        """Take a weekly shift of the team off the rota (one already gone is fine)."""
        self._runs_team(actor, team_id)
        async with self._sessions() as session, session.begin():
            shift = await session.get(OnCallShift, shift_id)
            if shift is not None and shift.team_id == team_id:
                await session.delete(shift)

    async def add_override(
        self,
        actor: Actor,
        team_id: int,
        *,
        staff_id: int,
        starts_at: datetime,
        ends_at: datetime,
        note: str = "",
    ) -> OnCallOverride:
        """Someone else on call for a while: it wins over the weekly shifts."""
        self._runs_team(actor, team_id)
        override = OnCallOverride(
            team_id=team_id, staff_id=staff_id, starts_at=starts_at, ends_at=ends_at, note=note
        )
        async with self._sessions() as session, session.begin():
            session.add(override)
        return override

    async def remove_override(self, actor: Actor, team_id: int, override_id: int) -> None:
        """Take an override of the team off the rota (one already gone is fine)."""
        self._runs_team(actor, team_id)
        async with self._sessions() as session, session.begin():
            override = await session.get(OnCallOverride, override_id)
            if override is not None and override.team_id == team_id:
                await session.delete(override)
