"""Where a resident's own call for help stands, as their tablet shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.models import Alert, AlertStatus
from care import StaffUser

HELP_REQUEST = "help_request"


@dataclass(frozen=True)
class HelpState:
    """The newest "I need help" alert of a resident: open, acknowledged (by whom) or resolved."""

    alert_id: int
    status: AlertStatus
    first_name: str | None
    role: str | None
    last_seen_at: datetime

    def to_json(self) -> dict[str, object]:
        """As the tablet's API sends it."""
        return {
            "alert_id": self.alert_id,
            "status": self.status.value,
            "by": {"name": self.first_name, "role": self.role} if self.first_name else None,
            "at": self.last_seen_at.isoformat(),
        }


async def latest_help(
    sessions: async_sessionmaker[AsyncSession], resident_id: int, since: datetime
) -> HelpState | None:
    """The resident's newest help alert raised or repeated since ``since``, with the first
    name and role of the staff member who acknowledged it."""
    async with sessions() as session:
        return await _latest_help(session, resident_id, since)


async def _latest_help(
    session: AsyncSession, resident_id: int, since: datetime
) -> HelpState | None:
    """The newest help alert in one session."""
    alert = (
        await session.exec(
            select(Alert)
            .where(
                col(Alert.resident_id) == resident_id,
                col(Alert.kind) == HELP_REQUEST,
                col(Alert.last_seen_at) >= since,
            )
            .order_by(col(Alert.id).desc())
            .limit(1)
        )
    ).first()
    if alert is None or alert.id is None:
        return None
    staff = None
    if alert.acknowledged_by is not None:
        staff = await session.get(StaffUser, alert.acknowledged_by)
    return HelpState(
        alert_id=alert.id,
        status=AlertStatus(alert.status),
        first_name=staff.full_name.split(" ", 1)[0] if staff else None,
        role=str(staff.role) if staff else None,
        last_seen_at=alert.last_seen_at,
    )
