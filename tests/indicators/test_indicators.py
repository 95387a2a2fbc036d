"""The service indicators computed for a known month of alerts, check-ins, devices and
calls, checked figure by figure, with the small-count suppression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import indicators
import interop
import video

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)


def test_percentiles_and_suppression_on_plain_numbers() -> None:
    assert indicators.median([30, 10, 20, 40]) == 25
    # Nearest rank: the 9th of ten values, the 2nd of two.
    assert indicators.percentile(list(range(1, 11)), 0.9) == 9
    assert indicators.percentile([5, 500], 0.9) == 500
    assert indicators.percentile([], 0.9) is None
    assert [indicators.suppressed(n) for n in (0, 1, 4, 5, 12)] == ["<5", "<5", "<5", 5, 12]


async def world(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    """Two teams of two organisations: North with six residents, South with two; returns
    (north, south, a north resident)."""
    async with sessions() as session:
        town = await care.ensure_organisation(session, "Fjallabyggð")
        clinic = await care.ensure_organisation(
            session, "HSN", care.OrganisationKind.HEALTH_INSTITUTION
        )
        north, south = care.CareTeam(name="North"), care.CareTeam(name="South")
        session.add_all([north, south])
        await session.flush()
        assert north.id is not None
        assert south.id is not None
        residents = [care.Resident(full_name=f"Resident {n}") for n in range(8)]
        session.add_all(residents)
        await session.flush()
        for index, resident in enumerate(residents):
            assert resident.id is not None
            team = north.id if index < 6 else south.id
            session.add(care.ResidentTeam(resident_id=resident.id, team_id=team))
        for username, org, team in (("anna", town, north.id), ("bjorn", clinic, south.id)):
            person = await care.add_staff_user(
                session,
                username=username,
                full_name=username,
                password="correct horse 1",
                role=care.StaffRole.COORDINATOR,
                organisation=org,
            )
            assert person.id is not None
            session.add(care.TeamMembership(team_id=team, staff_id=person.id))
        await session.commit()
        first = residents[0].id
        assert first is not None
        return north.id, south.id, first


async def seed(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """A known November: eleven alerts, seven check-ins, two devices, three calls."""
    north, south, resident = await world(sessions)
    at = START + timedelta(days=3)
    async with sessions() as session:
        # Critical: acknowledged after 20, 50, 70 and 200 s, and one never acknowledged.
        waits: list[float | None] = [20, 50, 70, 200, None]
        made = []
        for index, wait in enumerate(waits):
            alert = alerts.Alert(
                resident_id=resident,
                team_id=north,
                kind="panic",
                dedupe_key=f"panic-{index}",
                severity=alerts.AlertSeverity.CRITICAL,
                title="Panic",
                first_seen_at=at + timedelta(hours=index),
                acknowledged_at=None if wait is None else at + timedelta(hours=index, seconds=wait),
                status=alerts.AlertStatus.OPEN if wait is None else alerts.AlertStatus.ACKNOWLEDGED,
                escalation=alerts.EscalationState.EXHAUSTED
                if wait is None
                else alerts.EscalationState.STOPPED,
            )
            session.add(alert)
            made.append(alert)
        # High: resolved without an acknowledgement after 100 s (taken then).
        session.add(
            alerts.Alert(
                resident_id=resident,
                team_id=north,
                kind="vital_range",
                dedupe_key="vital",
                severity=alerts.AlertSeverity.HIGH,
                title="Vital",
                first_seen_at=at,
                resolved_at=at + timedelta(seconds=100),
                status=alerts.AlertStatus.RESOLVED,
            )
        )
        # Technical: a device silent for 24 h of the month, a low battery resolved.
        session.add_all(
            [
                alerts.Alert(
                    device_id=None,
                    team_id=north,
                    kind="device_silent",
                    dedupe_key="silent",
                    severity=alerts.AlertSeverity.TECHNICAL,
                    title="Silent",
                    first_seen_at=at,
                    resolved_at=at + timedelta(hours=24),
                    acknowledged_at=at + timedelta(seconds=30),
                    status=alerts.AlertStatus.RESOLVED,
                ),
                alerts.Alert(
                    team_id=north,
                    kind="low_battery",
                    dedupe_key="battery",
                    severity=alerts.AlertSeverity.TECHNICAL,
                    title="Battery",
                    first_seen_at=at,
                    resolved_at=at + timedelta(days=2),
                    acknowledged_at=at + timedelta(seconds=90),
                    status=alerts.AlertStatus.RESOLVED,
                ),
                # Outside the month and of the other team: counted nowhere here.
                alerts.Alert(
                    resident_id=resident,
                    team_id=north,
                    kind="panic",
                    dedupe_key="october",
                    severity=alerts.AlertSeverity.CRITICAL,
                    title="October",
                    first_seen_at=START - timedelta(days=1),
                ),
                alerts.Alert(
                    team_id=south,
                    kind="panic",
                    dedupe_key="south",
                    severity=alerts.AlertSeverity.CRITICAL,
                    title="South",
                    first_seen_at=at,
                ),
            ]
        )
        await session.flush()
        # The 70 s alert's escalation reached tier 2.
        assert made[2].id is not None
        session.add(
            alerts.EscalationStep(
                alert_id=made[2].id, tier=2, due_at=at, status=alerts.StepStatus.DONE
            )
        )
        plan = alerts.CheckinPlan(
            resident_id=resident, kind=alerts.CheckinKind.WELLBEING, title="Hi", times=["09:00"]
        )
        session.add(plan)
        await session.flush()
        assert plan.id is not None
        statuses = [
            ("answered", False),
            ("answered", False),
            ("answered", True),  # after the reminder: late
            ("answered", False),
            ("missed", False),
            ("not_sent", False),
            ("cancelled", False),
        ]
        for day, (status, late) in enumerate(statuses):
            slot = START + timedelta(days=day, hours=9)
            session.add(
                alerts.CheckinPrompt(
                    plan_id=plan.id,
                    resident_id=resident,
                    kind=alerts.CheckinKind.WELLBEING,
                    slot_at=slot,
                    closes_at=slot + timedelta(minutes=30),
                    status=alerts.PromptStatus(status),
                    reminded_at=slot + timedelta(minutes=20) if late else None,
                    answered_at=slot + timedelta(minutes=25 if late else 5)
                    if status == "answered"
                    else None,
                )
            )
        session.add_all(
            [
                devices.Device(
                    id=f"d{n}", kind=devices.DeviceKind.SCALE, resident_id=resident, secret_hash="x"
                )
                for n in range(2)
            ]
        )
        session.add_all(
            [
                video.Consultation(
                    resident_id=resident,
                    kind=video.ConsultationKind.SCHEDULED,
                    status=video.ConsultationStatus.ENDED,
                    started_at=at,
                    ended_at=at + timedelta(minutes=15),
                    created_at=at,
                ),
                video.Consultation(
                    resident_id=resident,
                    kind=video.ConsultationKind.ON_DEMAND,
                    status=video.ConsultationStatus.ENDED,
                    started_at=at,
                    ended_at=at + timedelta(minutes=9),
                    created_at=at,
                ),
                video.Consultation(
                    resident_id=resident,
                    kind=video.ConsultationKind.SCHEDULED,
                    status=video.ConsultationStatus.MISSED,
                    created_at=at,
                ),
                video.CallRequest(
                    resident_id=resident,
                    source="tablet",
                    status=video.CallRequestStatus.DONE,
                    created_at=at,
                    escalated_at=at + timedelta(minutes=10),
                ),
                video.CallRequest(
                    resident_id=resident,
                    source="tablet",
                    status=video.CallRequestStatus.DONE,
                    created_at=at + timedelta(days=1),
                ),
            ]
        )
        await session.commit()
    return north, south


async def test_a_known_month_gives_known_figures(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    north, south = await seed(sessions)
    service = indicators.IndicatorService(sessions)
    figures = await service.figures(
        role="coordinator", team_ids=frozenset({north}), team=None, since=START, until=END
    )
    critical, high, normal, technical = figures.alarms
    assert (critical.raised, critical.acknowledged) == (5, 4)
    assert critical.median_s == 60  # (50 + 70) / 2
    assert critical.p90_s == 200
    assert critical.within_60s == pytest.approx(2 / 5)
    assert critical.within_180s == pytest.approx(3 / 5)
    assert (high.raised, high.median_s, high.within_60s, high.within_180s) == (1, 100, 0, 1)
    assert (normal.raised, normal.median_s, normal.within_60s) == (0, None, None)
    assert (technical.raised, technical.median_s) == (2, 60)
    assert (figures.escalated_tier_2, figures.escalations_exhausted) == (1, 1)

    [month] = figures.checkins
    assert (month.team, month.month) == ("North", "2026-11")
    assert (month.answered, month.late, month.missed, month.not_sent) == (4, 1, 1, 1)
    assert month.adherence == pytest.approx(4 / 5)

    assert figures.devices.devices == 2
    assert (figures.devices.silent_periods, figures.devices.silent_hours) == (1, 24.0)
    assert figures.devices.uptime == pytest.approx(1 - 24 / (2 * 30 * 24))
    assert figures.devices.battery_replacements == 1
    assert figures.video.held == 2
    assert figures.video.minutes == 24.0
    assert figures.video.failed_setups == 1
    assert (figures.video.requests, figures.video.requests_not_taken_in_time) == (2, 1)

    # Six residents in North; the town's staff serve them. South is not the caller's.
    assert [(s.kind, s.name, s.residents) for s in figures.served] == [
        ("team", "North", 6),
        ("organisation", "Fjallabyggð", 6),
    ]
    south_figures = await service.figures(
        role="coordinator", team_ids=frozenset({south}), team=south, since=START, until=END
    )
    assert [(s.name, s.residents) for s in south_figures.served] == [
        ("South", "<5"),
        ("HSN", "<5"),
    ]
    with pytest.raises(indicators.UnknownTeamError):
        await service.figures(
            role="coordinator", team_ids=frozenset({north}), team=south, since=START, until=END
        )
    with pytest.raises(care.NotAllowedError):
        await service.figures(
            role="nurse", team_ids=frozenset({north}), team=None, since=START, until=END
        )

    # The same figures as CSV rows and as FHIR MeasureReports.
    csv = indicators.as_csv(figures).splitlines()
    assert csv[0] == "section,scope,group,figure,value"
    assert "alarms,North,critical,within_60s,0.4" in csv
    assert "residents_served,South,team,residents,<5" in indicators.as_csv(south_figures)
    bundle = Bundle.model_validate(interop.measure_report_bundle(south_figures))
    reports: list[Any] = [entry.resource for entry in bundle.entry or []]
    served = [
        group
        for report in reports
        for group in report.group
        if group.code.coding[0].code == "residents_served.residents"
    ]
    assert len(served) == 2
    assert all(g.measureScore.value is None for g in served)
    assert all(g.measureScore.extension[0].valueCode == "masked" for g in served)
