"""What the console shows of alerts, read in one place: the queue with names, and an
alert's whole story (timeline, escalation, messages, what set it off).

Used by :class:`alerts.AlertService`; the web layer only renders these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from alerts.models import (
    Alert,
    AlertStatus,
    AlertTimelineEntry,
    EscalationPolicy,
    EscalationStep,
    EscalationTier,
    Notification,
)


@dataclass(frozen=True)
class QueueEntry:
    """One alert of the queue with the names a person reads beside it."""

    alert: Alert
    resident_name: str | None
    acknowledged_by: str | None


@dataclass(frozen=True)
class TimelineLine:
    """One line of an alert's story, with who did it."""

    at: datetime
    kind: str
    actor: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class AlertStory:
    """Everything about one alert, as its console page shows it."""

    alert: Alert
    resident: care.Resident | None
    timeline: list[TimelineLine]
    steps: list[EscalationStep]
    notifications: list[Notification]
    policy: EscalationPolicy | None
    tiers: list[EscalationTier]
    staff_names: dict[int, str]
    event: devices.Event | None
    reading: devices.Reading | None
    device: devices.Device | None


async def names_of(session: AsyncSession, model: Any, ids: set[int]) -> dict[int, str]:
    """id → full name of residents or staff."""
    if not ids:
        return {}
    rows = await session.exec(select(model).where(col(model.id).in_(sorted(ids))))
    return {row.id: row.full_name for row in rows.all()}


async def queue_entries(session: AsyncSession, team_ids: frozenset[int]) -> list[QueueEntry]:
    """The open and acknowledged alerts of these teams, with residents' and staff names."""
    found = list(
        (
            await session.exec(
                select(Alert).where(
                    col(Alert.team_id).in_(sorted(team_ids)), Alert.status != AlertStatus.RESOLVED
                )
            )
        ).all()
    )
    residents = await names_of(
        session, care.Resident, {a.resident_id for a in found if a.resident_id is not None}
    )
    staff = await names_of(
        session, care.StaffUser, {a.acknowledged_by for a in found if a.acknowledged_by is not None}
    )
    return [
        QueueEntry(
            alert=alert,
            resident_name=residents.get(alert.resident_id) if alert.resident_id else None,
            acknowledged_by=staff.get(alert.acknowledged_by) if alert.acknowledged_by else None,
        )
        for alert in found
    ]


async def alert_story(
    session: AsyncSession, alert: Alert, resident: care.Resident | None
) -> AlertStory:
    """Read the whole story of ``alert`` (whose resident, if any, was read and logged)."""
    assert alert.id is not None
    entries = (
        await session.exec(
            select(AlertTimelineEntry)
            .where(AlertTimelineEntry.alert_id == alert.id)
            .order_by(col(AlertTimelineEntry.at), col(AlertTimelineEntry.id))
        )
    ).all()
    steps = (
        await session.exec(
            select(EscalationStep)
            .where(EscalationStep.alert_id == alert.id)
            .order_by(col(EscalationStep.round), col(EscalationStep.due_at), col(EscalationStep.id))
        )
    ).all()
    notifications = (
        await session.exec(
            select(Notification)
            .where(Notification.alert_id == alert.id)
            .order_by(col(Notification.created_at), col(Notification.id))
        )
    ).all()
    policy = await session.get(EscalationPolicy, alert.policy_id) if alert.policy_id else None
    tiers = (
        (
            await session.exec(
                select(EscalationTier)
                .where(EscalationTier.policy_id == alert.policy_id)
                .order_by(col(EscalationTier.position))
            )
        ).all()
        if alert.policy_id
        else []
    )
    staff_ids = {e.actor_staff_id for e in entries if e.actor_staff_id is not None}
    staff_ids |= {
        n.recipient_id for n in notifications if n.recipient_kind == "staff" and n.recipient_id
    }
    staff_ids |= {s for s in (alert.acknowledged_by, alert.resolved_by) if s is not None}
    staff = await names_of(session, care.StaffUser, staff_ids)
    event_id, reading_id = alert.details.get("event_id"), alert.details.get("reading_id")
    event = await session.get(devices.Event, event_id) if isinstance(event_id, int) else None
    reading = (
        await session.get(devices.Reading, reading_id) if isinstance(reading_id, int) else None
    )
    device = await session.get(devices.Device, alert.device_id) if alert.device_id else None
    return AlertStory(
        alert=alert,
        resident=resident,
        timeline=[
            TimelineLine(
                e.at, e.kind, staff.get(e.actor_staff_id) if e.actor_staff_id else None, e.data
            )
            for e in entries
        ],
        steps=list(steps),
        notifications=list(notifications),
        policy=policy,
        tiers=list(tiers),
        staff_names=staff,
        event=event,
        reading=reading,
        device=device,
    )
