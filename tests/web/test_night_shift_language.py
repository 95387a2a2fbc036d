"""The language a nurse picks, on the sign-in page or in the console, stays with her."""

from __future__ import annotations

import care
from tests.web.conftest import PASSWORD, Console, hidden


async def language_of(console: Console, staff_id: int) -> str:
    async with console.sessions() as session:
        staff = await session.get(care.StaffUser, staff_id)
        assert staff is not None
        return staff.language


async def test_the_sign_in_pages_choice_and_the_console_switch_are_remembered(
    console: Console,
) -> None:
    client = console.client
    helga = console.world.helga
    async with console.sessions() as session:
        staff = await session.get(care.StaffUser, helga)
        assert staff is not None
        staff.language = "en"
        session.add(staff)
        await session.commit()
    # The browser says English, but she picks Polish on the sign-in page.
    form = await client.get("/login?lang=pl", headers={"Accept-Language": "en-GB"})
    assert 'name="keep_lang"' in form.text
    signed_in = await client.post(
        "/login",
        data={
            "form_token": hidden(form.text, "form_token"),
            "next": "/console/",
            "lang": "pl",
            "keep_lang": "1",
            "username": "helga",
            "password": PASSWORD,
            "code": "",
        },
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    assert await language_of(console, helga) == "pl"
    queue = await client.get("/console/residents")
    assert 'lang="pl"' in queue.text
    # In the console she switches to Swedish: every page from then on, and after signing in
    # again with nothing picked.
    switched = await client.post(
        "/console/language",
        data={
            "csrf_token": hidden(queue.text, "csrf_token"),
            "language": "sv",
            "next": "/console/residents",
        },
        follow_redirects=False,
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/console/residents"
    assert await language_of(console, helga) == "sv"
    page = await client.get("/console/residents")
    assert '<html lang="sv">' in page.text
    assert "Byt språk" in page.text
    # A language we do not speak changes nothing.
    await client.post(
        "/console/language",
        data={"csrf_token": hidden(page.text, "csrf_token"), "language": "xx"},
    )
    assert await language_of(console, helga) == "sv"
    # The plain sign-in page (no choice made) does not overwrite it.
    form = await client.get("/login", headers={"Accept-Language": "en-GB"})
    assert 'name="keep_lang"' not in form.text
