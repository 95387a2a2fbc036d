"""What changed in alerts since a moment: how a live feed that was cut off catches up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.changes import AlertChange
from alerts.models import Alert, AlertStatus, AlertTimelineEntry

# Most alerts one catch-up reports (the newest changes); consoles also re-fetch their queue.
CATCH_UP_LIMIT = 500


async def changes_since(
    sessions: async_sessionmaker[AsyncSession], since: datetime
) -> list[AlertChange]:
    """One change per alert that changed at or after ``since``, oldest first.

    An alert first seen since then and still open is reported as ``raised``, so consoles
    ring for it as they would have; any other as ``caught_up`` (the console re-reads it).
    """
    async with sessions() as session:
        changed = select(AlertTimelineEntry.alert_id).where(col(AlertTimelineEntry.at) >= since)
        found = (
            await session.exec(
                select(Alert)
                .where(or_(col(Alert.id).in_(changed), col(Alert.first_seen_at) >= since))
                .order_by(col(Alert.last_seen_at).desc())
                .limit(CATCH_UP_LIMIT)
            )
        ).all()
    changes = [
        AlertChange.of(
            alert,
            "raised"
            if alert.status == AlertStatus.OPEN and alert.first_seen_at >= since
            else "caught_up",
            alert.last_seen_at,
        )
        for alert in found
    ]
    return sorted(changes, key=lambda change: change.at)
