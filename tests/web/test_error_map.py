"""One map from domain errors to HTTP (web.error_responses, registered in create_app): each
domain's errors raised through real routes come out with the status their meaning says, as
JSON for the API and as a page in the staff member's language, with a way back, for people."""

from __future__ import annotations

from datetime import timedelta

import httpx

import alerts
import care
import video
from tests.web.conftest import Console, set_session, sign_in


async def _tokens(console: Console) -> dict[str, dict[str, str]]:
    """Bearer headers of the test world's staff."""
    async with console.sessions() as session:
        tokens = {
            name: {"Authorization": f"Bearer {await care.create_api_token(session, name)}"}
            for name in ("gudrun", "helga", "olafur")
        }
        await session.commit()
    return tokens


def _json_error(answer: httpx.Response, status: int, detail: str) -> None:
    """The API's error body: the status and the domain's own words."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["status_code"] == status
    assert detail in body["detail"], body


async def test_care_errors(console: Console) -> None:
    client, world = console.client, console.world
    tokens = await _tokens(console)
    missing = await client.get("/api/residents/999/tablet-settings", headers=tokens["helga"])
    _json_error(missing, 404, "no resident 999")
    refused = await client.get(
        f"/api/residents/{world.resident}/access-log", headers=tokens["helga"]
    )
    _json_error(refused, 403, "a nurse may not read access log")
    # A console page: the same error as a page in Helga's language (Icelandic), with a way back.
    set_session(client, (await sign_in(client, "helga")).cookies["vaki_session"])
    page = await client.get("/console/residents/999")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Fannst ekki" in page.text  # "Not found"
    assert 'href="/console/"' in page.text
    assert page.headers["x-frame-options"] == "DENY"


async def test_alerts_errors(console: Console) -> None:
    client, world = console.client, console.world
    tokens = await _tokens(console)
    async with console.sessions() as session:
        alert = alerts.Alert(
            resident_id=world.resident,
            team_id=world.north,
            kind="panic",
            dedupe_key=f"resident:{world.resident}:panic",
            severity=alerts.AlertSeverity.CRITICAL,
            title="Panic button pressed",
        )
        session.add(alert)
        await session.commit()
    _json_error(
        await client.post("/api/alerts/999999/acknowledge", headers=tokens["helga"]),
        404,
        "no alert 999999",
    )
    url = f"/api/alerts/{alert.id}/acknowledge"
    assert (await client.post(url, headers=tokens["helga"])).status_code == 201
    _json_error(await client.post(url, headers=tokens["helga"]), 409, "not open")
    plan = {"kind": "wellbeing", "title": "", "times": ["09:00"]}
    invalid = await client.post(
        f"/api/residents/{world.resident}/checkin-plans", json=plan, headers=tokens["helga"]
    )
    _json_error(invalid, 422, "title")
    assert invalid.json()["extra"]["problems"] == ["Give the plan a title the resident will see"]


async def test_devices_errors(console: Console) -> None:
    wrong = await console.client.post("/api/tablet/pair", json={"code": "0000 0000"})
    _json_error(wrong, 422, "")
    assert wrong.headers["cache-control"] == "no-store"


async def test_video_errors(console: Console) -> None:
    client, world = console.client, console.world
    tokens = await _tokens(console)
    async with console.sessions() as session:
        consultation = video.Consultation(
            resident_id=world.resident, kind=video.ConsultationKind.SCHEDULED
        )
        session.add(consultation)
        await session.commit()
    token_url = f"/api/video/consultations/{consultation.id}/token"
    _json_error(await client.post(token_url, headers=tokens["olafur"]), 403, "not a participant")
    _json_error(
        await client.get("/api/video/device-test/nothing", headers=tokens["helga"]),
        404,
        "no such device test",
    )
    past = {
        "resident_id": world.resident,
        "scheduled_at": (care.utcnow() - timedelta(hours=2)).isoformat(),
    }
    booked = await client.post("/api/video/consultations/book", json=past, headers=tokens["helga"])
    _json_error(booked, 422, "the time has already passed")
    # The call page of a call Ólafur has no part in: not found, as a page in his language.
    set_session(client, (await sign_in(client, "olafur")).cookies["vaki_session"])
    page = await client.get(f"/console/calls/{consultation.id}")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Þessi síða er ekki til" in page.text  # "This page does not exist"
