"""Console sessions: rotated at sign-in, ended at sign-out, idle and absolute timeouts."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from sqlmodel import select

import care
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings
from tests.web.conftest import Console, hidden, make_world, set_session, sign_in


async def test_sign_in_rotates_the_session_and_sign_out_ends_it_in_the_database(
    console: Console,
) -> None:
    client = console.client
    # A session id planted before sign-in (session fixation) is not the one after.
    set_session(client, "planted-by-someone-else")
    signed_in = await sign_in(client, "helga")
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/console/"
    first = signed_in.cookies["vaki_session"]
    assert first != "planted-by-someone-else"
    cookie = next(c for c in signed_in.headers.get_list("set-cookie") if "vaki_session=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # the public URL is not https here
    set_session(client, first)

    page = await client.get("/console/")
    assert page.status_code == 200
    assert "Helga B." in page.text
    assert page.headers["cache-control"] == "no-store"

    # The database holds a hash of the id, never the id.
    async with console.sessions() as session:
        rows = (await session.exec(select(care.StaffSession))).all()
    assert len(rows) == 1
    assert rows[0].id_hash != first
    assert rows[0].staff_id == console.world.helga

    # Signing in again from the same browser replaces the session: the old id is dead.
    again = await sign_in(client, "helga")
    second = again.cookies["vaki_session"]
    assert second != first
    set_session(client, first)
    refused = await client.get("/console/", follow_redirects=False)
    assert refused.status_code in (302, 303, 307)
    assert refused.headers["location"].startswith("/login")

    # Sign-out is a POST with the session's CSRF token; it deletes the row.
    set_session(client, second)
    page = await client.get("/console/")
    token = hidden(page.text, "csrf_token")
    out = await client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    async with console.sessions() as session:
        assert (await session.exec(select(care.StaffSession))).all() == []
    # A copy of the cookie kept by someone does not bring the session back.
    set_session(client, second)
    after = await client.get("/console/", follow_redirects=False)
    assert after.headers["location"].startswith("/login")
    api = await client.get("/api/alerts/")
    assert api.status_code == 401


async def test_idle_timeout_and_absolute_timeout(console: Console) -> None:
    client, clock = console.client, console.clock
    set_session(client, (await sign_in(client, "helga")).cookies["vaki_session"])
    # 29 idle minutes are fine (default idle timeout: 30), and each visit counts as use.
    clock.advance(minutes=29)
    assert (await client.get("/console/")).status_code == 200
    clock.advance(minutes=29)
    assert (await client.get("/console/")).status_code == 200
    # 31 idle minutes end it.
    clock.advance(minutes=31)
    ended = await client.get("/console/", follow_redirects=False)
    assert ended.headers["location"].startswith("/login?next=/console")

    # A busy session still ends 12 hours after sign-in.
    set_session(client, (await sign_in(client, "helga")).cookies["vaki_session"])
    for _ in range(11 * 3 + 2):  # every 20 minutes for 11 h 40 min
        clock.advance(minutes=20)
        assert (await client.get("/console/")).status_code == 200
    clock.advance(minutes=20)
    ended = await client.get("/console/", follow_redirects=False)
    assert ended.status_code in (302, 303, 307)
    async with console.sessions() as session:
        assert (await session.exec(select(care.StaffSession))).all() == []


async def test_a_session_works_on_every_instance(settings: Settings, postgres_url: str) -> None:
    """Two instances on one PostgreSQL: signed in on one, known to the other, and signed
    out on the other, gone from the first."""
    settings.database_url = postgres_url
    other = settings.model_copy(update={"mqtt_client_id": f"{settings.mqtt_client_id}-b"})
    engine = create_engine(postgres_url)
    try:
        async with (
            AsyncTestClient(app=create_app(settings)) as first,
            AsyncTestClient(app=create_app(other)) as second,
        ):
            await make_world(session_factory(engine))
            session_id = (await sign_in(first, "helga")).cookies["vaki_session"]
            set_session(first, session_id)
            set_session(second, session_id)
            page = await second.get("/console/")
            assert page.status_code == 200
            token = hidden(page.text, "csrf_token")
            out = await second.post("/logout", data={"csrf_token": token}, follow_redirects=False)
            assert out.status_code == 303
            gone = await first.get("/console/", follow_redirects=False)
            assert gone.headers["location"].startswith("/login")
    finally:
        await engine.dispose()
