"""A night shift in a real browser against the real service and a real broker.

The nurse signs in and goes about her work. A panic she acknowledged is pressed again and
rings again; a smoke alarm while she is on a resident's page shows a banner there and sounds
again and again (the page's audio calls are counted) until she acknowledges it; five motion
sensors going silent at once are one technical incident that no nurse is notified of and no
relative is told of, kept out of her queue but for one line; a call request reaches the call
queue live, with a chime.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from tests.conftest import MqttProbe
from tests.web.console_world import ConsoleWorld, build_world, serve, sign_in

pytestmark = pytest.mark.slow

# Counts every tone the page plays and every notification it raises.
COUNT_SOUNDS = """
window.__tones = 0;
window.__notes = [];
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__tones += 1;
  return start.apply(this, args);
};
const Real = window.Notification;
if (Real) {
  window.Notification = function (title, options) {
    window.__notes.push(title);
    return new Real(title, options);
  };
  Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
  window.Notification.requestPermission = (...a) => Real.requestPermission(...a);
}
"""
TONES_PER_ALARM = 3


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def event(kind: str) -> str:
    """An event as docs/mqtt.md defines it."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"id": uuid.uuid4().hex[:12], "ts": now, "type": kind, "data": {}})


async def relatives_in_the_policy(
    sessions: async_sessionmaker[AsyncSession], world: ConsoleWorld
) -> None:
    """The north team's clinical policy ends with the relatives, and the daughter takes
    alerts: exactly what a technical alert must never reach."""
    async with sessions() as session:
        policy = (
            await session.exec(
                select(alerts.EscalationPolicy).where(
                    alerts.EscalationPolicy.team_id == world.north
                )
            )
        ).one()
        assert policy.id is not None
        session.add(
            alerts.EscalationTier(
                policy_id=policy.id,
                position=3,
                timeout_s=30,
                recipients=[{"kind": "relatives"}],
                channels=["sms"],
            )
        )
        daughter = (
            await session.exec(
                select(care.Contact).where(care.Contact.resident_id == world.sigridur)
            )
        ).one()
        daughter.receives_alerts = True
        session.add(daughter)
        await session.commit()


async def alert_of(sessions: async_sessionmaker[AsyncSession], kind: str) -> alerts.Alert:
    async with sessions() as session:
        return (await session.exec(select(alerts.Alert).where(alerts.Alert.kind == kind))).one()


async def tones(page: Page) -> int:
    return int(await page.evaluate("window.__tones"))


async def armed(page: Page) -> None:
    """Sound is on after the sign-in click; on a browser that wants one more, "Start shift"."""
    start = page.locator("#start-shift")
    if await start.is_visible():
        await start.click()
    await expect(start).to_be_hidden()


