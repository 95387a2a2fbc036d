"""A video call in two real browsers through the real service's relay: a nurse starts a call
from the resident's page, the resident's tablet rings and answers, both see each other's
picture (frames decoded from Chromium's fake camera), the nurse hangs up, and the
consultation keeps who took part and when it ended. The call page passes axe-core."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import devices
import video
from tests.conftest import ServedVaki, vaki_env
from tests.web.console_world import build_world, sign_in

pytestmark = pytest.mark.slow

# The README's screenshots are taken again only when asked (VAKI_SCREENSHOTS=1); otherwise
# a run writes them to a temporary folder, so the tests never change the tree.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("VAKI_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="vaki-screenshots-"))
)
FRAMES_WAIT_S = 20


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def serve(sqlite_url: str, tmp_path: Path) -> ServedVaki:
    """``vaki serve`` on the test's database, its own broker, relaying calls."""
    env = vaki_env(
        tmp_path,
        database_url=sqlite_url,
        video_media_mode="relay",
        video_quality_interval_s="1",
    )
    return ServedVaki(tmp_path, env)


async def frames_decoded(page: Page) -> int:
    """Video frames this page has decoded from the others in the call so far."""
    stats: dict[str, Any] = await page.evaluate(
        "() => window.vakiCall ? window.vakiCall.stats() : {framesDecoded: 0}"
    )
    return int(stats["framesDecoded"])


