"""Staff set the resident's tablet language and whether it answers booked calls of the
resident's own team by itself; the tablet's home screen follows."""

from __future__ import annotations

import devices
import video
from tests.web.conftest import Console, sign_in


async def test_auto_answer_is_for_booked_calls_of_the_residents_own_team(
    console: Console,
) -> None:
    client = console.client
    world = console.world
    async with console.sessions() as session:
        tablet = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=world.resident
        )
        booked = video.Consultation(
            resident_id=world.resident,
            team_id=world.north,
            kind=video.ConsultationKind.SCHEDULED,
            status=video.ConsultationStatus.WAITING,
        )
        session.add(booked)
        await session.commit()
    key = devices.tablet_key(tablet.device.id, tablet.secret)
    headers = {"Authorization": f"Bearer {key}"}

    async def incoming() -> dict[str, object]:
        home = await client.get("/api/tablet/home", headers=headers)
        assert home.status_code == 200, home.text
        call = home.json()["incoming_call"]
        assert isinstance(call, dict)
        return call

    assert (await incoming())["auto_answer"] is False
    url = f"/api/residents/{world.resident}/tablet-settings/"
    # Another team's coordinator cannot tell the resident exists.
    assert (await sign_in(client, "olafur")).status_code == 303
    assert (await client.get(url)).status_code == 404
    client.cookies.clear()
    assert (await sign_in(client, "helga")).status_code == 303
    page = await client.get(url)
    assert page.json() == {"language": "is", "auto_answer_scheduled_calls": False}
    changed = await client.put(
        url,
        json={"language": "pl", "auto_answer_scheduled_calls": True},
        headers={"X-CSRF-Token": await csrf_of(console)},
    )
    assert changed.status_code == 200, changed.text
    call = await incoming()
    assert call["auto_answer"] is True
    home = await client.get("/api/tablet/home", headers=headers)
    assert home.json()["resident"]["language"] == "pl"

    # An on-demand call, or one opened by another team, rings without answering itself.
    async with console.sessions() as session:
        found = await session.get(video.Consultation, booked.id)
        assert found is not None
        found.team_id = world.south
        session.add(found)
        await session.commit()
    assert (await incoming())["auto_answer"] is False


async def csrf_of(console: Console) -> str:
    """The CSRF token the console's pages carry for the signed-in session."""
    page = await console.client.get("/console/")
    assert page.status_code == 200
    marker = 'name="csrf-token" content="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]