async def until(check: object, timeout_s: float = 20) -> None:
    """Wait for a condition the service reaches in the background (a sweep, a step)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        if await check():  # type: ignore[operator]
            return
        assert asyncio.get_running_loop().time() < deadline, "the service never got there"
        await asyncio.sleep(0.2)


async def test_a_night_shift(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    mosquitto: tuple[str, int],
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    await relatives_in_the_policy(sessions, world)
    async with sessions() as session:
        smoke = await devices.provision_device(
            session,
            kind=devices.DeviceKind.SMOKE_DETECTOR,
            resident_id=world.sigridur,
            label="Reykskynjari í eldhúsi",
        )
        smoke_id = smoke.device.id
        smoke.device.online, smoke.device.last_seen_at = True, care.utcnow()
        await session.commit()
    server = serve(tmp_path, sqlite_url, mosquitto)
    server.env["VAKI_RULES_SWEEP_S"] = "1"
    await asyncio.to_thread(server.start)
    pendant = MqttProbe(*mosquitto, client_id=world.panic_button)
    detector = MqttProbe(*mosquitto, client_id=smoke_id)
    await asyncio.to_thread(pendant.connect)
    await asyncio.to_thread(detector.connect)
    try:
        context = await browser.new_context(
            viewport={"width": 1280, "height": 800}, permissions=["notifications"]
        )
        await context.add_init_script(COUNT_SOUNDS)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await sign_in(page, server.url, "helga")
        await expect(page.locator("#live-state")).to_have_class("live on", timeout=10_000)
        await armed(page)

        # 1. The pendant: the console rings, she acknowledges, it goes quiet.
        await asyncio.to_thread(
            pendant.publish, f"vaki/v1/d/{world.panic_button}/event", event("panic")
        )
        banner = page.locator("#alarm-banner")
        await expect(banner).to_be_visible(timeout=10_000)
        await expect(banner).to_contain_text("Panic button pressed")
        await expect(banner).to_contain_text("Sigríður Jónsdóttir")
        assert await tones(page) >= TONES_PER_ALARM
        row = page.locator("li.alert.sev-critical")
        await row.get_by_role("button", name="Acknowledge").click()
        await expect(row).to_have_attribute("data-status", "acknowledged", timeout=10_000)
        await expect(banner).to_be_hidden()
        panic = await alert_of(sessions, "panic")
        assert panic.status == "acknowledged"

        # 2. Pressed again: the situation changed. It rings again and escalates anew.
        quiet = await tones(page)
        await asyncio.to_thread(
            pendant.publish, f"vaki/v1/d/{world.panic_button}/event", event("panic")
        )
        await expect(banner).to_be_visible(timeout=10_000)
        await expect(row).to_have_attribute("data-status", "open", timeout=10_000)
        assert await page.get_attribute("body", "data-alarms") == "2"
        assert await tones(page) >= quiet + TONES_PER_ALARM
        assert page.url.endswith("/console/")
        assert panic.id is not None
        async with sessions() as session:
            again = await session.get(alerts.Alert, panic.id)
            assert again is not None
            assert (again.status, again.escalation, again.count) == ("open", "active", 2)
            kinds = (
                await session.exec(
                    select(alerts.AlertTimelineEntry.kind).where(
                        alerts.AlertTimelineEntry.alert_id == panic.id
                    )
                )
            ).all()
            assert "pressed_again" in kinds
            rounds = (
                await session.exec(
                    select(alerts.EscalationStep.round, alerts.EscalationStep.tier).where(
                        alerts.EscalationStep.alert_id == panic.id,
                        alerts.EscalationStep.kind == "notify",
                    )
                )
            ).all()
            newest = max(r for r, _ in rounds)
            assert newest > 1
            # The new round climbs from the first tier again.
            assert min(t for r, t in rounds if r == newest) == 1
        # She takes it from the banner this time, wherever she is.
        await banner.get_by_role("button", name="Acknowledge").click()
        await expect(banner).to_be_hidden(timeout=10_000)
        await page.goto(f"{server.url}/console/alerts/{panic.id}")
        await expect(page.locator("ol.timeline")).to_contain_text(
            "Pressed again after it was acknowledged"
        )
        await page.locator("#outcome-" + str(panic.id)).select_option("resident_fine")
        await page.get_by_role("button", name="Resolve").click()
        await expect(page.get_by_text("The alert is resolved.")).to_be_visible()

        # 3. On a resident's page, with the clock in the nurse's hand: the smoke alarm.
        await page.clock.install()
        await page.goto(f"{server.url}/console/residents/{world.sigridur}")
        await expect(page.locator("#live-state")).to_have_class("live on", timeout=10_000)
        await page.evaluate("window.notReloaded = true")
        before = await tones(page)
        await asyncio.to_thread(detector.publish, f"vaki/v1/d/{smoke_id}/event", event("smoke"))
        await expect(banner).to_be_visible(timeout=10_000)
        await expect(banner).to_contain_text("Smoke alarm")
        await expect(banner).to_contain_text("Reykskynjari í eldhúsi")
        first = await tones(page)
        assert first == before + TONES_PER_ALARM
        assert await page.evaluate("window.__notes") == ["Smoke alarm"]
        # Nobody acknowledges: it sounds again every few seconds, and the title flashes.
        await page.clock.run_for(15_500)
        repeated = await tones(page)
        assert repeated >= first + 3 * TONES_PER_ALARM
        assert (await page.title()).startswith(("(!)", "(1)"))
        assert await page.evaluate("window.notReloaded === true")
        await banner.get_by_role("button", name="Acknowledge").click()
        await expect(banner).to_be_hidden(timeout=10_000)
        settled = await tones(page)
        await page.clock.run_for(30_000)
        assert await tones(page) == settled
        assert (await alert_of(sessions, "smoke")).status == "acknowledged"

        # 4. The hall gateway dies: five motion sensors fall silent at once.
        async with sessions() as session:
            sensors = []
            for n in range(5):
                sensor = await devices.provision_device(
                    session,
                    kind=devices.DeviceKind.MOTION_SENSOR,
                    resident_id=world.sigridur,
                    label=f"Hreyfiskynjari {n + 1}",
                )
                sensor.device.online = False
                sensor.device.last_seen_at = care.utcnow() - timedelta(hours=2)
                sensors.append(sensor.device.id)
            await session.commit()

        async def incident_raised() -> bool:
            async with sessions() as session:
                found = (
                    await session.exec(
                        select(alerts.Alert).where(alerts.Alert.kind == "devices_silent")
                    )
                ).all()
                return len(found) == 1

        await until(incident_raised)
        incident = await alert_of(sessions, "devices_silent")
        assert incident.id is not None
        assert (incident.team_id, incident.severity, incident.escalation) == (
            world.north,
            "technical",
            "none",
        )
        assert sorted(incident.details["devices"]) == sorted(sensors)
        # Let a few more sweeps pass: still one incident, not counting up, nobody told.
        await asyncio.sleep(3)
        async with sessions() as session:
            silent = (
                await session.exec(
                    select(alerts.Alert).where(
                        col(alerts.Alert.device_id).in_(sensors)
                        | (alerts.Alert.kind == "devices_silent")
                    )
                )
            ).all()
            assert [(a.kind, a.count) for a in silent] == [("devices_silent", 1)]
            told = (
                await session.exec(
                    select(alerts.Notification).where(alerts.Notification.alert_id == incident.id)
                )
            ).all()
            assert told == []
            relatives = (
                await session.exec(
                    select(alerts.Notification).where(
                        alerts.Notification.recipient_kind == "contact"
                    )
                )
            ).all()
            assert relatives == []
        # The nurse's queue: one line, no row, nothing ringing.
        await page.goto(f"{server.url}/console/")
        await expect(page.locator("#live-state")).to_have_class("live on", timeout=10_000)
        await expect(page.locator(".technical-line")).to_contain_text("1 technical problems")
        await expect(page.locator(f"#alert-{incident.id}")).to_have_count(0)
        await expect(banner).to_be_hidden()
        await page.locator(".technical-line a").click()
        await expect(page.locator(f"#alert-{incident.id}")).to_contain_text(
            "Many devices silent at once"
        )
        await expect(page.locator(f"#alert-{incident.id}")).to_contain_text("5 devices")
        assert await page.get_attribute("body", "data-alarms") is None

        # 5. Sigríður asks to be called: the call queue fills in live, with a chime.
        await page.goto(f"{server.url}/console/")
        await expect(page.locator("#live-state")).to_have_class("live on", timeout=10_000)
        await expect(page.locator("#call-list li")).to_have_count(0)
        await page.evaluate("window.notReloaded = true")
        chimed = await tones(page)
        await asyncio.to_thread(
            pendant.publish, f"vaki/v1/d/{world.panic_button}/event", event("call_request")
        )
        await expect(page.locator("#call-list li")).to_have_count(1, timeout=10_000)
        await expect(page.locator("#calls-count")).to_have_text("1")
        assert await tones(page) == chimed + 2
        assert await page.evaluate("window.notReloaded === true")
        assert errors == []
        await context.close()
    finally:
        await asyncio.to_thread(pendant.close)
        await asyncio.to_thread(detector.close)
        await asyncio.to_thread(server.stop)
