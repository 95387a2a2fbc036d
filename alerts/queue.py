"""The alert queue as staff work it: what needs a person first, technical problems apart.

Order: alerts nobody has acknowledged first (an exhausted escalation before all), then by
severity, then the oldest first, since it has waited longest. Technical alerts are kept out
of the nurses' default queue and only counted; technicians and a "technical" filter see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.models import Alert, AlertSeverity, AlertStatus, EscalationState
from devices import Device

SEVERITY_RANK = {"critical": 0, "high": 1, "normal": 2, "technical": 3}
SEVERITIES = tuple(SEVERITY_RANK)


@dataclass(frozen=True)
class QueueFilter:
    """What the staff member asked to see; the default is every care alert of their teams."""

    mine: bool = False
    severity: str | None = None
    team_id: int | None = None

    @classmethod
    def parse(cls, mine: str | None, severity: str | None, team: str | None) -> QueueFilter:
        """A filter from query parameters; anything unknown is ignored, never an error."""
        return cls(
            mine=mine in ("1", "true", "on"),
            severity=severity if severity in SEVERITY_RANK else None,
            team_id=int(team) if team and team.isdigit() else None,
        )

    @property
    def technical(self) -> bool:
        """The technical problems, which the default queue leaves out."""
        return self.severity == AlertSeverity.TECHNICAL


def urgency(alert: Alert) -> tuple[int, int, int, datetime]:
    """The queue's sort key: unacknowledged, exhausted escalation, severity, oldest first."""
    return (
        0 if alert.status == AlertStatus.OPEN else 1,
        0 if alert.escalation == EscalationState.EXHAUSTED else 1,
        SEVERITY_RANK.get(alert.severity, 9),
        alert.first_seen_at,
    )


async def queue_alerts(
    session: AsyncSession, team_ids: frozenset[int], staff_id: int, wanted: QueueFilter
) -> list[Alert]:
    """Unresolved alerts of ``team_ids`` that ``wanted`` asks for, most urgent first."""
    teams = sorted(team_ids & {wanted.team_id}) if wanted.team_id else sorted(team_ids)
    if not teams:
        return []
    query = select(Alert).where(col(Alert.team_id).in_(teams), Alert.status != AlertStatus.RESOLVED)
    if wanted.severity:
        query = query.where(Alert.severity == wanted.severity)
    else:
        query = query.where(Alert.severity != AlertSeverity.TECHNICAL)
    if wanted.mine:
        query = query.where(Alert.acknowledged_by == staff_id)
    return sorted((await session.exec(query)).all(), key=urgency)


async def technical_problems(session: AsyncSession, team_ids: frozenset[int]) -> int:
    """How many unresolved technical alerts the teams have (the queue shows just the number)."""
    if not team_ids:
        return 0
    found = (
        await session.exec(
            select(func.count())
            .select_from(Alert)
            .where(
                col(Alert.team_id).in_(sorted(team_ids)),
                Alert.status != AlertStatus.RESOLVED,
                Alert.severity == AlertSeverity.TECHNICAL,
            )
        )
    ).one()
    return int(found)


async def ringing_alerts(session: AsyncSession, team_ids: frozenset[int]) -> list[Alert]:
    """Critical and high alerts nobody has acknowledged: these ring on every console page."""
    if not team_ids:
        return []
    found = await session.exec(
        select(Alert).where(
            col(Alert.team_id).in_(sorted(team_ids)),
            Alert.status == AlertStatus.OPEN,
            col(Alert.severity).in_([AlertSeverity.CRITICAL, AlertSeverity.HIGH]),
        )
    )
    return sorted(found.all(), key=urgency)


async def devices_of(session: AsyncSession, found: list[Alert]) -> dict[str, Device]:
    """The devices behind the alerts, by id, so each row can say which device it was."""
    ids = sorted({a.device_id for a in found if a.device_id is not None})
    if not ids:
        return {}
    rows = await session.exec(select(Device).where(col(Device.id).in_(ids)))
    return {device.id: device for device in rows.all()}
