"""A call for help the server (or a proxy before it) refuses is never dropped and never said
to be received: the tablet shows the number to call and keeps trying until the server takes
it. And two sends at once never take it out of the outbox while its request is in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.conftest import ServedVaki, vaki_env
from tests.web.test_tablet_browser import VIEWPORT, hold
from tests.web.test_tablet_honest import RECORD_HEADINGS, a_home, help_events, kiosk

__all__ = ["kiosk"]

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def paired(kiosk: Browser, base: str, code: str) -> Page:
    context = await kiosk.new_context(viewport=VIEWPORT)
    await context.add_init_script(RECORD_HEADINGS)
    tablet = await context.new_page()
    await tablet.goto(f"{base}/tablet/?lang=en")
    await tablet.fill("#pair-code", code)
    await tablet.click("#pair-form button")
    await expect(tablet.locator("#screen-home")).to_be_visible(timeout=15_000)
    return tablet


async def press_help(tablet: Page) -> None:
    await tablet.click("#need-help")
    await hold(tablet, "#help-hold", 1700)
    await expect(tablet.locator("#screen-help-sent")).to_be_visible(timeout=10_000)


async def test_a_refused_call_for_help_is_kept_and_the_number_shown(
    kiosk: Browser, sessions: async_sessionmaker[AsyncSession], sqlite_url: str, tmp_path: Path
) -> None:
    world = await a_home(sessions)
    server = ServedVaki(tmp_path, vaki_env(tmp_path, database_url=sqlite_url))
    await asyncio.to_thread(server.start)
    try:
        tablet = await paired(kiosk, server.url, str(world["code"]))
        refused: list[int] = []
        every_kind = asyncio.Event()

        # A proxy in a rolling deploy answers 403, 404, 408, 413 and 400 to the call for help.
        async def proxy(route: Route) -> None:
            status = (403, 404, 408, 413, 400)[len(refused) % 5]
            refused.append(status)
            if len(refused) >= 6:
                every_kind.set()
            await route.fulfill(status=status, body="")

        await tablet.route("**/api/tablet/help", proxy)
        await press_help(tablet)
        await expect(tablet.locator("#help-sent-heading")).to_have_text(
            "Not sent yet — no connection", timeout=10_000
        )
        await expect(tablet.locator("#help-fallback")).to_have_text(
            "If you need help now, call 112."
        )
        # It is tried again and again, and stays in the outbox.
        await asyncio.wait_for(every_kind.wait(), 60)
        assert {403, 404, 408, 413, 400} <= set(refused)
        waiting = await tablet.evaluate("localStorage.getItem('vaki.tablet.outbox')")
        assert "/api/tablet/help" in waiting
        headings = await tablet.evaluate("window.vakiHelpHeadings")
        assert "Your care team has it" not in headings
        assert await help_events(sessions) == []

        # The proxy lets it through: it arrives once, and only then the team "has it".
        await tablet.unroute("**/api/tablet/help")
        await expect(tablet.locator("#help-sent-heading")).to_have_text(
            "Your care team has it", timeout=30_000
        )
        assert len(await help_events(sessions)) == 1
    finally:
        await asyncio.to_thread(server.stop)


async def test_two_sends_at_once_never_lose_the_call_for_help(
    kiosk: Browser, sessions: async_sessionmaker[AsyncSession], sqlite_url: str, tmp_path: Path
) -> None:
    world = await a_home(sessions)
    server = ServedVaki(tmp_path, vaki_env(tmp_path, database_url=sqlite_url))
    await asyncio.to_thread(server.start)
    try:
        tablet = await paired(kiosk, server.url, str(world["code"]))
        release = asyncio.Event()
        calls: list[str] = []
        hanging = asyncio.Event()
        helps: list[str] = []

        # "Call my care team" goes first and hangs on a slow line.
        async def slow(route: Route) -> None:
            calls.append(route.request.url)
            hanging.set()
            await release.wait()
            await route.continue_()

        # The first try of the call for help fails; later ones go through.
        async def flaky(route: Route) -> None:
            helps.append(route.request.url)
            if len(helps) == 1:
                await route.fulfill(status=503, body="")
            else:
                await route.continue_()

        await tablet.route("**/api/tablet/call-request", slow)
        await tablet.route("**/api/tablet/help", flaky)
        await tablet.click("#call-team")
        await asyncio.wait_for(hanging.wait(), 10)
        await press_help(tablet)
        # A second send started while the first is in flight shares it: the call request is
        # sent once, the call for help after it.
        assert len(calls) == 1
        assert helps == []
        release.set()
        await expect(tablet.locator("#help-sent-heading")).to_have_text(
            "Your care team has it", timeout=30_000
        )
        assert len(helps) >= 2
        assert len(calls) == 1
        assert len(await help_events(sessions)) == 1
        assert await tablet.evaluate("localStorage.getItem('vaki.tablet.outbox')") == "[]"
    finally:
        await asyncio.to_thread(server.stop)
