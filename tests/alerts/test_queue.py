"""The queue staff work from: what needs a person first, technical problems apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


async def test_unacknowledged_first_then_severity_then_the_oldest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        team, other = care.CareTeam(name="Ólafsfjörður"), care.CareTeam(name="Dalvík")
        session.add_all([team, other])
        nurse = await care.add_staff_user(
            session,
            username="helga",
            full_name="Helga",
            password="x" * 12,
            role=care.StaffRole.NURSE,
            organisation=org,
        )
        await session.flush()
        assert team.id is not None
        assert other.id is not None
        assert nurse.id is not None

        def alert(name: str, severity: str, minutes: int, **extra: Any) -> alerts.Alert:
            return alerts.Alert(
                team_id=extra.pop("team_id", team.id),
                kind=name,
                dedupe_key=name,
                severity=alerts.AlertSeverity(severity),
                title=name,
                first_seen_at=NOW - timedelta(minutes=minutes),
                **extra,
            )

        session.add_all(
            [
                # An acknowledged critical alert must not sit above one nobody has.
                alert(
                    "acked_critical",
                    "critical",
                    30,
                    status="acknowledged",
                    acknowledged_by=nurse.id,
                ),
                alert("open_critical_new", "critical", 1),
                alert("open_critical_old", "critical", 9),
                alert("open_high", "high", 60),
                alert("exhausted_high", "high", 5, escalation="exhausted"),
                alert("silent_sensor", "technical", 90),
                alert("resolved", "critical", 2, status="resolved"),
                alert("elsewhere", "critical", 3, team_id=other.id),
            ]
        )
        await session.commit()
        teams = frozenset({team.id})
        wanted = alerts.QueueFilter()
        order = [a.kind for a in await alerts.queue_alerts(session, teams, nurse.id, wanted)]
        assert order == [
            "exhausted_high",
            "open_critical_old",
            "open_critical_new",
            "open_high",
            "acked_critical",
        ]
        assert await alerts.technical_problems(session, teams) == 1
        mine = alerts.QueueFilter.parse("1", None, None)
        assert [a.kind for a in await alerts.queue_alerts(session, teams, nurse.id, mine)] == [
            "acked_critical"
        ]
        technical = alerts.QueueFilter.parse(None, "technical", None)
        assert [a.kind for a in await alerts.queue_alerts(session, teams, nurse.id, technical)] == [
            "silent_sensor"
        ]
        # A team she is not in shows nothing, whatever the address bar says.
        foreign = alerts.QueueFilter.parse(None, "bogus", str(other.id))
        assert foreign.severity is None
        assert await alerts.queue_alerts(session, teams, nurse.id, foreign) == []
        ringing = [a.kind for a in await alerts.ringing_alerts(session, teams)]
        # High alerts ring too (more slowly, on the page); acknowledged ones do not.
        assert ringing == ["exhausted_high", "open_critical_old", "open_critical_new", "open_high"]
