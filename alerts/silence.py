"""Silent devices: each one its own technical alert, or, when many of a care team's devices
fall silent at once (a home hub, the network or the broker down), one incident for the
team's technicians instead of a page of alerts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.changes import AlertCandidate
from alerts.models import AlertSeverity
from care import ResidentTeam
from devices import Device

TECHNICAL = AlertSeverity.TECHNICAL.value
# This many of a team's devices silent at once is an outage: one incident, not one alert each.
OUTAGE_DEVICES = 5


async def silences(
    session: AsyncSession, silent: list[Device], now: datetime
) -> tuple[list[AlertCandidate], list[str]]:
    """Silent devices as alerts: one each, or one incident for a team with many at once.

    Returns the candidates and the devices' own silence keys the incident takes over.
    """
    teams: dict[int, int | None] = {}
    if silent:
        rows = await session.exec(
            select(ResidentTeam.resident_id, ResidentTeam.team_id)
            .where(col(ResidentTeam.resident_id).in_({d.resident_id for d in silent}))
            .order_by(col(ResidentTeam.team_id))
        )
        for resident_id, team_id in rows.all():
            teams.setdefault(resident_id, team_id)
    by_team: dict[int | None, list[Device]] = {}
    for device in silent:
        by_team.setdefault(teams.get(device.resident_id or 0), []).append(device)
    found: list[AlertCandidate] = []
    absorbed: list[str] = []
    for team, quiet in by_team.items():
        if team is not None and len(quiet) >= OUTAGE_DEVICES:
            since = min(d.last_seen_at for d in quiet if d.last_seen_at is not None)
            found.append(
                AlertCandidate(
                    kind="devices_silent",
                    severity=TECHNICAL,
                    title=f"{len(quiet)} devices silent at once",
                    dedupe_key=f"team:{team}:outage",
                    team_id=team,
                    details={
                        "count": len(quiet),
                        "devices": sorted(d.id for d in quiet),
                        "since": since.isoformat(),
                    },
                    auto_resolves=True,
                    continuing=True,
                )
            )
            absorbed.extend(f"device:{d.id}:silent" for d in quiet)
            continue
        for device in quiet:
            assert device.last_seen_at is not None
            minutes = int((now - device.last_seen_at).total_seconds() // 60)
            found.append(
                AlertCandidate(
                    kind="device_silent",
                    severity=TECHNICAL,
                    title=f"{device.label or device.kind} silent for {minutes} min",
                    dedupe_key=f"device:{device.id}:silent",
                    resident_id=device.resident_id,
                    device_id=device.id,
                    details={
                        "since": device.last_seen_at.isoformat(),
                        "expected_s": device.expected_interval_s,
                    },
                    auto_resolves=True,
                    continuing=True,
                )
            )
    return found, absorbed
