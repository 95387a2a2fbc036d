"""Technicians look after devices and technical alerts: through the API as through the
console pages, they never read or act on a resident's clinical data (issue 13, finding 4).

A technician signs in (console session) and holds an API token against the real app on a
real port; every clinical route refuses them (403), the technical ones serve them, and a
nurse of the same team still does her work.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets
from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import video
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings
from tests.security.conftest import serve, stop
from tests.web.conftest import PASSWORD, World, make_world, sign_in
from web.sessions import csrf_token_for


@dataclass
class Served:
    """The app on a real port, the test world and what the test made in it."""

    url: str
    app_channels: ChannelsPlugin
    world: World
    technician: int
    worker: int
    specialist: int
    tokens: dict[str, str]
    clinical_alert: int
    technical_alert: int
    consultation: int


async def _add_staff(
    session: AsyncSession, username: str, role: care.StaffRole, organisation: care.Organisation
) -> int:
    """A staff member with the test password; their id."""
    person = await care.add_staff_user(
        session,
        username=username,
        full_name=username.title(),
        password=PASSWORD,
        role=role,
        organisation=organisation,
    )
    assert person.id is not None
    return person.id


async def _populate(sessions: async_sessionmaker[AsyncSession], world: World) -> dict[str, Any]:
    """A technician and a home-care worker on the north team, a specialist of the hospital,
    a clinical and a technical alert of the north team, a consultation with the resident."""
    async with sessions() as session:
        municipality = await care.ensure_organisation(session, "Fjallabyggð")
        hospital = await care.ensure_organisation(session, "Heilbrigðisstofnun Norðurlands")
        technician = await _add_staff(session, "tomas", care.StaffRole.TECHNICIAN, municipality)
        worker = await _add_staff(session, "kasia", care.StaffRole.HOME_CARE_WORKER, municipality)
        specialist = await _add_staff(session, "sara", care.StaffRole.SPECIALIST, hospital)
        session.add_all(
            [
                care.TeamMembership(team_id=world.north, staff_id=technician),
                care.TeamMembership(team_id=world.north, staff_id=worker),
            ]
        )
        clinical = alerts.Alert(
            resident_id=world.resident,
            team_id=world.north,
            kind="panic",
            dedupe_key=f"resident:{world.resident}:panic",
            severity=alerts.AlertSeverity.CRITICAL,
            title="Panic button pressed",
        )
        technical = alerts.Alert(
            team_id=world.north,
            kind="device_silent",
            dedupe_key="device:scale-1:silent",
            severity=alerts.AlertSeverity.TECHNICAL,
            title="The scale has gone quiet",
        )
        consultation = video.Consultation(
            resident_id=world.resident, kind=video.ConsultationKind.SCHEDULED
        )
        session.add_all([clinical, technical, consultation])
        await session.flush()
        tokens = {
            name: await care.create_api_token(session, name) for name in ("tomas", "helga", "kasia")
        }
        await session.commit()
    return {
        "technician": technician,
        "worker": worker,
        "specialist": specialist,
        "tokens": tokens,
        "clinical_alert": clinical.id,
        "technical_alert": technical.id,
        "consultation": consultation.id,
    }


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """``create_app`` served by uvicorn in this event loop, with the embedded broker."""
    settings.video_secret = "a-test-video-secret-of-32-bytes!"
    app = create_app(settings)
    server, task, url = await serve(app)
    engine = create_engine(settings.effective_database_url)
    try:
        sessions = session_factory(engine)
        world = await make_world(sessions)
        made = await _populate(sessions, world)
        yield Served(
            url=url.removeprefix("http://"),
            app_channels=app.plugins.get(ChannelsPlugin),
            world=world,
            **made,
        )
    finally:
        await stop(server, task)
        await engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _sign_in_session(client: httpx.AsyncClient, username: str) -> None:
    """Give ``client`` a console session of ``username`` and its CSRF header, as pages send."""
    signed = await sign_in(client, username)
    assert signed.status_code == 303, signed.text
    client.headers["X-CSRF-Token"] = csrf_token_for(signed.cookies["vaki_session"])


async def _clinical_routes_refuse(client: httpx.AsyncClient, served: Served, **kw: Any) -> None:
    """Every clinical route of the API answers 403 with the role's reason as JSON."""
    resident, cid = served.world.resident, served.consultation
    settings_url = f"/api/residents/{resident}/tablet-settings"
    attempts = [
        client.post(f"/api/alerts/{served.clinical_alert}/acknowledge", **kw),
        client.post(
            f"/api/alerts/{served.clinical_alert}/resolve",
            json={"outcome": "visited, resident fine"},
            **kw,
        ),
        client.get(settings_url, **kw),
        client.put(settings_url, json={"language": "en"}, **kw),
        client.get("/api/video/waiting-room", **kw),
        client.post("/api/video/consultations", json={"resident_id": resident}, **kw),
        client.post(
            "/api/video/consultations/book",
            json={"resident_id": resident, "scheduled_at": "2030-01-02T10:00:00+00:00"},
            **kw,
        ),
        client.post(f"/api/video/consultations/{cid}/token", **kw),
        client.post(
            f"/api/video/consultations/{cid}/invite", json={"staff_id": served.specialist}, **kw
        ),
    ]
    for answer in [await attempt for attempt in attempts]:
        assert answer.status_code == 403, (answer.request.url, answer.text)
        assert answer.headers["content-type"].startswith("application/json")
        assert "a technician may not" in answer.json()["detail"]


