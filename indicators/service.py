"""The service indicators: how alarms were handled, how check-ins went, how devices and
video calls worked, and how many residents were served, for a coordinator's teams."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import video
from indicators.errors import UnknownTeamError
from indicators.figures import median, percentile, ratio, share_within, suppressed

SEVERITIES = ("critical", "high", "normal", "technical")
SILENT_KINDS = frozenset({"device_silent"})
BATTERY_KINDS = frozenset({"low_battery"})


@dataclass(frozen=True)
class AlarmHandling:
    """Time from alarm to acknowledgement for one severity."""

    severity: str
    raised: int
    acknowledged: int
    median_s: float | None
    p90_s: float | None
    within_60s: float | None
    within_180s: float | None


@dataclass(frozen=True)
class CheckinMonth:
    """One team's check-ins in one month."""

    team: str
    month: str
    due: int
    answered: int
    late: int
    missed: int
    not_sent: int
    adherence: float | None


@dataclass(frozen=True)
class DeviceFigures:
    """How the devices of the period worked."""

    devices: int
    uptime: float | None
    silent_periods: int
    silent_hours: float
    battery_replacements: int


@dataclass(frozen=True)
class VideoFigures:
    """Video calls in the period."""

    held: int
    minutes: float
    failed_setups: int
    requests: int
    requests_not_taken_in_time: int


@dataclass(frozen=True)
class Served:
    """Residents served by a team or an organisation; small counts shown as "<5"."""

    kind: str
    name: str
    residents: int | str


@dataclass(frozen=True)
class Indicators:
    """Every figure for a set of care teams over a period."""

    teams: list[str]
    since: datetime
    until: datetime
    alarms: list[AlarmHandling]
    escalated_tier_2: int
    escalations_exhausted: int
    checkins: list[CheckinMonth]
    devices: DeviceFigures
    video: VideoFigures
    served: list[Served] = field(default_factory=list)
    # Every care team the caller may ask about (id, name), for choosing another.
    choices: list[tuple[int, str]] = field(default_factory=list)


def alarm_handling(rows: Sequence[alerts.Alert]) -> list[AlarmHandling]:
    """Acknowledgement times per severity; an alert resolved without an acknowledgement
    counts its resolution as the moment a person took it."""
    by_severity: dict[str, list[alerts.Alert]] = defaultdict(list)
    for alert in rows:
        by_severity[str(alert.severity)].append(alert)
    found = []
    for severity in SEVERITIES:
        raised = by_severity.get(severity, [])
        waits = [
            (care.as_utc(taken) - care.as_utc(alert.first_seen_at)).total_seconds()
            for alert in raised
            if (taken := alert.acknowledged_at or alert.resolved_at) is not None
        ]
        found.append(
            AlarmHandling(
                severity=severity,
                raised=len(raised),
                acknowledged=len(waits),
                median_s=median(waits),
                p90_s=percentile(waits, 0.9),
                within_60s=share_within(waits, 60, len(raised)),
                within_180s=share_within(waits, 180, len(raised)),
            )
        )
    return found


def checkin_months(
    prompts: Sequence[alerts.CheckinPrompt], team_of: dict[int, tuple[str, str]]
) -> list[CheckinMonth]:
    """Adherence per team and month: answered of those due to be answered (a prompt that
    could not be sent is the service's failure, not the resident's, and counted apart)."""
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for prompt in prompts:
        team, zone = team_of.get(prompt.resident_id, ("", "UTC"))
        month = care.as_utc(prompt.slot_at).astimezone(ZoneInfo(zone)).strftime("%Y-%m")
        tally = counts[(team, month)]
        status = alerts.PromptStatus(prompt.status)
        if status == alerts.PromptStatus.ANSWERED:
            tally["answered"] += 1
            if prompt.reminded_at is not None and prompt.answered_at is not None:
                tally["late"] += int(
                    care.as_utc(prompt.answered_at) > care.as_utc(prompt.reminded_at)
                )
        elif status == alerts.PromptStatus.MISSED:
            tally["missed"] += 1
        elif status == alerts.PromptStatus.NOT_SENT:
            tally["not_sent"] += 1
    return [
        CheckinMonth(
            team=team,
            month=month,
            due=t["answered"] + t["missed"],
            answered=t["answered"],
            late=t["late"],
            missed=t["missed"],
            not_sent=t["not_sent"],
            adherence=ratio(t["answered"], t["answered"] + t["missed"]),
        )
        for (team, month), t in sorted(counts.items())
    ]


