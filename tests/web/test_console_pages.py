"""The console's pages in process: who sees what, forms with and without their token."""

from __future__ import annotations

import alerts
from tests.web.conftest import Console, set_session, sign_in


async def raise_alert(console: Console, kind: str, severity: str, team_id: int) -> int:
    """An alert of the test world's resident, straight into the database."""
    async with console.sessions() as session:
        alert = alerts.Alert(
            resident_id=console.world.resident,
            team_id=team_id,
            kind=kind,
            dedupe_key=f"resident:{console.world.resident}:{kind}",
            severity=alerts.AlertSeverity(severity),
            title="Panic button pressed" if kind == "panic" else "SpO2 88 %",
        )
        session.add(alert)
        await session.flush()
        assert alert.id is not None
        session.add(alerts.AlertTimelineEntry(alert_id=alert.id, kind="raised"))
        await session.commit()
        return alert.id


async def test_an_escalation_that_tried_every_tier_leads_the_queue(console: Console) -> None:
    client, world = console.client, console.world
    exhausted = await raise_alert(console, "vital_range", "high", world.north)
    critical = await raise_alert(console, "panic", "critical", world.north)
    async with console.sessions() as session:
        alert = await session.get(alerts.Alert, exhausted)
        assert alert is not None
        alert.escalation = alerts.EscalationState.EXHAUSTED
        session.add(alert)
        await session.commit()
    set_session(client, (await sign_in(client, "helga")).cookies["vaki_session"])
    page = await client.get("/console/")
    assert page.status_code == 200, page.text
    # Nobody took it though every tier was told: above even a fresh critical alert.
    assert page.text.index(f'id="alert-{exhausted}"') < page.text.index(f'id="alert-{critical}"')


async def test_the_queue_shows_the_teams_alerts_critical_first(console: Console) -> None:
    client, world = console.client, console.world
    low = await raise_alert(console, "vital_range", "high", world.north)
    high = await raise_alert(console, "panic", "critical", world.north)
    set_session(client, (await sign_in(client, "helga")).cookies["vaki_session"])
    page = await client.get("/console/")
    assert page.status_code == 200, page.text
    assert page.text.index(f'id="alert-{high}"') < page.text.index(f'id="alert-{low}"')
    assert "Sigríður Jónsdóttir" in page.text
    detail = await client.get(f"/console/alerts/{high}")
    assert detail.status_code == 200, detail.text
