"""The console in Icelandic shows no English and no raw codes: the queue, an alert and a
resident's page, read as a nurse sees them (the visible text), against every English message
of the catalogues and the shape of a code. Screenshots for the README with VAKI_SCREENSHOTS=1.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from tests.conftest import MqttProbe
from tests.web.console_world import add_history, build_world, panic_payload, serve, sign_in
from web import i18n

pytestmark = pytest.mark.slow

SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("VAKI_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="vaki-screenshots-"))
)
# A code left in the page: snake_case, or Python's None.
RAW = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b|\bNone\b")
# Icelandic staff write device labels and relationships in Icelandic.
LABELS = {
    "Pendant": "Neyðarhnappur á úlnlið",
    "Blood pressure cuff": "Blóðþrýstingsmælir í stofu",
    "Pulse oximeter": "Súrefnismælir",
    "Bathroom scale": "Baðvog",
    "Hall motion sensor": "Hreyfiskynjari á gangi",
}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def english_fragments() -> list[str]:
    """Every English phrase of the catalogues that Icelandic says differently."""
    found = set()
    for domain in i18n.DOMAINS:
        icelandic = i18n.catalogue(domain, "is")
        for message in i18n.catalogue(domain, "en"):
            if not isinstance(message.id, str) or not message.id:
                continue
            translated = icelandic.get(message.id, context=message.context)
            if translated is None or translated.string == message.id:
                continue
            for part in re.split(r"%\(\w+\)s|%%", message.id):
                fragment = part.strip(" .,:;·()“”\"'")
                # One short word may be a name; a phrase, or a long word, is English.
                if len(fragment) >= 5 and (" " in fragment or len(fragment) >= 8):
                    found.add(fragment)
    return sorted(found, key=len, reverse=True)


def untranslated(text: str, english: list[str]) -> list[str]:
    """English phrases and raw codes in a page's visible text."""
    problems = [f"code {code!r}" for code in RAW.findall(text)]
    for phrase in english:  # longest first; a phrase found is not found again in its parts
        pattern = re.compile(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])")
        if pattern.search(text):
            problems.append(phrase)
            text = pattern.sub("…", text)
    return problems


async def visible_text(page: Page) -> str:
    """What a person reads on the page (and what a screen reader says of its images)."""
    text: str = await page.evaluate(
        """() => document.body.innerText + "\\n" + document.title + "\\n" +
          Array.from(document.querySelectorAll("[aria-label], [alt], [title]"))
            .filter((e) => e.offsetParent !== null)
            .map((e) => ["aria-label", "alt", "title"].map((a) => e.getAttribute(a))
              .filter(Boolean).join(" ")).join("\\n")"""
    )
    return text


async def in_icelandic(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Helga reads Icelandic; the data (labels, names of policies) is what Icelandic staff
    typed."""
    async with sessions() as session:
        for staff in (await session.exec(select(care.StaffUser))).all():
            staff.language = "is"
            session.add(staff)
        for device in (await session.exec(select(devices.Device))).all():
            device.label = LABELS.get(device.label or "", device.label)
            session.add(device)
        for contact in (await session.exec(select(care.Contact))).all():
            contact.relationship = "dóttir"
            session.add(contact)
        for policy in (await session.exec(select(alerts.EscalationPolicy))).all():
            policy.name = "Dag og nótt"
            session.add(policy)
        for alert in (await session.exec(select(alerts.Alert))).all():
            if alert.kind == "weight_gain":
                alert.details = {"gain_kg": 2.1, "days": 3}
                session.add(alert)
        await session.commit()


async def test_the_queue_an_alert_and_a_resident_speak_icelandic_only(
    browser: Browser,
    sessions: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    mosquitto: tuple[str, int],
    tmp_path: Path,
) -> None:
    world = await build_world(sessions)
    await add_history(sessions, world)
    await in_icelandic(sessions)
    english = english_fragments()
    assert "Panic button pressed" in english  # the check knows what it looks for
    server = serve(tmp_path, sqlite_url, mosquitto)
    await asyncio.to_thread(server.start)
    pendant = MqttProbe(*mosquitto, client_id=world.panic_button)
    try:
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        page = await context.new_page()
        await sign_in(page, server.url, "helga")
        await expect(page.locator("#live-state")).to_have_class("live on", timeout=10_000)
        await asyncio.to_thread(pendant.connect)
        await asyncio.to_thread(
            pendant.publish, f"vaki/v1/d/{world.panic_button}/event", panic_payload()
        )
        await expect(page.locator("#alarm-banner")).to_be_visible(timeout=10_000)
        await expect(page.locator("li.alert.sev-critical")).to_have_count(1, timeout=10_000)
        pages = {}
        pages["queue"] = await visible_text(page)
        await page.screenshot(path=str(SCREENSHOTS / "console-is-queue.png"), full_page=True)

        async with sessions() as session:
            panic = (
                await session.exec(select(alerts.Alert).where(alerts.Alert.kind == "panic"))
            ).one()
        await page.goto(f"{server.url}/console/alerts/{panic.id}")
        await expect(page.locator("ol.timeline li")).not_to_have_count(0)
        await expect(page.locator("#alarm-banner")).to_be_visible(timeout=10_000)
        pages["alert"] = await visible_text(page)
        await page.screenshot(path=str(SCREENSHOTS / "console-is-alert.png"), full_page=True)

        await page.goto(f"{server.url}/console/residents/{world.sigridur}?days=30")
        await expect(page.locator("h1")).to_contain_text("Sigríður Jónsdóttir")
        pages["resident"] = await visible_text(page)
        await page.screenshot(path=str(SCREENSHOTS / "console-is-resident.png"), full_page=True)

        # The check catches what it is for: the stored English title, a raw code.
        assert untranslated("Panic button pressed · device_silent", english) == [
            "code 'device_silent'",
            "Panic button pressed",
        ]
        problems = {name: untranslated(text, english) for name, text in pages.items()}
        assert problems == {"queue": [], "alert": [], "resident": []}
        # And the pages do say it, in Icelandic.
        neydarhnappur = i18n.translate("Panic button pressed", "is")
        assert neydarhnappur in pages["queue"]
        assert neydarhnappur in pages["alert"]
        await context.close()
    finally:
        await asyncio.to_thread(pendant.close)
        await asyncio.to_thread(server.stop)
