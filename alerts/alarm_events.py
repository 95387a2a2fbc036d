"""Alarm events: each event type the MQTT contract marks as an alarm, as the alert it raises.

Which event types are alarms is said once, in the contract's event table
(``devices.ALARM_EVENT_TYPES``); this module only words them. A type the contract marks as
an alarm and this module has no words for still rings, as a critical alert; an unhandled
alarm event of a type nobody knows (stored by an older or newer version) rings too. An alarm
event is marked handled only in the transaction that records its alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.changes import AlertCandidate
from alerts.models import AlertSeverity
from devices import ALARM_EVENT_TYPES, CommittedEvent, Event, unhandled_alarm_events

log = logging.getLogger(__name__)

CRITICAL, HIGH = AlertSeverity.CRITICAL.value, AlertSeverity.HIGH.value

# How the team hears of each alarm type: (severity, title). Types missing here ring as
# ``UNWORDED_ALARM``; tests/alerts/test_alarm_events.py keeps this table and the contract equal.
_WORDING: Mapping[str, tuple[str, str]] = {
    "panic": (CRITICAL, "Panic button pressed"),
    "fall": (CRITICAL, "Fall detected"),
    "help_request": (CRITICAL, "Asked for help on the tablet"),
    "smoke": (CRITICAL, "Smoke alarm"),
    "water_leak": (HIGH, "Water leak"),
    # A malformed message on the event topic is an alarm too, because it may have been a panic.
    "unreadable_event": (CRITICAL, "Unreadable alarm message from a device"),
}
UNWORDED_ALARM = (CRITICAL, "Alarm from a device")

# Alarms from devices: (severity, title), one row per alarm type of the contract.
EVENT_ALARMS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {type_: _WORDING.get(type_, UNWORDED_ALARM) for type_ in sorted(ALARM_EVENT_TYPES)}
)

# An alarm event that the batch path did not turn into an alert within this time is
# picked up by the sweep.
UNHANDLED_GRACE = timedelta(seconds=5)


def condition_key(resident_id: int | None, device_id: str, what: str) -> str:
    """The condition's dedupe key: per resident, or per device when nobody is assigned."""
    return (
        f"resident:{resident_id}:{what}"
        if resident_id is not None
        else f"device:{device_id}:{what}"
    )


def event_alarm(event: CommittedEvent | Event) -> AlertCandidate | None:
    """The alarm an event is, if it is one."""
    alarm = EVENT_ALARMS.get(event.type)
    if alarm is None:
        return None
    return _candidate(event, alarm)


def unhandled_alarm(event: CommittedEvent | Event) -> AlertCandidate:
    """The alert an alarm event left unhandled raises: its own, or a critical one when its type
    is unknown here, so that no alarm event is marked handled without an alert."""
    return _candidate(event, EVENT_ALARMS.get(event.type, UNWORDED_ALARM))


def _candidate(event: CommittedEvent | Event, alarm: tuple[str, str]) -> AlertCandidate:
    """The alert candidate of one alarm event, carrying the event's id so it is marked handled."""
    severity, title = alarm
    return AlertCandidate(
        kind=event.type,
        severity=severity,
        title=title,
        dedupe_key=condition_key(event.resident_id, event.device_id, event.type),
        resident_id=event.resident_id,
        device_id=event.device_id,
        details={"event_id": event.id, **({"data": event.data} if event.data else {})},
    )


async def unhandled_alarms(
    sessions: async_sessionmaker[AsyncSession], now: datetime
) -> list[AlertCandidate]:
    """Alarm events the batch path did not turn into an alert in time, as alerts to raise."""
    async with sessions() as session:
        stragglers = await unhandled_alarm_events(session, now - UNHANDLED_GRACE)
    if stragglers:
        log.warning("%s alarm events had no alert yet; raising them now", len(stragglers))
    return [unhandled_alarm(event) for event in stragglers]
