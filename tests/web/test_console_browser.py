"""The console in a real browser against the real service and a real broker: a panic press
reaches the queue live, one click acknowledges it and the escalation stops; staff of another
municipality cannot open the resident; forms without their token fail; every page passes axe."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
from tests.conftest import MqttProbe
from tests.web.console_world import add_history, build_world, panic_payload, serve, sign_in

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    results = await Axe().run(page)
    return [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


async def the_alert(sessions: async_sessionmaker[AsyncSession]) -> alerts.Alert | None:
    async with sessions() as session:
        return (
            await session.exec(select(alerts.Alert).where(alerts.Alert.kind == "panic"))
        ).first()


async def steps_of(
    sessions: async_sessionmaker[AsyncSession], alert_id: int
) -> list[alerts.EscalationStep]:
    async with sessions() as session:
        rows = await session.exec(
            select(alerts.EscalationStep)
            .where(alerts.EscalationStep.alert_id == alert_id)
            .order_by(col(alerts.EscalationStep.id))
        )
        return list(rows.all())


async def test_a_panic_reaches_the_queue_live_and_one_click_stops_the_escalation(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    mosquitto: tuple[str, int],
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    server = serve(tmp_path, sqlite_url, mosquitto)
    await asyncio.to_thread(server.start)
    pendant = MqttProbe(*mosquitto, client_id=world.panic_button)
    try:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await sign_in(page, server.url, "helga")
        await expect(page.locator("#live-state")).to_have_class("live on", timeout=10_000)
        assert await serious_violations(page) == []
        # A mark on the page: it is still there after the alert arrives, so no reload.
        await page.evaluate("window.notReloaded = true")

        await asyncio.to_thread(pendant.connect)
        await asyncio.to_thread(
            pendant.publish, f"vaki/v1/d/{world.panic_button}/event", panic_payload()
        )
        row = page.locator("li.alert.sev-critical")
        await expect(row).to_have_count(1, timeout=10_000)
        assert await page.evaluate("window.notReloaded === true")
        await expect(page.locator("#alarm-banner")).to_be_visible()
        assert await page.get_attribute("body", "data-alarms") == "1"
        await expect(row).to_contain_text("Sigríður Jónsdóttir")
        assert await serious_violations(page) == []

        await row.get_by_role("button", name="Acknowledge").click()
        await expect(row).to_have_attribute("data-status", "acknowledged", timeout=10_000)
        assert await page.evaluate("window.notReloaded === true")
        alert = await the_alert(sessions)
        assert alert is not None
        assert alert.id is not None
        assert alert.status == alerts.AlertStatus.ACKNOWLEDGED
        assert alert.escalation == alerts.EscalationState.STOPPED
        assert alert.acknowledged_by == world.helga
        fired = [s for s in await steps_of(sessions, alert.id) if s.status == "done"]
        # Longer than the sweep, long enough for a step that should not fire to fire.
        await asyncio.sleep(3)
        after = await steps_of(sessions, alert.id)
        assert [s for s in after if s.status == "done"] == fired
        assert not [s for s in after if s.kind == "notify" and s.status == "pending"]

        # The alert's own page: its story, and who else is looking at it.
        await page.goto(f"{server.url}/console/alerts/{alert.id}")
        await expect(page.locator("ol.timeline")).to_contain_text("Acknowledged")
        assert await serious_violations(page) == []
        colleague = await browser.new_context()
        other = await colleague.new_page()
        await sign_in(other, server.url, "gudrun", f"/console/alerts/{alert.id}")
        await expect(other.locator("#onlookers")).to_contain_text("Helga Björnsdóttir")
        await colleague.close()

        # A form post without the session's token is refused, in the browser.
        refused = await page.evaluate(
            """async (id) => (await fetch(`/console/alerts/${id}/resolve`, {
                method: "POST", body: new URLSearchParams({outcome: "false_alarm"})})).status""",
            alert.id,
        )
        assert refused == 403
        assert (await the_alert(sessions)).status == "acknowledged"  # type: ignore[union-attr]
        assert errors == []
        await context.close()
    finally:
        await asyncio.to_thread(pendant.close)
        await asyncio.to_thread(server.stop)


async def test_another_municipality_sees_nothing_and_sign_in_replaces_a_planted_session(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    mosquitto: tuple[str, int],
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    await add_history(sessions, world)
    server = serve(tmp_path, sqlite_url, mosquitto)
    await asyncio.to_thread(server.start)
    try:
        async with sessions() as session:
            north_alert = (
                await session.exec(
                    select(alerts.Alert.id).where(alerts.Alert.team_id == world.north)
                )
            ).first()
        context = await browser.new_context()
        planted = uuid.uuid4().hex
        await context.add_cookies([{"name": "vaki_session", "value": planted, "url": server.url}])
        page = await context.new_page()
        await sign_in(page, server.url, "olafur")
        cookies = {c["name"]: c["value"] for c in await context.cookies()}
        assert cookies["vaki_session"] != planted
        for path in (
            f"/console/residents/{world.sigridur}",
            f"/console/alerts/{north_alert}",
        ):
            response = await page.goto(server.url + path)
            assert response is not None
            assert response.status == 404, path
        await expect(page.locator("li.alert")).to_have_count(0)
        await context.close()
    finally:
        await asyncio.to_thread(server.stop)


async def test_residents_with_charts_and_devices_for_technicians_pass_axe(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    mosquitto: tuple[str, int],
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    await add_history(sessions, world)
    server = serve(tmp_path, sqlite_url, mosquitto)
    await asyncio.to_thread(server.start)
    try:
        nurse = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await nurse.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await sign_in(page, server.url, "helga", "/console/residents")
        await expect(page.locator("table.residents")).to_contain_text("Sigríður Jónsdóttir")
        assert await serious_violations(page) == []
        for days in (7, 30, 90):
            await page.goto(f"{server.url}/console/residents/{world.sigridur}?days={days}")
            await expect(page.locator("figure.chart")).to_have_count(4)
            # The normal ranges of the systolic and the diastolic pressure and of the oxygen
            # are drawn as bands, the two pressures each in its own.
            await expect(page.locator("svg rect.band")).to_have_count(3)
            await expect(page.locator("svg rect.band.b0")).to_have_count(1)
            await expect(page.locator("svg rect.band.b1")).to_have_count(1)
            assert await serious_violations(page) == []
        await page.goto(f"{server.url}/console/devices")
        await expect(page.locator("table")).to_contain_text("Pulse oximeter")
        await expect(page.get_by_role("button", name="Revoke")).to_have_count(0)
        assert await serious_violations(page) == []
        # The call queue: the first to take the call has it.
        await page.goto(f"{server.url}/console/")
        await page.get_by_role("button", name="Take call").click()
        await page.wait_for_url(f"**/console/residents/{world.sigridur}?notice=call_yours")
        await nurse.close()

        technician = await browser.new_context(viewport={"width": 390, "height": 844})
        page = await technician.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        await sign_in(page, server.url, "siggi", "/console/devices")
        await page.goto(f"{server.url}/console/")
        assert page.url == f"{server.url}/console/devices"
        for path in ("/console/residents", f"/console/residents/{world.sigridur}"):
            response = await page.goto(server.url + path)
            assert response is not None
            assert response.status == 404, path
        await page.goto(f"{server.url}/console/devices")
        assert await serious_violations(page) == []
        await page.get_by_label("Kind").select_option("tablet")
        await page.get_by_label("Resident").select_option(str(world.sigridur))
        await page.get_by_label("Label").fill("Kitchen tablet")
        await page.get_by_role("button", name="Add device").click()
        await expect(page.locator("h1")).to_have_text("Device added")
        await expect(page.locator("dl")).to_contain_text(f"{server.url}/tablet/#key=vakid.tablet-")
        assert await serious_violations(page) == []
        await page.goto(f"{server.url}/console/devices")
        row = page.locator("tr", has_text="Kitchen tablet")
        # One click only asks: a revoked panic button would send no more alarms.
        await row.get_by_text("Revoke…").click()
        await expect(row).to_contain_text("alarms from it will not arrive")
        await row.get_by_role("button", name="Yes, revoke it").click()
        await page.wait_for_url("**/console/devices?notice=revoked*")
        await expect(page.locator("tr", has_text="Kitchen tablet")).to_have_count(0)
        assert await serious_violations(page) == []
        # A mistake is undone at once.
        await page.get_by_role("button", name="Undo: let Kitchen tablet connect again").click()
        await page.wait_for_url("**/console/devices?notice=restored")
        await expect(page.locator("tr", has_text="Kitchen tablet")).to_have_count(1)
        assert errors == []
        await technician.close()
    finally:
        await asyncio.to_thread(server.stop)
