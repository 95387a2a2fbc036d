"""Who viewed a resident's data: logged on every read, shown to the team's coordinator."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

import care
from tests.web.conftest import Console, set_session, sign_in


async def test_a_coordinator_sees_who_viewed_the_resident_and_the_viewing_is_logged(
    console: Console,
) -> None:
    client, world = console.client, console.world
    now = console.clock.now
    async with console.sessions() as session:
        await care.log_access(
            session,
            staff_id=world.helga,
            organisation_id=1,
            resident_id=world.resident,
            action="readings.read",
            context="blood pressure chart, alert 12",
            at=now - timedelta(days=3),
        )
        await care.log_access(
            session,
            staff_id=world.helga,
            organisation_id=1,
            resident_id=world.resident,
            action="profile.read",
            at=now - timedelta(days=40),
        )
        await session.commit()
    url = f"/api/residents/{world.resident}/access-log"

    set_session(client, (await sign_in(client, "gudrun")).cookies["vaki_session"])
    since = (now - timedelta(days=7)).isoformat()
    month = await client.get(url, params={"from": since})
    assert month.status_code == 200, month.text
    body = month.json()
    assert body["resident_id"] == world.resident
    assert [(e["action"], e["staff_name"]) for e in body["entries"]] == [
        ("readings.read", "Helga B."),
        ("access_log.read", "Guðrún A."),  # this very reading
    ]
    assert body["entries"][0]["organisation"] == "Fjallabyggð"
    assert body["entries"][0]["context"] == "blood pressure chart, alert 12"

    # A closed period shows only what happened in it.
    old = await client.get(
        url,
        params={
            "from": (now - timedelta(days=60)).isoformat(),
            "to": (now - timedelta(days=30)).isoformat(),
        },
    )
    assert [e["action"] for e in old.json()["entries"]] == ["profile.read"]
    eight_days_ago = (now - timedelta(days=8)).isoformat()
    backwards = await client.get(url, params={"from": since, "to": eight_days_ago})
    assert backwards.status_code == 400

    # A nurse of the team may not; a coordinator of another team does not see the resident.
    set_session(client, (await sign_in(client, "helga")).cookies["vaki_session"])
    assert (await client.get(url)).status_code == 403
    set_session(client, (await sign_in(client, "olafur")).cookies["vaki_session"])
    assert (await client.get(url)).status_code == 404
    assert (await client.get("/api/residents/999/access-log")).status_code == 404

    # Only the successful reads were logged, each once, with who and from where.
    async with console.sessions() as session:
        reads = (
            await session.exec(
                select(care.AccessLogEntry).where(care.AccessLogEntry.action == "access_log.read")
            )
        ).all()
    assert len(reads) == 2
    assert {r.staff_id for r in reads} == {world.gudrun}
    assert all(r.resident_id == world.resident for r in reads)
