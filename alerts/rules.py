"""Alert rules: what in a committed batch, or in a periodic look at the homes, is an alarm.

Rules are data (``AlertRule`` rows): a care team's rule applies to its residents unless a
resident has their own rule of the same kind and subject. Teams without rules of their own
get ``DEFAULT_RULES``. Event alarms (panic, fall, ...) are not configurable: they always ring.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.alarm_events import condition_key as _key
from alerts.alarm_events import event_alarm, unhandled_alarms
from alerts.changes import AlertCandidate
from alerts.models import Alert, AlertRule, AlertSeverity, AlertStatus
from alerts.silence import silences
from care import Resident, ResidentTeam
from devices import CommittedEvent, CommittedReading, Device, Event, IngestedBatch, Reading

log = logging.getLogger(__name__)

CRITICAL, HIGH, NORMAL, TECHNICAL = (s.value for s in AlertSeverity)

NIGHT = (time(23, 0), time(6, 0))
WAKING = (time(8, 0), time(21, 0))
SILENCE_FACTOR = 3
LOW_BATTERY, BATTERY_RECOVERED = 15, 25


@dataclass(frozen=True)
class Rule:
    """One effective rule."""

    kind: str
    subject: str
    severity: str
    params: dict[str, Any] = field(default_factory=dict)


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "vital_range", "spo2", HIGH, {"type": "spo2", "field": "spo2", "min": 90, "consecutive": 2}
    ),
    Rule(
        "vital_range",
        "systolic_high",
        HIGH,
        {"type": "blood_pressure", "field": "systolic", "max": 179, "consecutive": 1},
    ),
    Rule(
        "vital_range",
        "diastolic_high",
        HIGH,
        {"type": "blood_pressure", "field": "diastolic", "max": 109, "consecutive": 1},
    ),
    Rule(
        "vital_range",
        "systolic_low",
        HIGH,
        {"type": "blood_pressure", "field": "systolic", "min": 90, "consecutive": 2},
    ),
    Rule(
        "vital_range",
        "heart_rate",
        HIGH,
        {"type": "heart_rate", "field": "heart_rate", "min": 40, "max": 130, "consecutive": 2},
    ),
    Rule(
        "vital_range",
        "temperature",
        NORMAL,
        {"type": "temperature", "field": "temperature", "min": 35.0, "max": 38.4, "consecutive": 1},
    ),
    Rule(
        "vital_range",
        "glucose",
        HIGH,
        {"type": "glucose", "field": "glucose", "min": 3.5, "max": 20.0, "consecutive": 1},
    ),
    Rule("weight_gain", "weight", NORMAL, {"kg": 2.0, "days": 3}),
    Rule("night_door", "door", HIGH, {}),
    Rule("no_motion", "motion", HIGH, {"hours": 4}),
    Rule("bed_exit_no_return", "bed", HIGH, {"minutes": 30}),
)

_LABELS = {
    "spo2": ("SpO2", "%"),
    "systolic": ("Systolic pressure", "mmHg"),
    "diastolic": ("Diastolic pressure", "mmHg"),
    "heart_rate": ("Heart rate", "bpm"),
    "temperature": ("Temperature", "°C"),
    "glucose": ("Glucose", "mmol/L"),
}


def _in_window(local: datetime, window: tuple[time, time]) -> bool:
    """True when the local time lies in the window (which may run over midnight)."""
    start, end = window
    now = local.time()
    return start <= now < end if start < end else now >= start or now < end


class RuleEngine:
    """Evaluates rules on committed batches and in the periodic sweep."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Work on ``sessions``."""
        self._sessions = sessions

    async def rules_for(self, session: AsyncSession, resident_id: int) -> list[Rule]:
        """The resident's effective rules: own rules replace the team's of the same subject."""
        team_ids = list(
            (
                await session.exec(
                    select(ResidentTeam.team_id).where(ResidentTeam.resident_id == resident_id)
                )
            ).all()
        )
        rows = (
            await session.exec(
                select(AlertRule).where(
                    (col(AlertRule.resident_id) == resident_id)
                    | (col(AlertRule.team_id).in_(team_ids) & col(AlertRule.resident_id).is_(None))
                )
            )
        ).all()
        team_rules = [r for r in rows if r.resident_id is None]
        effective = {(r.kind, r.subject): r for r in DEFAULT_RULES} if not team_rules else {}
        for row in sorted(rows, key=lambda r: r.resident_id is not None):
            effective[(row.kind, row.subject)] = Rule(
                row.kind, row.subject, row.severity, row.params
            )
            if not row.enabled:
                del effective[(row.kind, row.subject)]
        return list(effective.values())

    @staticmethod
    def event_alarms(batch: IngestedBatch) -> list[AlertCandidate]:
        """The alarm events of one committed batch, as the alerts they raise."""
        return [c for event in batch.events if (c := event_alarm(event))]

    async def on_batch(
        self, batch: IngestedBatch, *, event_alarms: bool = True
    ) -> list[AlertCandidate]:
        """Alarms in one committed batch of readings and events (without its alarm events
        when ``event_alarms`` is false). A rule that fails for one resident is logged and
        the others are still evaluated."""
        candidates = self.event_alarms(batch) if event_alarms else []
        residents = {r.resident_id for r in batch.readings if r.resident_id is not None} | {
            e.resident_id
            for e in batch.events
            if e.resident_id is not None and e.type == "door_open"
        }
        if not residents:
            return candidates
        async with self._sessions() as session:
            for resident_id in residents:
                resident = await session.get(Resident, resident_id)
                if resident is None:
                    continue
                rules = await self.rules_for(session, resident_id)
                readings = [r for r in batch.readings if r.resident_id == resident_id]
                events = [e for e in batch.events if e.resident_id == resident_id]
                for rule in rules:
                    try:
                        found = await self._apply(session, rule, resident, readings, events)
                    except Exception:
                        log.exception(
                            "rule %s/%s failed for resident %s",
                            rule.kind,
                            rule.subject,
                            resident_id,
                        )
                        continue
                    candidates.extend(found)
        return candidates

    async def _apply(
        self,
        session: AsyncSession,
        rule: Rule,
        resident: Resident,
        readings: list[CommittedReading],
        events: list[CommittedEvent],
    ) -> list[AlertCandidate]:
        """One rule against one resident's part of a batch."""
        if rule.kind == "vital_range":
            return await _vital_range(session, rule, resident, readings)
        if rule.kind == "weight_gain":
            return await _weight_gain(session, rule, resident, readings)
        if rule.kind == "night_door":
            zone = ZoneInfo(resident.time_zone)
            return [
                AlertCandidate(
                    kind="night_door",
                    severity=rule.severity,
                    title="Front door opened at night",
                    dedupe_key=_key(resident.id, event.device_id, "night_door"),
                    resident_id=resident.id,
                    device_id=event.device_id,
                    details={"event_id": event.id},
                )
                for event in events
                if event.type == "door_open"
                and _in_window(event.received_at.astimezone(zone), NIGHT)
            ][:1]
        return []

    async def unhandled_alarms(self, now: datetime) -> list[AlertCandidate]:
        """Alarm events the batch path has not turned into an alert in time (a crash between
        commit and alert, say): each as the alert it raises, whatever its type."""
        return await unhandled_alarms(self._sessions, now)

    async def sweep(self, now: datetime) -> tuple[list[AlertCandidate], list[str]]:
        """Silence is not OK: (conditions found, technical conditions that cleared).

        Everything the sweep finds is a lasting state: found again on the next sweep, it
        changes nothing on the alert already open.
        """
        candidates: list[AlertCandidate] = []
        cleared: list[str] = []
        async with self._sessions() as session:
            fleet = (
                await session.exec(
                    select(Device).where(
                        col(Device.revoked_at).is_(None), col(Device.resident_id).is_not(None)
                    )
                )
            ).all()
            silent: list[Device] = []
            for device in fleet:
                silent_key = f"device:{device.id}:silent"
                limit = timedelta(seconds=device.expected_interval_s * SILENCE_FACTOR)
                if device.last_seen_at is not None and now - device.last_seen_at > limit:
                    silent.append(device)
                else:
                    cleared.append(silent_key)
                battery_key = f"device:{device.id}:battery"
                if device.battery_pct is not None and device.battery_pct < LOW_BATTERY:
                    candidates.append(
                        AlertCandidate(
                            kind="low_battery",
                            severity=TECHNICAL,
                            title=f"{device.label or device.kind} battery {device.battery_pct} %",
                            dedupe_key=battery_key,
                            resident_id=device.resident_id,
                            device_id=device.id,
                            details={"battery": device.battery_pct, "limit": LOW_BATTERY},
                            auto_resolves=True,
                            continuing=True,
                        )
                    )
                elif device.battery_pct is None or device.battery_pct >= BATTERY_RECOVERED:
                    # Between the two levels nothing changes: a battery hovering at the
                    # threshold does not flap.
                    cleared.append(battery_key)
            found, absorbed = await silences(session, silent, now)
            candidates.extend(found)
            cleared.extend(absorbed)
            candidates.extend(await self._no_motion(session, now))
            candidates.extend(await self._bed_exit_no_return(session, now))
        cleared.extend(await self._outages_over(candidates))
        open_keys = set(await self._open_keys(cleared))
        return candidates, [key for key in cleared if key in open_keys]

    async def _outages_over(self, candidates: list[AlertCandidate]) -> list[str]:
        """Outage incidents of teams that no longer have many devices silent."""
        still = {c.dedupe_key for c in candidates if c.kind == "devices_silent"}
        async with self._sessions() as session:
            keys = (
                await session.exec(
                    select(Alert.dedupe_key).where(
                        Alert.kind == "devices_silent", Alert.status != AlertStatus.RESOLVED
                    )
                )
            ).all()
        return [key for key in keys if key not in still]

    async def _open_keys(self, keys: list[str]) -> list[str]:
        """Which of ``keys`` have an open alert."""
        if not keys:
            return []
        async with self._sessions() as session:
            return list(
                (
                    await session.exec(
                        select(Alert.dedupe_key).where(
                            col(Alert.dedupe_key).in_(keys), Alert.status != AlertStatus.RESOLVED
                        )
                    )
                ).all()
            )

    async def _no_motion(self, session: AsyncSession, now: datetime) -> list[AlertCandidate]:
        """Residents with a working motion sensor and no movement for hours while awake."""
        found = []
        sensors = (
            await session.exec(
                select(Device).where(
                    Device.kind == "motion_sensor",
                    col(Device.revoked_at).is_(None),
                    col(Device.resident_id).is_not(None),
                    col(Device.online),
                )
            )
        ).all()
        for sensor in sensors:
            assert sensor.resident_id is not None
            resident = await session.get(Resident, sensor.resident_id)
            if resident is None:
                continue
            rule = next(
                (
                    r
                    for r in await self.rules_for(session, resident.id or 0)
                    if r.kind == "no_motion"
                ),
                None,
            )
            if rule is None or not _in_window(now.astimezone(ZoneInfo(resident.time_zone)), WAKING):
                continue
            hours = float(rule.params.get("hours", 4))
            last = (
                await session.exec(
                    select(Event.received_at)
                    .where(Event.resident_id == resident.id, Event.type == "motion")
                    .order_by(col(Event.received_at).desc())
                    .limit(1)
                )
            ).first()
            if last is not None and now - last > timedelta(hours=hours):
                quiet_hours = int((now - last).total_seconds() // 3600)
                found.append(
                    AlertCandidate(
                        kind="no_motion",
                        severity=rule.severity,
                        title=f"No movement seen for {quiet_hours} hours",
                        dedupe_key=_key(resident.id, sensor.id, "no_motion"),
                        resident_id=resident.id,
                        device_id=sensor.id,
                        details={"hours": quiet_hours, "since": last.isoformat()},
                        continuing=True,
                    )
                )
        return found

    async def _bed_exit_no_return(
        self, session: AsyncSession, now: datetime
    ) -> list[AlertCandidate]:
        """Residents who got out of bed at night and have not gone back for a while."""
        found = []
        resident_ids = (
            await session.exec(
                select(Device.resident_id)
                .where(
                    Device.kind == "bed_sensor",
                    col(Device.revoked_at).is_(None),
                    col(Device.resident_id).is_not(None),
                )
                .distinct()
            )
        ).all()
        for resident_id in resident_ids:
            assert resident_id is not None
            resident = await session.get(Resident, resident_id)
            if resident is None:
                continue
            rule = next(
                (
                    r
                    for r in await self.rules_for(session, resident_id)
                    if r.kind == "bed_exit_no_return"
                ),
                None,
            )
            if rule is None:
                continue
            # Any bed sensor of the resident counts: the last word decides, exit or enter.
            last = (
                await session.exec(
                    select(Event)
                    .where(
                        Event.resident_id == resident_id,
                        col(Event.type).in_(("bed_exit", "bed_enter")),
                    )
                    .order_by(col(Event.received_at).desc(), col(Event.id).desc())
                    .limit(1)
                )
            ).first()
            if last is None or last.type != "bed_exit":
                continue
            out_for = now - last.received_at
            if out_for <= timedelta(minutes=float(rule.params.get("minutes", 30))):
                continue
            if not _in_window(last.received_at.astimezone(ZoneInfo(resident.time_zone)), NIGHT):
                continue
            key = _key(resident_id, last.device_id, "bed_exit_no_return")
            if await self._resolved_since(session, key, last.received_at):
                # Staff already dealt with this night's exit; ringing again on every sweep
                # until the sensor sees the bed again would only teach them to ignore it.
                continue
            found.append(
                AlertCandidate(
                    kind="bed_exit_no_return",
                    severity=rule.severity,
                    title=f"Out of bed for {int(out_for.total_seconds() // 60)} min at night",
                    dedupe_key=key,
                    resident_id=resident_id,
                    device_id=last.device_id,
                    details={"event_id": last.id, "bed_exit_at": last.received_at.isoformat()},
                    continuing=True,
                )
            )
        return found

    @staticmethod
    async def _resolved_since(session: AsyncSession, dedupe_key: str, since: datetime) -> bool:
        """True when an alert of the condition was resolved at or after ``since``."""
        resolved = (
            await session.exec(
                select(Alert.id)
                .where(
                    Alert.dedupe_key == dedupe_key,
                    Alert.status == AlertStatus.RESOLVED,
                    col(Alert.resolved_at) >= since,
                )
                .limit(1)
            )
        ).first()
        return resolved is not None


def _outside(value: float, params: dict[str, Any]) -> bool:
    """True when a value is below the rule's min or above its max."""
    low, high = params.get("min"), params.get("max")
    return (low is not None and value < low) or (high is not None and value > high)


async def _vital_range(
    session: AsyncSession, rule: Rule, resident: Resident, readings: list[CommittedReading]
) -> list[AlertCandidate]:
    """A vital sign outside its range for the rule's consecutive readings and minutes."""
    params = rule.params
    relevant = [
        r
        for r in readings
        if r.type == params.get("type")
        and params.get("field") in r.values
        and _outside(float(r.values[params["field"]]), params)
    ]
    if not relevant:
        return []
    latest = max(relevant, key=lambda r: r.id)
    needed = int(params.get("consecutive", 1))
    if needed > 1:
        recent = (
            await session.exec(
                select(Reading.values)
                .where(Reading.resident_id == resident.id, Reading.type == params["type"])
                .order_by(col(Reading.id).desc())
                .limit(needed)
            )
        ).all()
        field_name = params["field"]
        if len(recent) < needed or not all(
            field_name in values and _outside(float(values[field_name]), params)
            for values in recent
        ):
            return []
    if params.get("for_min") is not None and not await _outside_for(
        session, params, resident, latest.received_at
    ):
        return []
    label, unit = _LABELS.get(params["field"], (params["field"], ""))
    value = latest.values[params["field"]]
    return [
        AlertCandidate(
            kind="vital_range",
            severity=rule.severity,
            title=f"{label} {value} {unit}".strip(),
            dedupe_key=_key(resident.id, latest.device_id, f"vital:{rule.subject}"),
            resident_id=resident.id,
            device_id=latest.device_id,
            details={
                "reading_id": latest.id,
                "field": params["field"],
                "value": value,
                "min": params.get("min"),
                "max": params.get("max"),
            },
        )
    ]


async def _outside_for(
    session: AsyncSession, params: dict[str, Any], resident: Resident, until: datetime
) -> bool:
    """True when the readings have stayed outside the range for the rule's minutes.

    Every reading from ``for_min`` minutes before ``until`` on must be outside, and the run
    of outside readings must reach back at least that far.
    """
    span = timedelta(minutes=float(params["for_min"]))
    since = until - span
    field_name = params["field"]

    def outside(values: Mapping[str, Any]) -> bool:
        """The reading has the rule's field and it is out of range."""
        return field_name in values and _outside(float(values[field_name]), params)

    window = (
        await session.exec(
            select(Reading.values, Reading.received_at).where(
                Reading.resident_id == resident.id,
                Reading.type == params["type"],
                col(Reading.received_at) >= since,
            )
        )
    ).all()
    # A later reading back in range calls it off too: the condition is over.
    if not window or not all(outside(values) for values, _ in window):
        return False
    first = min(at for _, at in window)
    if first <= since:
        return True
    # Readings seldom land exactly on the window's edge: the one just before it says
    # whether the value was already outside when the window opened.
    before = (
        await session.exec(
            select(Reading.values)
            .where(
                Reading.resident_id == resident.id,
                Reading.type == params["type"],
                col(Reading.received_at) < since,
                # One from long before says nothing about the silent time in between.
                col(Reading.received_at) >= first - span,
            )
            .order_by(col(Reading.received_at).desc(), col(Reading.id).desc())
            .limit(1)
        )
    ).first()
    return before is not None and outside(before)


async def _weight_gain(
    session: AsyncSession, rule: Rule, resident: Resident, readings: list[CommittedReading]
) -> list[AlertCandidate]:
    """Weight up by the rule's kilograms within its days: a heart-failure warning sign."""
    weights = [r for r in readings if r.type == "weight" and "weight" in r.values]
    if not weights:
        return []
    latest = max(weights, key=lambda r: r.received_at)
    since = latest.received_at - timedelta(days=float(rule.params.get("days", 3)))
    earlier = (
        await session.exec(
            select(Reading.values).where(
                Reading.resident_id == resident.id,
                Reading.type == "weight",
                col(Reading.received_at) >= since,
                col(Reading.received_at) < latest.received_at,
            )
        )
    ).all()
    lows = [float(v["weight"]) for v in earlier if "weight" in v]
    if not lows:
        return []
    gain = float(latest.values["weight"]) - min(lows)
    if gain < float(rule.params.get("kg", 2.0)):
        return []
    return [
        AlertCandidate(
            kind="weight_gain",
            severity=rule.severity,
            title=f"Weight up {gain:.1f} kg in {rule.params.get('days', 3)} days",
            dedupe_key=_key(resident.id, latest.device_id, "weight_gain"),
            resident_id=resident.id,
            device_id=latest.device_id,
            details={
                "reading_id": latest.id,
                "gain_kg": round(gain, 1),
                "days": rule.params.get("days", 3),
            },
        )
    ]
