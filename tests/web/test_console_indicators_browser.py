"""The service figures page in a real browser against the running service: a coordinator
picks a month, sees the alarm and check-in charts and the tables, and the page passes axe;
a nurse is refused."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import video
from tests.web.console_world import ConsoleWorld, build_world, serve, sign_in
from tests.web.test_console_browser import serious_violations

pytestmark = pytest.mark.slow

# The README's screenshot is taken again only when asked (VAKI_SCREENSHOTS=1).
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("VAKI_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="vaki-screenshots-"))
)
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def add_month(sessions: async_sessionmaker[AsyncSession], world: ConsoleWorld) -> None:
    """October 2026 in the north team: alarms answered in seconds to minutes, a month of
    morning check-ins, a few video calls."""
    rng = random.Random(17)
    async with sessions() as session:
        for index in range(60):
            severity = rng.choice(["critical", "critical", "high", "normal", "technical"])
            raised = MONTH_START + timedelta(hours=index * 11, minutes=rng.randint(0, 50))
            wait = rng.lognormvariate(3.7 if severity == "critical" else 4.4, 0.6)
            session.add(
                alerts.Alert(
                    resident_id=None if severity == "technical" else world.sigridur,
                    team_id=world.north,
                    kind="device_silent" if severity == "technical" else "panic",
                    dedupe_key=f"october-{index}",
                    severity=alerts.AlertSeverity(severity),
                    title="October",
                    status=alerts.AlertStatus.RESOLVED,
                    first_seen_at=raised,
                    acknowledged_at=raised + timedelta(seconds=wait),
                    resolved_at=raised + timedelta(minutes=20),
                )
            )
        plan = alerts.CheckinPlan(
            resident_id=world.sigridur,
            kind=alerts.CheckinKind.WELLBEING,
            title="Good morning",
            times=["09:00"],
        )
        session.add(plan)
        await session.flush()
        assert plan.id is not None
        for day in range(31):
            slot = MONTH_START + timedelta(days=day, hours=9)
            status = rng.choices(["answered", "missed", "not_sent"], [26, 3, 1])[0]
            session.add(
                alerts.CheckinPrompt(
                    plan_id=plan.id,
                    resident_id=world.sigridur,
                    kind=alerts.CheckinKind.WELLBEING,
                    slot_at=slot,
                    closes_at=slot + timedelta(minutes=30),
                    status=alerts.PromptStatus(status),
                    answered_at=slot + timedelta(minutes=4) if status == "answered" else None,
                )
            )
        for day in (3, 10, 17, 24):
            start = MONTH_START + timedelta(days=day, hours=14)
            session.add(
                video.Consultation(
                    resident_id=world.sigridur,
                    team_id=world.north,
                    kind=video.ConsultationKind.SCHEDULED,
                    status=video.ConsultationStatus.ENDED,
                    created_at=start,
                    started_at=start,
                    ended_at=start + timedelta(minutes=rng.randint(8, 25)),
                )
            )
        await session.commit()


async def test_the_figures_page_shows_the_month_and_passes_axe(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    mosquitto: tuple[str, int],
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    await add_month(sessions, world)
    server = serve(tmp_path, sqlite_url, mosquitto)
    await asyncio.to_thread(server.start)
    try:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await sign_in(page, server.url, "gudrun")
        await page.get_by_role("link", name="Service figures").click()
        await expect(page.locator("h1")).to_have_text("Service figures")
        await page.get_by_label("Month", exact=True).fill("2026-10")
        await page.get_by_role("button", name="Show").click()
        await page.wait_for_url("**/console/indicators?month=2026-10*")
        alarms = page.get_by_role("img", name="Seconds from alarm to acknowledgement")
        await expect(alarms.locator("rect.bar")).to_have_count(8)
        checkins = page.get_by_role("img", name="Check-ins answered")
        await expect(checkins.locator("rect.bar")).to_have_count(1)
        table = page.get_by_role("table", name="Alarms by severity")
        await expect(table.locator("tbody tr")).to_have_count(4)
        served = page.get_by_role("table", name="Residents served")
        await expect(served).to_contain_text("<5")
        assert await serious_violations(page) == []
        await page.screenshot(path=str(SCREENSHOTS / "console-indicators.png"), full_page=True)
        link = page.get_by_role("link", name="CSV for a spreadsheet")
        csv = await page.request.get(f"{server.url}{await link.get_attribute('href')}")
        assert csv.ok
        assert (await csv.text()).startswith("section,scope,group,figure,value")
        assert errors == []
        await context.close()

        nurse = await browser.new_context()
        page = await nurse.new_page()
        await sign_in(page, server.url, "helga")
        await expect(page.get_by_role("link", name="Service figures")).to_have_count(0)
        response = await page.goto(f"{server.url}/console/indicators")
        assert response is not None
        assert response.status == 403
        await nurse.close()
    finally:
        await asyncio.to_thread(server.stop)