def device_figures(
    device_count: int,
    technical: Sequence[alerts.Alert],
    since: datetime,
    until: datetime,
) -> DeviceFigures:
    """Uptime is the share of device-time not inside a silent-device alert; a resolved
    low-battery alert is a battery replaced."""
    silent = [a for a in technical if a.kind in SILENT_KINDS]
    silent_s = 0.0
    for alert in silent:
        start = max(care.as_utc(alert.first_seen_at), since)
        end = min(care.as_utc(alert.resolved_at) if alert.resolved_at else until, until)
        silent_s += max((end - start).total_seconds(), 0)
    possible = device_count * (until - since).total_seconds()
    return DeviceFigures(
        devices=device_count,
        uptime=None if not possible else 1 - silent_s / possible,
        silent_periods=len(silent),
        silent_hours=round(silent_s / 3600, 1),
        battery_replacements=sum(
            1 for a in technical if a.kind in BATTERY_KINDS and a.resolved_at is not None
        ),
    )


def video_figures(
    consultations: Sequence[video.Consultation], requests: Sequence[video.CallRequest]
) -> VideoFigures:
    """Calls held (connected and ended), their minutes, calls that never connected, and
    residents' call requests that nobody took before the team's escalation started."""
    spans = [
        (care.as_utc(c.started_at), care.as_utc(c.ended_at))
        for c in consultations
        if c.status == video.ConsultationStatus.ENDED
        and c.started_at is not None
        and c.ended_at is not None
    ]
    minutes = sum((end - start).total_seconds() / 60 for start, end in spans)
    failed = [
        c
        for c in consultations
        if c.status == video.ConsultationStatus.MISSED
        or (c.status == video.ConsultationStatus.ENDED and c.started_at is None)
    ]
    return VideoFigures(
        held=len(spans),
        minutes=round(minutes, 1),
        failed_setups=len(failed),
        requests=len(requests),
        requests_not_taken_in_time=sum(1 for r in requests if r.escalated_at is not None),
    )