async def until_frames(page: Page, who: str) -> int:
    """Poll getStats until the page decodes pictures; fail after FRAMES_WAIT_S."""
    decoded = 0
    for _ in range(FRAMES_WAIT_S * 4):
        decoded = await frames_decoded(page)
        if decoded > 10:
            return decoded
        await asyncio.sleep(0.25)
    raise AssertionError(f"{who} decoded {decoded} frames in {FRAMES_WAIT_S} s")


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    results = await Axe().run(page)
    return [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


async def the_consultation(
    sessions: async_sessionmaker[AsyncSession], consultation_id: int
) -> video.Consultation:
    async with sessions() as session:
        found = await session.get(video.Consultation, consultation_id)
        assert found is not None
        return found


async def test_a_nurse_calls_the_tablet_both_see_each_other_and_the_call_is_recorded(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    async with sessions() as session:
        tablet_device = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=world.sigridur
        )
        await session.commit()
    tablet_key = devices.tablet_key(tablet_device.device.id, tablet_device.secret)
    server = serve(sqlite_url, tmp_path)
    await asyncio.to_thread(server.start)
    base = server.url
    errors: list[str] = []
    try:
        # The resident's tablet, paired, at home.
        tablet_context = await browser.new_context(viewport={"width": 1280, "height": 800})
        tablet = await tablet_context.new_page()
        tablet.on("pageerror", lambda error: errors.append(f"tablet: {error}"))
        await tablet.goto(f"{base}/tablet/#key={tablet_key}")
        await expect(tablet.locator("#screen-home")).to_be_visible(timeout=15_000)

        # The nurse starts a call from the resident's page and lands on the call page.
        console_context = await browser.new_context(viewport={"width": 1280, "height": 900})
        nurse = await console_context.new_page()
        nurse.on("pageerror", lambda error: errors.append(f"console: {error}"))
        resident_path = f"/console/residents/{world.sigridur}"
        await sign_in(nurse, base, "helga", resident_path)
        await nurse.click("#start-call")
        await nurse.wait_for_url(f"{base}/console/calls/*")
        consultation_id = int(nurse.url.rsplit("/", 1)[1])
        await expect(nurse.locator("#call-status")).to_contain_text(
            "Waiting for Sigríður Jónsdóttir", timeout=15_000
        )

        # The tablet rings; the resident answers and sees the nurse full-screen.
        await expect(tablet.locator("#screen-incoming")).to_be_visible(timeout=20_000)
        await tablet.click("#answer-call")
        await expect(tablet.locator("#screen-call")).to_be_visible(timeout=20_000)
        await expect(tablet.locator("#end-call")).to_be_visible()

        # Both hold the call through the server and both decode pictures.
        assert await until_frames(tablet, "the tablet") > 10
        assert await until_frames(nurse, "the nurse") > 10
        await expect(nurse.locator("#call-status")).to_contain_text(
            "In the call with Sigríður Jónsdóttir"
        )
        await expect(nurse.locator("#call-quality tr")).to_have_count(1, timeout=10_000)
        await expect(nurse.locator("#call-quality th")).to_have_text("Sigríður Jónsdóttir")
        await expect(tablet.locator("#call-sign")).not_to_be_empty(timeout=10_000)
        during = await the_consultation(sessions, consultation_id)
        assert during.status == video.ConsultationStatus.ACTIVE
        assert during.ended_at is None

        assert await serious_violations(nurse) == []
        assert await serious_violations(tablet) == []
        await nurse.wait_for_timeout(1500)  # a few more frames and a quality reading
        await nurse.screenshot(path=str(SCREENSHOTS / "console-call.png"), full_page=True)

        # The nurse hangs up: the tablet is left alone and ends too; the record is kept.
        await nurse.click("#hang-up")
        await expect(nurse.locator("#call-status")).to_have_text("The call has ended.")
        await expect(tablet.locator("#screen-call-ended")).to_be_visible(timeout=10_000)
        ended = during
        for _ in range(100):
            ended = await the_consultation(sessions, consultation_id)
            if ended.ended_at is not None:
                break
            await asyncio.sleep(0.1)
        assert ended.ended_at is not None
        assert ended.status == video.ConsultationStatus.ENDED
        assert ended.started_at is not None
        assert ended.started_at <= ended.ended_at
        taking_part = {entry["who"]: entry for entry in ended.participants}
        assert set(taking_part) == {f"staff:{world.helga}", f"resident:{world.sigridur}"}
        assert all(e.get("joined_at") and e.get("left_at") for e in taking_part.values())
        assert ended.quality["mode"] == "relay"
        assert set(ended.quality["participants"]) == set(taking_part)

        # Back home, the tablet does not ring again for the ended call.
        await tablet.click("#screen-call-ended .back-home")
        await expect(tablet.locator("#screen-home")).to_be_visible()
        await tablet.wait_for_timeout(500)
        await expect(tablet.locator("#screen-incoming")).to_be_hidden()
        assert errors == []
        for context in (tablet_context, console_context):
            await context.close()
    finally:
        await asyncio.to_thread(server.stop)


async def test_the_device_test_says_what_works_on_the_console_and_the_tablet(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    async with sessions() as session:
        tablet_device = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=world.sigridur
        )
        await session.commit()
    tablet_key = devices.tablet_key(tablet_device.device.id, tablet_device.secret)
    server = serve(sqlite_url, tmp_path)
    await asyncio.to_thread(server.start)
    base = server.url
    errors: list[str] = []
    try:
        console_context = await browser.new_context(viewport={"width": 1280, "height": 900})
        nurse = await console_context.new_page()
        nurse.on("pageerror", lambda error: errors.append(f"console: {error}"))
        await sign_in(nurse, base, "helga", "/console/device-test")
        tablet_context = await browser.new_context(viewport={"width": 1280, "height": 800})
        tablet = await tablet_context.new_page()
        tablet.on("pageerror", lambda error: errors.append(f"tablet: {error}"))
        await tablet.goto(f"{base}/tablet/#key={tablet_key}")
        await expect(tablet.locator("#screen-home")).to_be_visible(timeout=15_000)
        # The home page may reload itself (to the resident's language): the test opens its
        # own page beside it, which shares the stored device key.
        tester = await tablet_context.new_page()
        tester.on("pageerror", lambda error: errors.append(f"tablet test: {error}"))
        await tester.goto(f"{base}/tablet/device-test")
        for page in (nurse, tester):
            await page.click("#device-test-start")
            await expect(page.locator("#device-test[data-done='true']")).to_be_attached(
                timeout=30_000
            )
            found = await page.eval_on_selector_all(
                "#device-test-results li",
                "items => items.map(i => [i.dataset.item, i.dataset.ok])",
            )
            # Chromium's fake camera and microphone: everything works, said in words.
            assert found == [["connection", "true"], ["camera", "true"], ["microphone", "true"]]
            assert await serious_violations(page) == []
        assert errors == []
    finally:
        await asyncio.to_thread(server.stop)
