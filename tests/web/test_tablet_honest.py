"""The resident's tablet tells the truth and makes itself heard, in a real Chromium started
as a kiosk (sound allowed without a touch) against a real ``vaki serve``: it pairs, shows as
online on the devices page, keeps both big buttons on the first screen at 200 % text, rings
with the caller's name when a call starts (pushed, not polled), and with the server stopped
never says the team was told: it names the number to call, and the request arrives once
when the server is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from tests.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HAVE_CHROMIUM,
    ServedVaki,
    missing_service,
    vaki_env,
)
from tests.web.test_tablet_browser import (
    SCREENSHOTS,
    UPRIGHT,
    VIEWPORT,
    assert_accessible,
    assert_fits,
    hold,
)

PASSWORD = "correct horse 1"
# The kiosk's flag: the tablet may ring before anyone has touched it.
KIOSK_ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
# Counts every sound the page starts, so the test hears the ring.
COUNT_SOUNDS = """
window.vakiSoundStarts = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.vakiSoundStarts += 1;
  return start.apply(this, args);
};
"""
# Every text the help screen's heading ever shows, in order.
RECORD_HEADINGS = """
window.vakiHelpHeadings = [];
document.addEventListener("DOMContentLoaded", () => {
  const heading = document.getElementById("help-sent-heading");
  const note = () => {
    const text = heading.textContent;
    const seen = window.vakiHelpHeadings;
    if (!heading.closest("[hidden]") && seen[seen.length - 1] !== text) { seen.push(text); }
  };
  new MutationObserver(note).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
});
"""


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
async def kiosk() -> AsyncIterator[Browser]:
    """Chromium as the tablet's kiosk runs it."""
    if not HAVE_CHROMIUM:
        missing_service(f"Chromium at {CHROMIUM} (apt install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=KIOSK_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def a_home(sessions: async_sessionmaker[AsyncSession]) -> dict[str, object]:
    """A home-care team with nurse Helga, and Sigríður, who reads English, with a pairing code."""
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        team = care.CareTeam(name="Home care Siglufjörður")
        sigga = care.Resident(
            full_name="Sigríður Jónsdóttir", language="en", time_zone="Atlantic/Reykjavik"
        )
        session.add_all([team, sigga])
        await session.flush()
        helga = await care.add_staff_user(
            session,
            username="helga",
            full_name="Helga Björnsdóttir",
            password=PASSWORD,
            role=care.StaffRole.NURSE,
            organisation=org,
            language="en",
        )
        assert team.id is not None
        assert sigga.id is not None
        assert helga.id is not None
        session.add_all(
            [
                care.TeamMembership(team_id=team.id, staff_id=helga.id),
                care.ResidentTeam(resident_id=sigga.id, team_id=team.id),
            ]
        )
        code = await devices.create_pairing_code(session, sigga.id, staff_id=helga.id)
        await session.commit()
        return {"resident": sigga.id, "code": code.grouped}


async def help_events(sessions: async_sessionmaker[AsyncSession]) -> list[devices.Event]:
    async with sessions() as session:
        found = await session.exec(
            select(devices.Event).where(col(devices.Event.type) == "help_request")
        )
        return list(found.all())


async def sign_in(page: Page, base: str) -> str:
    """Nurse Helga signs in; the session's CSRF token for the API."""
    await page.goto(f"{base}/login?next=/console/")
    await page.fill("#username", "helga")
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation():
        await page.click("button[type=submit]")
    token = await page.locator("meta[name=csrf-token]").get_attribute("content")
    assert token
    return token


async def assert_buttons_on_first_screen(page: Page, state: str) -> None:
    """Both big buttons lie wholly inside the screen, without scrolling."""
    boxes = await page.evaluate(
        """() => ['call-team', 'need-help'].map(id => {
            const r = document.getElementById(id).getBoundingClientRect();
            return [id, Math.round(r.top), Math.round(r.bottom), window.innerHeight];
        })"""
    )
    outside = [box for box in boxes if box[1] < 0 or box[2] > box[3]]
    assert outside == [], f"{state}: {outside}"


@pytest.mark.slow
async def test_the_tablet_tells_the_truth_offline_rings_and_fits_large_text(
    kiosk: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    world = await a_home(sessions)
    # A booked call nobody answers rings for 15 s here (two minutes by default).
    env = vaki_env(tmp_path, database_url=sqlite_url, checkin_sweep_s="1", tablet_ring_s="15")
    server = ServedVaki(tmp_path, env)
    await asyncio.to_thread(server.start)
    base = server.url
    try:
        # The tablet pairs with the code from the care team.
        tablet_context = await kiosk.new_context(viewport=VIEWPORT)
        await tablet_context.add_init_script(COUNT_SOUNDS)
        await tablet_context.add_init_script(RECORD_HEADINGS)
        tablet = await tablet_context.new_page()
        errors: list[str] = []
        tablet.on("pageerror", lambda error: errors.append(str(error)))
        await tablet.goto(f"{base}/tablet/?lang=en")
        await tablet.fill("#pair-code", str(world["code"]))
        await tablet.click("#pair-form button")
        await expect(tablet.locator("#screen-home")).to_be_visible(timeout=15_000)
        await expect(tablet.locator("#greeting")).to_contain_text("Sigríður")
        key = await tablet.evaluate("localStorage.getItem('vaki.tablet.key')")
        device_id = key.split(".")[1]

        # The devices page shows the paired tablet online, heard from just now.
        staff_context = await kiosk.new_context(viewport=VIEWPORT)
        staff = await staff_context.new_page()
        csrf = await sign_in(staff, base)
        await staff.goto(f"{base}/console/devices")
        row = staff.locator("tr", has=staff.locator(f"[id='device-{device_id}']"))
        await expect(row).to_contain_text("online")
        await expect(row).not_to_contain_text("silent")
        await expect(row).not_to_contain_text("never")

        # At 01:18 in her time zone the tablet does not wish her a good morning.
        night_context = await kiosk.new_context(viewport=VIEWPORT)
        night = await night_context.new_page()
        await night.clock.set_fixed_time(datetime(2026, 12, 6, 1, 18, tzinfo=UTC))
        await night.goto(f"{base}/tablet/?lang=en#key={key}")
        await expect(night.locator("#greeting")).to_have_text("Hello, Sigríður")
        await expect(night.locator("#time")).to_have_text("01:18")
        await night_context.close()

        # At 200 % text, upright and lying down, both big buttons are on the first screen.
        for viewport, name in ((VIEWPORT, "landscape"), (UPRIGHT, "upright")):
            await tablet.set_viewport_size(viewport)
            await tablet.evaluate("document.documentElement.style.fontSize = '200%'")
            await assert_buttons_on_first_screen(tablet, f"{name}, text at 200 %")
            await assert_fits(tablet, f"{name}, text at 200 %")
            await tablet.screenshot(path=str(SCREENSHOTS / f"tablet-large-text-{name}.png"))
            await tablet.evaluate("document.documentElement.style.fontSize = ''")
            await assert_buttons_on_first_screen(tablet, name)
        await tablet.set_viewport_size(VIEWPORT)

        # Helga calls: the tablet rings at once (pushed; its poll is a minute apart while its
        # socket is open) and says who is calling.
        starts_before = await tablet.evaluate("window.vakiSoundStarts")
        started = await staff.request.post(
            f"{base}/api/video/consultations",
            data={"resident_id": world["resident"]},
            headers={"x-csrf-token": csrf},
        )
        assert started.ok, await started.text()
        await expect(tablet.locator("#screen-incoming")).to_be_visible(timeout=5_000)
        await expect(tablet.locator("#incoming-heading")).to_have_text("Nurse Helga is calling")
        await expect(tablet.locator("#incoming-team")).to_have_text("Home care Siglufjörður")
        await tablet.wait_for_function(f"window.vakiSoundStarts > {starts_before}")
        assert await tablet.evaluate("window.vakiSoundStarts") >= 2  # a double ring
        await expect(tablet.locator("#sound-off")).to_be_hidden()
        await tablet.screenshot(path=str(SCREENSHOTS / "tablet-ringing.png"))
        await assert_accessible(tablet, "ringing")
        await tablet.click("#decline-call")
        await expect(tablet.locator("#screen-home")).to_be_visible()
        ringing = await tablet.evaluate("window.vakiSoundStarts")
        await tablet.wait_for_timeout(3500)  # the ring repeats every 3 s while it rings
        assert await tablet.evaluate("window.vakiSoundStarts") == ringing

        # A booked call rings at its time; when nobody answers it stops and says the team
        # will call back.
        due = datetime.now(UTC) + timedelta(seconds=3)
        booked = await staff.request.post(
            f"{base}/api/video/consultations/book",
            data={"resident_id": world["resident"], "scheduled_at": due.isoformat()},
            headers={"x-csrf-token": csrf},
        )
        assert booked.ok, await booked.text()
        await expect(tablet.locator("#screen-incoming")).to_be_visible(timeout=10_000)
        await expect(tablet.locator("#screen-call-back")).to_be_visible(timeout=25_000)
        await expect(tablet.locator("#call-back-heading")).to_have_text(
            "Your care team will call you back."
        )
        await assert_accessible(tablet, "call back")
        rung = await tablet.evaluate("window.vakiSoundStarts")
        await tablet.wait_for_timeout(3500)
        assert await tablet.evaluate("window.vakiSoundStarts") == rung
        await tablet.click("#screen-call-back .back-home")
        await expect(tablet.locator("#screen-home")).to_be_visible()

        # The page is kept for a reload without a connection.
        await tablet.evaluate("navigator.serviceWorker.ready.then(() => true)")

        # The server stops. "I need help" says "Sending…", then plainly that it is not sent
        # and which number to call; never that the team has it.
        await asyncio.to_thread(server.stop)
        await tablet.click("#need-help")
        await hold(tablet, "#help-hold", 1700)
        await expect(tablet.locator("#screen-help-sent")).to_be_visible(timeout=10_000)
        await expect(tablet.locator("#help-sent-heading")).to_have_text(
            "Not sent yet — no connection", timeout=10_000
        )
        await expect(tablet.locator("#help-fallback")).to_have_text(
            "If you need help now, call 112."
        )
        await tablet.screenshot(path=str(SCREENSHOTS / "tablet-help-not-sent.png"))
        await assert_accessible(tablet, "help not sent")
        # A reload keeps the request and the plain words.
        await tablet.reload()
        await expect(tablet.locator("#screen-help-sent")).to_be_visible()
        await expect(tablet.locator("#help-fallback")).to_have_text(
            "If you need help now, call 112.", timeout=10_000
        )
        headings = await tablet.evaluate("window.vakiHelpHeadings")
        assert "Your care team has it" not in headings
        assert await help_events(sessions) == []

        # The server returns: the request arrives once, and only then the team "has it".
        await asyncio.to_thread(server.start)
        await expect(tablet.locator("#help-sent-heading")).to_have_text(
            "Your care team has it", timeout=30_000
        )
        (event,) = await help_events(sessions)
        assert event.resident_id == world["resident"]
        assert event.device_id == device_id

        # Helga takes it; the tablet says who is on it.
        await sign_in(staff, base)
        csrf = await staff.locator("meta[name=csrf-token]").get_attribute("content") or ""
        listed = await (await staff.request.get(f"{base}/api/alerts/")).json()
        items = listed["items"] if isinstance(listed, dict) else listed
        (alert,) = [a for a in items if a["kind"] == "help_request"]
        taken = await staff.request.post(
            f"{base}/api/alerts/{alert['id']}/acknowledge", headers={"x-csrf-token": csrf}
        )
        assert taken.ok, await taken.text()
        await expect(tablet.locator("#help-sent-heading")).to_have_text(
            "Nurse Helga is on it", timeout=10_000
        )
        await tablet.wait_for_timeout(3000)
        assert len(await help_events(sessions)) == 1

        # While the server is down the tablet's key is changed (a restore, a re-keyed device)
        # and a second call for help waits. The refused key does not drop it: the tablet
        # says whom to call, and sends it once paired again.
        await tablet.click("#screen-help-sent .back-home")
        await asyncio.to_thread(server.stop)
        await tablet.click("#need-help")
        await hold(tablet, "#help-hold", 1700)
        await expect(tablet.locator("#help-sent-heading")).to_have_text(
            "Not sent yet — no connection", timeout=15_000
        )
        async with sessions() as session:
            device = await session.get(devices.Device, device_id)
            assert device is not None
            await devices.reset_device_secret(session, device)
            code = await devices.create_pairing_code(
                session, int(str(world["resident"])), staff_id=None
            )
            await session.commit()
        await asyncio.to_thread(server.start)
        await expect(tablet.locator("#screen-pair")).to_be_visible(timeout=30_000)
        await expect(tablet.locator("#unpaired")).to_have_text(
            "This tablet is not connected to your care team. If you need help, call 112."
        )
        await assert_accessible(tablet, "key refused")
        waiting = await tablet.evaluate("JSON.parse(localStorage.getItem('vaki.tablet.outbox'))")
        assert [item["path"] for item in waiting] == ["/api/tablet/help"]
        assert len(await help_events(sessions)) == 1
        await tablet.fill("#pair-code", code.grouped)
        await tablet.click("#pair-form button")
        await expect(tablet.locator("#screen-home")).to_be_visible(timeout=15_000)
        await expect(tablet.locator("#unpaired")).to_be_hidden()
        for _ in range(100):
            if len(await help_events(sessions)) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(await help_events(sessions)) == 2
        assert await tablet.evaluate("localStorage.getItem('vaki.tablet.outbox')") == "[]"
        assert errors == []
        for context in (tablet_context, staff_context):
            await context.close()
    finally:
        await asyncio.to_thread(server.stop)
