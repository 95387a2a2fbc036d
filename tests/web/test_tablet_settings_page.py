"""Staff set the resident's tablet language and call answering on the resident's page; the
tablet follows, and a home-care worker sees no form to change them."""

from __future__ import annotations

import care
import devices
from tests.web.conftest import Console, hidden, sign_in


async def test_a_nurse_sets_the_tablets_language_on_the_residents_page(console: Console) -> None:
    client = console.client
    world = console.world
    async with console.sessions() as session:
        tablet = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=world.resident
        )
        await session.commit()
    headers = {"Authorization": f"Bearer {devices.tablet_key(tablet.device.id, tablet.secret)}"}
    page_url = f"/console/residents/{world.resident}"

    assert (await sign_in(client, "helga")).status_code == 303
    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    assert 'id="tablet-language"' in page.text
    assert f'href="/console/residents/{world.resident}/pair-tablet"' in page.text
    saved = await client.post(
        f"{page_url}/tablet-settings",
        data={"csrf_token": hidden(page.text, "csrf_token"), "language": "sv", "auto_answer": "1"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{page_url}?notice=tablet_saved"
    shown = await client.get(saved.headers["location"])
    assert '<option value="sv" lang="sv" selected>' in shown.text
    assert 'id="tablet-auto-answer" name="auto_answer" value="1" checked' in shown.text
    home = await client.get("/api/tablet/home", headers=headers)
    assert home.json()["resident"]["language"] == "sv"
    async with console.sessions() as session:
        resident = await session.get(care.Resident, world.resident)
        assert resident is not None
        assert resident.auto_answer_scheduled_calls is True

    # Without the session's CSRF token nothing changes; a language the tablet lacks is refused.
    refused = await client.post(
        f"{page_url}/tablet-settings", data={"language": "pl"}, follow_redirects=False
    )
    assert refused.status_code == 403
    wrong = await client.post(
        f"{page_url}/tablet-settings",
        data={"csrf_token": hidden(shown.text, "csrf_token"), "language": "de"},
        follow_redirects=False,
    )
    assert wrong.status_code == 400
    home = await client.get("/api/tablet/home", headers=headers)
    assert home.json()["resident"]["language"] == "sv"


async def test_a_home_care_worker_cannot_change_the_tablet(console: Console) -> None:
    client = console.client
    world = console.world
    async with console.sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        worker = await care.add_staff_user(
            session,
            username="kasia",
            full_name="Katarzyna N.",
            password="correct horse 1",
            role=care.StaffRole.HOME_CARE_WORKER,
            organisation=org,
        )
        assert worker.id is not None
        session.add(care.TeamMembership(team_id=world.north, staff_id=worker.id))
        await session.commit()
    assert (await sign_in(client, "kasia")).status_code == 303
    page_url = f"/console/residents/{world.resident}"
    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    assert 'id="tablet-language"' not in page.text
    refused = await client.post(
        f"{page_url}/tablet-settings",
        data={"csrf_token": hidden(page.text, "csrf_token"), "language": "en"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
