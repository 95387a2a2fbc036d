"""Screenshots of the console for the docs, taken from the real service in a real browser.

    uv run --frozen python -m tests.web.console_screenshots

Writes docs/screenshots/console-{queue,alert,resident,phone}.png. Needs Chromium and the
Mosquitto broker at 127.0.0.1:1883, like the browser tests.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright, expect
from sqlmodel import select

import alerts
from server.db import create_engine, session_factory, upgrade_database
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, MOSQUITTO_HOST, MOSQUITTO_PORT, MqttProbe
from tests.web.console_world import add_history, build_world, panic_payload, serve, sign_in

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def main() -> None:
    """Build the world, run the service, press the pendant, and photograph the pages."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        tmp_path = Path(directory)
        url = f"sqlite+aiosqlite:///{tmp_path / 'vaki.db'}"
        engine = create_engine(url)
        await upgrade_database(engine)
        sessions = session_factory(engine)
        world = await build_world(sessions)
        await add_history(sessions, world)
        server = serve(tmp_path, url, (MOSQUITTO_HOST, MOSQUITTO_PORT))
        await asyncio.to_thread(server.start)
        pendant = MqttProbe(MOSQUITTO_HOST, MOSQUITTO_PORT, client_id=world.panic_button)
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                desktop = await browser.new_context(viewport={"width": 1280, "height": 800})
                page = await desktop.new_page()
                await sign_in(page, server.url, "helga")
                await expect(page.locator("#live-state")).to_have_class("live on")
                await asyncio.to_thread(pendant.connect)
                await asyncio.to_thread(
                    pendant.publish, f"vaki/v1/d/{world.panic_button}/event", panic_payload()
                )
                await expect(page.locator("li.alert.sev-critical")).to_have_count(1, timeout=15_000)
                await asyncio.sleep(1.5)  # the first escalation step is told
                await page.screenshot(path=str(OUT / "console-queue.png"))
                async with sessions() as session:
                    panic = (
                        await session.exec(select(alerts.Alert).where(alerts.Alert.kind == "panic"))
                    ).one()
                colleague = await browser.new_context()
                other = await colleague.new_page()
                await sign_in(other, server.url, "gudrun", f"/console/alerts/{panic.id}")
                await page.goto(f"{server.url}/console/alerts/{panic.id}")
                await expect(page.locator("#onlookers")).to_be_visible()
                await page.screenshot(path=str(OUT / "console-alert.png"), full_page=True)
                await page.goto(f"{server.url}/console/residents/{world.sigridur}?days=30")
                await page.screenshot(path=str(OUT / "console-resident.png"), full_page=True)
                phone = await browser.new_context(
                    viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
                )
                small = await phone.new_page()
                await sign_in(small, server.url, "helga")
                await expect(small.locator("#live-state")).to_have_class("live on")
                await small.screenshot(path=str(OUT / "console-phone.png"))
                await browser.close()
        except Exception:
            print((tmp_path / "serve.log").read_text()[-3000:])
            raise
        finally:
            await asyncio.to_thread(pendant.close)
            await asyncio.to_thread(server.stop)
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
