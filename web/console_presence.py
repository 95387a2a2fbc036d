"""Who is looking at which alert right now, so two people do not drive out to the same door.

Kept in memory per instance: a console page says "still here" every few seconds and an
entry not renewed within ``PRESENCE_TTL`` is gone. Staff on consoles served by another
instance are not seen here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import State

PRESENCE_TTL_S = 45.0
_STATE_KEY = "console_presence"


@dataclass(frozen=True)
class Onlooker:
    """A staff member with an alert open."""

    staff_id: int
    name: str


@dataclass
class Presence:
    """alert id → staff member → until when they count as looking."""

    _seen: dict[int, dict[int, tuple[str, float]]] = field(default_factory=dict)

    def looking(self, alert_id: int, staff_id: int, name: str, now: float | None = None) -> None:
        """``staff_id`` has the alert open (renewed by every heartbeat)."""
        moment = time.monotonic() if now is None else now
        self._seen.setdefault(alert_id, {})[staff_id] = (name, moment + PRESENCE_TTL_S)

    def left(self, alert_id: int, staff_id: int) -> None:
        """``staff_id`` closed the alert's page."""
        self._seen.get(alert_id, {}).pop(staff_id, None)

    def onlookers(
        self, alert_id: int, *, besides: int | None = None, now: float | None = None
    ) -> list[Onlooker]:
        """Who has the alert open now, other than ``besides``, by name."""
        moment = time.monotonic() if now is None else now
        seen = self._seen.get(alert_id, {})
        for staff_id in [s for s, (_, until) in seen.items() if until <= moment]:
            del seen[staff_id]
        if not seen:
            self._seen.pop(alert_id, None)
        return sorted(
            (Onlooker(s, name) for s, (name, _) in seen.items() if s != besides),
            key=lambda o: o.name,
        )


def presence_of(state: State | Any) -> Presence:
    """The instance's presence map, kept in the app's state."""
    found = state.get(_STATE_KEY)
    if isinstance(found, Presence):
        return found
    presence = Presence()
    state[_STATE_KEY] = presence
    return presence
