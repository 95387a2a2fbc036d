"""Booked video calls: staff book a time, the tablet reminds the resident ten minutes before
and rings at the time, and staff see who is waiting."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

import care
import devices
import video
from tests.web.conftest import Console, hidden, sign_in


async def test_a_booked_call_reminds_rings_and_waits_for_staff(console: Console) -> None:
    client = console.client
    world = console.world
    async with console.sessions() as session:
        tablet = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=world.resident
        )
        await session.commit()
    tablet_headers = {
        "Authorization": f"Bearer {devices.tablet_key(tablet.device.id, tablet.secret)}"
    }
    assert (await sign_in(client, "helga")).status_code == 303
    page = await client.get("/console/waiting-room")
    assert page.status_code == 200
    # Helga's console speaks Icelandic: "Nobody is waiting for a video call."
    assert "Enginn bíður eftir myndsímtali." in page.text
    csrf = {"X-CSRF-Token": hidden(page.text, "csrf_token")}

    now = care.utcnow()
    past = await client.post(
        "/api/video/consultations/book",
        json={
            "resident_id": world.resident,
            "scheduled_at": (now - timedelta(hours=1)).isoformat(),
        },
        headers=csrf,
    )
    assert past.status_code == 422
    assert "the time has already passed" in past.text
    booked = await client.post(
        "/api/video/consultations/book",
        json={
            "resident_id": world.resident,
            "scheduled_at": (now + timedelta(minutes=5)).isoformat(),
        },
        headers=csrf,
    )
    assert booked.status_code == 201, booked.text
    consultation_id = booked.json()["id"]
    assert booked.json()["status"] == "booked"

    # Five minutes before: a reminder on the tablet, no ringing yet; staff see it coming.
    home = (await client.get("/api/tablet/home", headers=tablet_headers)).json()
    assert home["starting_soon"]["id"] == consultation_id
    assert home["incoming_call"] is None
    waiting = (await client.get("/api/video/waiting-room")).json()["calls"]
    assert [c["id"] for c in waiting] == [consultation_id]

    # At the time it rings, and the resident's own team's booked call may answer itself.
    async with console.sessions() as session:
        row = await session.get(video.Consultation, consultation_id)
        assert row is not None
        row.scheduled_at = care.utcnow() - timedelta(minutes=1)
        session.add(row)
        await session.commit()
    home = (await client.get("/api/tablet/home", headers=tablet_headers)).json()
    assert home["incoming_call"]["id"] == consultation_id
    assert home["incoming_call"]["auto_answer"] is False
    page = await client.get("/console/waiting-room")
    assert "Á að hefjast núna" in page.text  # "Due now"
    assert f'href="/console/calls/{consultation_id}"' in page.text

    # The other municipality's coordinator sees nobody waiting.
    client.cookies.clear()
    assert (await sign_in(client, "olafur")).status_code == 303
    assert (await client.get("/api/video/waiting-room")).json()["calls"] == []


def booking(resident_id: int, at: datetime) -> dict[str, object]:
    return {"resident_id": resident_id, "scheduled_at": at.isoformat()}


async def test_booking_in_the_console_form_says_what_is_wrong(console: Console) -> None:
    client = console.client
    assert (await sign_in(client, "helga")).status_code == 303
    page = await client.get("/console/waiting-room")
    token = hidden(page.text, "csrf_token")
    bad = await client.post(
        "/console/waiting-room/book",
        data={
            "csrf_token": token,
            "resident_id": str(console.world.resident),
            "date": "",
            "time": "",
        },
    )
    assert bad.status_code == 400
    assert "Veldu íbúa, dagsetningu og tíma." in bad.text  # "Choose a resident, a date and a time."
    tomorrow = (care.utcnow() + timedelta(days=1)).date().isoformat()
    good = await client.post(
        "/console/waiting-room/book",
        data={
            "csrf_token": token,
            "resident_id": str(console.world.resident),
            "date": tomorrow,
            "time": "10:30",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303, good.text
    async with console.sessions() as session:
        rows = (await session.exec(select(video.Consultation))).all()
    assert [(r.kind, r.status, r.team_id) for r in rows] == [
        ("scheduled", "booked", console.world.north)
    ]
