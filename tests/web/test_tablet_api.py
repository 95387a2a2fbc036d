"""Pairing a tablet over HTTP, who may make codes, the wrong-code limit, and "I need help"
raising one alert however often the tablet resends it."""

from __future__ import annotations

import re

from sqlmodel import col, select

import alerts
import devices
from tests.web.conftest import Console, hidden, sign_in


async def make_code(console: Console, username: str) -> tuple[int, str]:
    """Sign in as ``username`` and press "make a pairing code"; (status, code or "").

    A code comes with its QR code, drawn on the server."""
    client = console.client
    client.cookies.clear()
    assert (await sign_in(client, username)).status_code == 303
    path = f"/console/residents/{console.world.resident}/pair-tablet"
    page = await client.get(path)
    if page.status_code != 200:
        return page.status_code, ""
    made = await client.post(path, data={"csrf_token": hidden(page.text, "csrf_token")})
    found = re.search(r'data-code="(\d{8})"', made.text)
    assert found is None or "<svg" in made.text
    return made.status_code, found.group(1) if found else ""


async def test_a_coordinator_or_nurse_of_the_team_pairs_a_tablet_once(console: Console) -> None:
    status, code = await make_code(console, "gudrun")
    assert status == 200
    assert code
    # Without the CSRF token, no code is made.
    refused = await console.client.post(
        f"/console/residents/{console.world.resident}/pair-tablet", data={"csrf_token": "x"}
    )
    assert refused.status_code == 403
    # Another team's coordinator does not even see the resident.
    assert (await make_code(console, "olafur"))[0] == 404
    status, code = await make_code(console, "helga")
    assert status == 200

    console.client.cookies.clear()
    paired = await console.client.post("/api/tablet/pair", json={"code": code})
    assert paired.status_code == 201, paired.text
    assert paired.json()["language"] == "is"
    key = paired.json()["key"]
    again = await console.client.post("/api/tablet/pair", json={"code": code})
    assert again.status_code == 422
    home = await console.client.get("/api/tablet/home", headers={"Authorization": f"Bearer {key}"})
    assert home.status_code == 200
    assert home.json()["resident"]["name"] == "Sigríður"


async def test_guessing_codes_is_stopped(console: Console) -> None:
    for _ in range(devices.pairing.MAX_WRONG_CODES):
        wrong = await console.client.post("/api/tablet/pair", json={"code": "1234 5678"})
        assert wrong.status_code == 422
    stopped = await console.client.post("/api/tablet/pair", json={"code": "1234 5678"})
    assert stopped.status_code == 429
    assert int(stopped.headers["retry-after"]) > 0


async def test_i_need_help_raises_one_critical_alert_however_often_it_is_sent(
    console: Console,
) -> None:
    async with console.sessions() as session:
        paired = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=console.world.resident
        )
        await session.commit()
    headers = {"Authorization": f"Bearer {devices.tablet_key(paired.device.id, paired.secret)}"}
    for _ in range(2):
        sent = await console.client.post(
            "/api/tablet/help", json={"request_id": "press-0001"}, headers=headers
        )
        assert sent.status_code == 202, sent.text
    assert (
        await console.client.post("/api/tablet/help", json={"request_id": "x"})
    ).status_code in (
        400,
        401,
    )
    async with console.sessions() as session:
        events = (
            await session.exec(
                select(devices.Event).where(col(devices.Event.type) == "help_request")
            )
        ).all()
        raised = (
            await session.exec(select(alerts.Alert).where(col(alerts.Alert.kind) == "help_request"))
        ).all()
    assert len(events) == 1
    assert events[0].alarm_handled_at is not None
    assert [(a.resident_id, a.severity) for a in raised] == [(console.world.resident, "critical")]
