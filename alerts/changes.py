"""What the alerts domain tells the rest of the service: frozen facts about alert changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.models import Alert


@dataclass(frozen=True)
class AlertCandidate:
    """A condition a rule found, which becomes an alert or repeats an open one."""

    kind: str
    severity: str
    title: str
    dedupe_key: str
    resident_id: int | None = None
    device_id: str | None = None
    details: dict[str, Any] | None = None
    # Technical conditions clear themselves (a device back online); alarms never do.
    auto_resolves: bool = False
    # A state a sweep finds again while it lasts (a device still silent), not a new
    # occurrence: it neither counts up nor rings again on an alert already open.
    continuing: bool = False
    # The care team that answers, when no resident says it (an outage of a team's devices).
    team_id: int | None = None


@dataclass(frozen=True)
class AlertChange:
    """One change of one alert, as the console and notifications see it."""

    alert_id: int
    change: str  # raised, repeated, acknowledged, resolved, escalated, retriggered, ...
    at: datetime
    kind: str
    severity: str
    status: str
    title: str
    count: int
    team_id: int | None
    resident_id: int | None
    escalation: str

    @classmethod
    def of(cls, alert: Alert, change: str, at: datetime) -> AlertChange:
        """The change ``change`` of ``alert`` at ``at``."""
        assert alert.id is not None
        return cls(
            alert_id=alert.id,
            change=change,
            at=at,
            kind=alert.kind,
            severity=alert.severity,
            status=alert.status,
            title=alert.title,
            count=alert.count,
            team_id=alert.team_id,
            resident_id=alert.resident_id,
            escalation=alert.escalation,
        )

    def to_json(self) -> dict[str, Any]:
        """The change as the live stream sends it."""
        return {
            "alert_id": self.alert_id,
            "change": self.change,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "title": self.title,
            "count": self.count,
            "team_id": self.team_id,
            "resident_id": self.resident_id,
            "escalation": self.escalation,
        }


@dataclass(frozen=True)
class TeamNews:
    """Something else a team's consoles must hear of at once: a resident asked to be called,
    or a colleague took the call."""

    change: str  # call_requested, call_taken
    at: datetime
    team_id: int | None
    resident_id: int

    def to_json(self) -> dict[str, Any]:
        """The news as the live stream sends it."""
        return {
            "change": self.change,
            "at": self.at.isoformat(),
            "team_id": self.team_id,
            "resident_id": self.resident_id,
        }
