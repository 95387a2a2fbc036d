"""The console's editors in a real browser against the running service: a coordinator
writes a check-in plan, fixes what the form says is wrong, edits the team's policy and rota,
and prints who viewed the resident's data; every page passes axe, in English and Polish."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
from tests.web.console_world import build_world, serve, sign_in
from tests.web.test_console_browser import serious_violations

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_the_editors_and_the_access_log_work_and_pass_axe(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    mosquitto: tuple[str, int],
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    server = serve(tmp_path, sqlite_url, mosquitto)
    await asyncio.to_thread(server.start)
    try:
        polish = await browser.new_context(locale="pl-PL")
        page = await polish.new_page()
        await page.goto(f"{server.url}/login")
        await expect(page.locator("h1")).to_have_text("Zaloguj się")
        assert await serious_violations(page) == []
        await page.get_by_role("link", name="English").click()
        await expect(page.locator("h1")).to_have_text("Sign in")
        await polish.close()

        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        resident = f"/console/residents/{world.sigridur}"
        await sign_in(page, server.url, "gudrun", resident)
        await page.get_by_role("link", name="Check-in plans").click()
        await expect(page.locator("h1")).to_have_text("Check-in plans")
        assert await serious_violations(page) == []

        await page.get_by_role("link", name="New plan").click()
        await page.get_by_label("Kind").select_option("questionnaire")
        await page.get_by_label("Title").fill("Evening questions")
        await page.get_by_label("Times of day").fill("19:00, 8")
        await page.get_by_role("button", name="Save the plan").click()
        problems = page.locator("#plan-problems li")
        await expect(problems).to_contain_text(
            [
                "“8” is not a time of day; write it like 08:30.",
                "A questionnaire needs at least one question.",
            ]
        )
        await expect(page.get_by_label("Title")).to_have_value("Evening questions")
        assert await serious_violations(page) == []
        await page.get_by_label("Times of day").fill("19:00")
        await page.get_by_label("Mood").check()
        await page.get_by_role("button", name="Save the plan").click()
        await page.wait_for_url(f"**{resident}/plans?notice=plan_saved")
        await expect(page.locator("table.plans")).to_contain_text("Evening questions")
        async with sessions() as session:
            plan = (await session.exec(select(alerts.CheckinPlan))).one()
        assert plan.questions[0]["id"] == "mood"

        await page.get_by_role("link", name="Escalation and on call").click()
        await expect(page.locator("#coverage-gaps")).to_contain_text("every hour of the week")
        assert await serious_violations(page) == []
        await page.get_by_label("Time to answer (minutes)").first.fill("0.1")
        await page.get_by_role("button", name="Save the policy").click()
        await expect(page.locator("#policy-problems")).to_contain_text(
            "Tier 1: give people at least 30 seconds to answer."
        )
        assert await serious_violations(page) == []
        shifts = page.locator("table.shifts tbody tr")
        await expect(shifts).to_have_count(7)
        await shifts.first.get_by_role("button", name="Remove").click()
        await page.wait_for_url("**/policy?notice=shift_removed")
        await expect(page.locator("#coverage-gaps")).to_contain_text("Nobody is on call on:")
        await expect(page.locator("ul.gaps").first).to_contain_text("Monday 00:00–24:00")
        # The saved policy's first tier reaches whoever is on call: now nobody on Mondays.
        await expect(page.locator("main section").first).to_contain_text(
            "Tier 1: nobody is on call"
        )
        assert await serious_violations(page) == []

        await page.goto(f"{server.url}{resident}/access-log")
        rows = page.locator("table.access-log tbody tr")
        await expect(rows.first).to_contain_text("Guðrún Arnardóttir")
        await expect(page.locator("table.access-log")).to_contain_text("Fjallabyggð")
        assert await serious_violations(page) == []
        await page.emulate_media(media="print")
        await expect(page.locator("header.bar")).to_be_hidden()
        await expect(page.locator("form.period-form")).to_be_hidden()
        await expect(page.locator("table.access-log")).to_be_visible()
        await page.emulate_media(media="screen")
        assert errors == []
        await context.close()
    finally:
        await asyncio.to_thread(server.stop)