async def test_a_technician_with_an_api_token_gets_technical_alerts_only(
    served: Served,
) -> None:
    tomas = bearer(served.tokens["tomas"])
    async with httpx.AsyncClient(base_url=f"http://{served.url}") as client:
        listed = await client.get("/api/alerts/", headers=tomas)
        assert listed.status_code == 200, listed.text
        assert [a["id"] for a in listed.json()] == [served.technical_alert]
        await _clinical_routes_refuse(client, served, headers=tomas)
        # The technical alert is theirs to handle.
        acknowledged = await client.post(
            f"/api/alerts/{served.technical_alert}/acknowledge", headers=tomas
        )
        assert acknowledged.status_code == 201, acknowledged.text
        # A nurse of the same team still sees and takes the clinical alert.
        helga = bearer(served.tokens["helga"])
        queue = await client.get("/api/alerts/", headers=helga)
        assert {a["id"] for a in queue.json()} == {served.clinical_alert, served.technical_alert}
        taken = await client.post(f"/api/alerts/{served.clinical_alert}/acknowledge", headers=helga)
        assert taken.status_code == 201, taken.text
        # Acknowledging it a second time is a state conflict, not a refusal.
        again = await client.post(f"/api/alerts/{served.clinical_alert}/acknowledge", headers=helga)
        assert again.status_code == 409, again.text


async def test_a_technician_signed_in_is_refused_the_clinical_api_but_keeps_the_devices(
    served: Served,
) -> None:
    async with httpx.AsyncClient(base_url=f"http://{served.url}") as client:
        await _sign_in_session(client, "tomas")
        listed = await client.get("/api/alerts/")
        assert [a["id"] for a in listed.json()] == [served.technical_alert]
        await _clinical_routes_refuse(client, served)
        devices_page = await client.get("/console/devices")
        assert devices_page.status_code == 200, devices_page.text
        resolved = await client.post(
            f"/api/alerts/{served.technical_alert}/resolve",
            json={"outcome": "battery replaced"},
        )
        assert resolved.status_code == 201, resolved.text


async def test_a_nurse_still_holds_calls_and_sets_the_tablet(served: Served) -> None:
    helga = bearer(served.tokens["helga"])
    resident, cid = served.world.resident, served.consultation
    async with httpx.AsyncClient(base_url=f"http://{served.url}") as client:
        read = await client.get(f"/api/residents/{resident}/tablet-settings", headers=helga)
        assert read.status_code == 200, read.text
        changed = await client.put(
            f"/api/residents/{resident}/tablet-settings", json={"language": "pl"}, headers=helga
        )
        assert changed.json()["language"] == "pl"
        assert (await client.get("/api/video/waiting-room", headers=helga)).status_code == 200
        started = await client.post(
            "/api/video/consultations", json={"resident_id": resident}, headers=helga
        )
        assert started.status_code == 201, started.text
        token = await client.post(f"/api/video/consultations/{cid}/token", headers=helga)
        assert token.status_code == 200, token.text


async def test_only_roles_that_may_invite_ask_in_a_specialist_of_another_organisation(
    served: Served,
) -> None:
    cid = served.consultation
    invite = {"staff_id": served.specialist}
    async with httpx.AsyncClient(base_url=f"http://{served.url}") as client:
        kasia = bearer(served.tokens["kasia"])
        refused = await client.post(
            f"/api/video/consultations/{cid}/invite", json=invite, headers=kasia
        )
        assert refused.status_code == 403, refused.text
        assert "invite specialist" in refused.json()["detail"]
        # A colleague of her own organisation she may ask in.
        colleague = await client.post(
            f"/api/video/consultations/{cid}/invite",
            json={"staff_id": served.world.helga},
            headers=kasia,
        )
        assert colleague.status_code == 200, colleague.text
        helga = bearer(served.tokens["helga"])
        invited = await client.post(
            f"/api/video/consultations/{cid}/invite", json=invite, headers=helga
        )
        assert invited.status_code == 200, invited.text
        assert f"staff:{served.specialist}" in [p["who"] for p in invited.json()["participants"]]


def _change(alert_id: int, severity: str, team_id: int) -> str:
    """An alert change as the alarm path publishes it on the live channel."""
    return json.dumps(
        {
            "alert_id": alert_id,
            "change": "raised",
            "severity": severity,
            "team_id": team_id,
            "title": "test",
        }
    )


async def test_a_technicians_live_stream_carries_technical_alerts_only(served: Served) -> None:
    url = f"ws://{served.url}/api/alerts/stream?token={served.tokens['tomas']}"
    north = served.world.north
    async with websockets.connect(url) as stream:
        # The subscription starts just after the handshake: publish technical probes until
        # one arrives, so the stream is known to be listening.
        heard: dict[str, Any] | None = None
        while heard is None:
            served.app_channels.publish(_change(-1, "technical", north), "alerts")
            try:
                heard = json.loads(await asyncio.wait_for(stream.recv(), 0.5))
            except TimeoutError:
                continue
        served.app_channels.publish(_change(served.clinical_alert, "critical", north), "alerts")
        served.app_channels.publish(_change(-2, "technical", north), "alerts")
        received: list[dict[str, Any]] = []
        while not received or received[-1]["alert_id"] != -2:
            received.append(json.loads(await asyncio.wait_for(stream.recv(), 10)))
        # Only technical changes came through; the critical one, published in between, did not.
        assert {r["severity"] for r in received} == {"technical"}
        assert served.clinical_alert not in [r["alert_id"] for r in received]