class IndicatorService:
    """The figures of a coordinator's care teams, read from every domain."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def figures(
        self,
        *,
        role: str,
        team_ids: frozenset[int],
        team: int | None,
        since: datetime,
        until: datetime,
    ) -> Indicators:
        """Every indicator for one of the caller's teams, or all of them, from ``since``
        (inclusive) to ``until`` (exclusive)."""
        care.require(role, care.Permission.READ_INDICATORS)
        if team is not None and team not in team_ids:
            raise UnknownTeamError(f"no care team {team}")
        teams = frozenset({team}) if team is not None else team_ids
        async with self._sessions() as session:
            figures = await self._figures(session, teams, since, until)
            choices = (
                await session.exec(
                    select(care.CareTeam.id, care.CareTeam.name)
                    .where(col(care.CareTeam.id).in_(sorted(team_ids)))
                    .order_by(col(care.CareTeam.name))
                )
            ).all()
        figures.choices.extend((team_id, name) for team_id, name in choices if team_id)
        return figures

    async def _figures(
        self, session: AsyncSession, teams: frozenset[int], since: datetime, until: datetime
    ) -> Indicators:
        """The figures, read in one session."""
        team_rows = (
            await session.exec(
                select(care.CareTeam)
                .where(col(care.CareTeam.id).in_(sorted(teams)))
                .order_by(col(care.CareTeam.name))
            )
        ).all()
        links = (
            await session.exec(
                select(care.ResidentTeam).where(col(care.ResidentTeam.team_id).in_(sorted(teams)))
            )
        ).all()
        names = {t.id: (t.name, t.time_zone) for t in team_rows}
        team_of = {link.resident_id: names[link.team_id] for link in links}
        residents = sorted(team_of)
        alert_rows = (
            await session.exec(
                select(alerts.Alert).where(
                    col(alerts.Alert.team_id).in_(sorted(teams)),
                    col(alerts.Alert.first_seen_at) >= since,
                    col(alerts.Alert.first_seen_at) < until,
                )
            )
        ).all()
        alert_ids = [a.id for a in alert_rows if a.id is not None]
        tier_2 = set(
            (
                await session.exec(
                    select(alerts.EscalationStep.alert_id).where(
                        col(alerts.EscalationStep.alert_id).in_(alert_ids),
                        col(alerts.EscalationStep.tier) >= 2,
                        col(alerts.EscalationStep.status) == alerts.StepStatus.DONE,
                    )
                )
            ).all()
        )
        prompts = (
            await session.exec(
                select(alerts.CheckinPrompt).where(
                    col(alerts.CheckinPrompt.resident_id).in_(residents),
                    col(alerts.CheckinPrompt.slot_at) >= since,
                    col(alerts.CheckinPrompt.slot_at) < until,
                )
            )
        ).all()
        device_count = len(
            (
                await session.exec(
                    select(devices.Device.id).where(
                        col(devices.Device.resident_id).in_(residents),
                        col(devices.Device.revoked_at).is_(None),
                    )
                )
            ).all()
        )
        consultations = (
            await session.exec(
                select(video.Consultation).where(
                    col(video.Consultation.resident_id).in_(residents),
                    col(video.Consultation.created_at) >= since,
                    col(video.Consultation.created_at) < until,
                )
            )
        ).all()
        requests = (
            await session.exec(
                select(video.CallRequest).where(
                    col(video.CallRequest.resident_id).in_(residents),
                    col(video.CallRequest.created_at) >= since,
                    col(video.CallRequest.created_at) < until,
                )
            )
        ).all()
        return Indicators(
            teams=[t.name for t in team_rows],
            since=since,
            until=until,
            alarms=alarm_handling(alert_rows),
            escalated_tier_2=len(tier_2),
            escalations_exhausted=sum(
                1 for a in alert_rows if a.escalation == alerts.EscalationState.EXHAUSTED
            ),
            checkins=checkin_months(prompts, team_of),
            devices=device_figures(
                device_count,
                [a for a in alert_rows if a.severity == alerts.AlertSeverity.TECHNICAL],
                since,
                until,
            ),
            video=video_figures(consultations, requests),
            served=await self._served(session, team_rows, links),
        )

    async def _served(
        self,
        session: AsyncSession,
        team_rows: Sequence[care.CareTeam],
        links: Sequence[care.ResidentTeam],
    ) -> list[Served]:
        """Residents per team, and per organisation whose staff are in those teams."""
        per_team: dict[int, set[int]] = defaultdict(set)
        for link in links:
            per_team[link.team_id].add(link.resident_id)
        members = (
            await session.exec(
                select(care.TeamMembership.team_id, care.StaffUser.organisation_id)
                .join(care.StaffUser, col(care.StaffUser.id) == care.TeamMembership.staff_id)
                .where(col(care.TeamMembership.team_id).in_([t.id for t in team_rows]))
            )
        ).all()
        per_org: dict[int, set[int]] = defaultdict(set)
        for team_id, organisation_id in members:
            per_org[organisation_id] |= per_team.get(team_id, set())
        organisations = {
            o.id: o.name
            for o in (
                await session.exec(
                    select(care.Organisation).where(col(care.Organisation.id).in_(sorted(per_org)))
                )
            ).all()
        }
        served = [
            Served("team", t.name, suppressed(len(per_team.get(t.id or 0, set()))))
            for t in team_rows
        ]
        served.extend(
            Served("organisation", organisations[org_id], suppressed(len(ids)))
            for org_id, ids in sorted(per_org.items(), key=lambda item: organisations[item[0]])
        )
        return served
