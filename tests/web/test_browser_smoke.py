"""The front page and the tablet page load in a real browser without a single error."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser

from tests.conftest import ServedVaki


async def test_pages_load_without_errors(
    browser: Browser, served_vaki: ServedVaki, tmp_path: Path
) -> None:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for path in ("/", "/login", "/tablet/"):
        response = await page.goto(served_vaki.url + path)
        assert response is not None
        assert response.status == 200, path
    await page.screenshot(path=str(tmp_path / "tablet.png"))
    assert errors == []
