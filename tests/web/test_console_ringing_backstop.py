"""The console's ring, in a real browser with the clock in the test's hand: a high alert
rings on every page (every 30 s, against 5 s for a critical one); a page whose socket hears
nothing still finds it within 15 s; a mute holds for one ringing episode, so a re-trigger
rings again; and a console that has been signed out says so loudly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
from tests.web.console_world import build_world, serve, sign_in
from tests.web.test_night_shift import COUNT_SOUNDS, TONES_PER_ALARM, armed, tones

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def test_high_alerts_ring_mutes_end_and_a_signed_out_console_says_so(
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
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_init_script(COUNT_SOUNDS)
        page = await context.new_page()
        await sign_in(page, server.url, "helga")
        await armed(page)
        await page.clock.install()
        await page.goto(f"{server.url}/console/residents/{world.sigridur}")
        await expect(page.locator("#live-state")).to_have_class("live on", timeout=10_000)
        banner = page.locator("#alarm-banner")
        await expect(banner).to_be_hidden()

        # A high alert is written while the page's socket hears nothing of it (as after a
        # Wi-Fi roam): the page's own re-fetch finds it, shows it and sounds.
        async with sessions() as session:
            low = alerts.Alert(
                resident_id=world.sigridur,
                team_id=world.north,
                kind="spo2_low",
                dedupe_key=f"resident:{world.sigridur}:spo2_low",
                severity=alerts.AlertSeverity.HIGH,
                title="SpO2 low",
                details={"value": 87},
            )
            session.add(low)
            await session.commit()
            alert_id = low.id
        before = await tones(page)
        await page.clock.run_for(15_500)
        await expect(banner).to_be_visible(timeout=10_000)
        await expect(banner.locator("h2")).to_have_text("Alert: nobody has acknowledged it")
        await expect(banner.locator(f"[data-alert-id='{alert_id}']")).to_be_visible()
        first = await tones(page)
        assert first == before + TONES_PER_ALARM

        # It rings again, more slowly than a critical one: not within 10 s, but within 30 s.
        await page.clock.run_for(10_000)
        assert await tones(page) == first
        await page.clock.run_for(25_000)
        again = await tones(page)
        assert again >= first + TONES_PER_ALARM

        # She mutes it: silence while nothing new happens.
        await banner.get_by_role("button", name="Mute this alert").click()
        await expect(banner.get_by_role("button", name="Mute this alert")).to_be_hidden()
        await page.clock.run_for(65_000)
        assert await tones(page) == again

        # It is triggered again (the count goes up): the mute is over, it rings and she can
        # mute it again.
        async with sessions() as session:
            stored = await session.get(alerts.Alert, alert_id)
            assert stored is not None
            stored.count += 1
            stored.last_seen_at = care.utcnow()
            await session.commit()
        await page.clock.run_for(15_500)
        await expect(banner.get_by_role("button", name="Mute this alert")).to_be_visible(
            timeout=10_000
        )
        rung = await tones(page)
        assert rung == again + TONES_PER_ALARM

        # The session ends behind her back: the page says alarms are not reaching it, and
        # sounds.
        signed_out = page.locator("#signed-out")
        await expect(signed_out).to_be_hidden()
        await context.clear_cookies()
        await page.clock.run_for(15_500)
        await expect(signed_out).to_be_visible(timeout=10_000)
        await expect(signed_out).to_contain_text("Signed out — alarms are not reaching this screen")
        assert await tones(page) > rung
    finally:
        await asyncio.to_thread(server.stop)
