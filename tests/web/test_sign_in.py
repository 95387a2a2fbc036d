"""Signing in: one message for every wrong answer, rate limits, and the one-time code."""

from __future__ import annotations

import base64
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from sqlmodel import select

import care
from care.totp import open_totp_secret, totp_key
from tests.web.conftest import PASSWORD, Console, hidden, set_session, sign_in

WRONG = "Wrong username or password."


@pytest.fixture(autouse=True)
def in_english(request: pytest.FixtureRequest) -> None:
    """The sign-in page speaks the browser's language; these browsers ask for English."""
    if "console" in request.fixturenames:
        request.getfixturevalue("console").client.headers["Accept-Language"] = "en"


def _without_tokens(page: str) -> str:
    """The page with its random form token and the username typed blanked, to compare."""
    return re.sub(r'name="(form_token|username)" (type="text" )?value="[^"]*"', "", page)


async def test_wrong_username_and_wrong_password_read_the_same(console: Console) -> None:
    client = console.client
    unknown = await sign_in(client, "nobody", PASSWORD)
    wrong = await sign_in(client, "nobody", "guess")
    assert unknown.status_code == wrong.status_code == 200
    assert WRONG in unknown.text
    wrong_password = await sign_in(client, "helga", "guess")
    assert _without_tokens(wrong_password.text) == _without_tokens(unknown.text)
    assert "vaki_session" not in wrong_password.cookies


async def test_a_sign_in_needs_the_form_it_was_given(console: Console) -> None:
    """A sign-in posted from another site (login CSRF) lacks the form token: refused."""
    forged = await console.client.post(
        "/login",
        data={"username": "helga", "password": PASSWORD, "form_token": "x"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "vaki_session" not in forged.cookies


async def test_a_username_is_locked_after_repeated_failures(console: Console) -> None:
    client, clock = console.client, console.clock
    for _ in range(5):
        refused = await sign_in(client, "helga", "guess")
        assert refused.status_code == 200
        assert WRONG in refused.text
    # Now even the right password is refused, with a plain message and no server error.
    locked = await sign_in(client, "helga", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert locked.headers["retry-after"] == "900"
    assert "vaki_session" not in locked.cookies
    # Other staff are not locked out by Helga's lock.
    assert (await sign_in(client, "gudrun")).status_code == 303
    # After the window, Helga gets in.
    clock.advance(minutes=16)
    assert (await sign_in(client, "helga")).status_code == 303
    # A success clears her count: four fresh typos do not lock her.
    for _ in range(4):
        await sign_in(client, "helga", "guess")
    assert (await sign_in(client, "helga")).status_code == 303


async def test_an_address_is_locked_after_failures_on_many_usernames(console: Console) -> None:
    client = console.client
    async with console.sessions() as session:
        session.add_all(
            care.LoginAttempt(
                at=console.clock.now, username=f"user{n}", client_address="testclient"
            )
            for n in range(50)
        )
        await session.commit()
    locked = await sign_in(client, "gudrun")
    assert locked.status_code == 429
    async with console.sessions() as session:
        attempts = (await session.exec(select(care.LoginAttempt))).all()
    assert len(attempts) == 50  # a refused-while-locked try is not counted


async def test_a_one_time_code_is_required_once_enrolled(console: Console) -> None:
    client, clock = console.client, console.clock
    async with console.sessions() as session:
        uri = await care.enrol_totp(session, "helga")
        await session.commit()
    assert uri.startswith("otpauth://totp/Vaki:helga?")
    totp = pyotp.TOTP(pyotp.parse_uri(uri).secret)

    missing = await sign_in(client, "helga")
    assert missing.status_code == 200
    assert WRONG in missing.text
    wrong = await sign_in(client, "helga", code="000000" if totp.at(clock.now) != "000000" else "1")
    assert WRONG in wrong.text
    code = totp.at(clock.now)
    # A right code with a wrong password is no way in either.
    assert WRONG in (await sign_in(client, "helga", "guess", code=code)).text
    assert (await sign_in(client, "helga", code=f"{code[:3]} {code[3:]}")).status_code == 303
    # The same code cannot be used twice, even within its 30 seconds.
    assert WRONG in (await sign_in(client, "helga", code=code)).text
    # The next code works.
    clock.advance(seconds=30)
    assert (await sign_in(client, "helga", code=totp.at(clock.now))).status_code == 303
    # Staff without an authenticator app are not asked for a code.
    assert (await sign_in(client, "gudrun")).status_code == 303


def test_vaki_user_totp_prints_the_uri_once(tmp_path: Path) -> None:
    """`vaki user totp NAME` enrols the app: the URI on stdout, the secret in the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAKI_")}
    env["VAKI_DATA_DIR"] = str(tmp_path)
    vaki = str(Path(sys.executable).parent / "vaki")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: PLW1510 (checked below)
            [vaki, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    added = run(
        *["user", "add", "--username", "helga", "--full-name", "Helga", "--role", "nurse"],
        "--organisation",
        "Fjallabyggð",
        "--password",
        PASSWORD,
    )
    assert added.returncode == 0, added.stderr
    enrolled = run("user", "totp", "helga")
    assert enrolled.returncode == 0, enrolled.stderr
    uri = enrolled.stdout.strip()
    assert uri.startswith("otpauth://totp/Vaki:helga?")
    assert "not shown again" in enrolled.stderr
    with sqlite3.connect(tmp_path / "vaki.db") as db:
        (stored,) = db.execute("SELECT totp_secret FROM staff_user").fetchone()
        (master,) = db.execute("SELECT value FROM instance_secret").fetchone()
    # Stored encrypted, never in clear; the instance secret opens it.
    secret = pyotp.parse_uri(uri).secret
    assert secret not in stored
    key = totp_key(base64.urlsafe_b64decode(master))
    assert open_totp_secret(key, stored) == secret
    unknown = run("user", "totp", "nobody")
    assert unknown.returncode != 0
    assert "nobody" in unknown.stderr


async def test_a_coordinator_unlocks_a_colleague_on_the_staff_page(console: Console) -> None:
    client = console.client
    for _ in range(5):
        await sign_in(client, "helga", "guess")
    assert (await sign_in(client, "helga")).status_code == 429
    # Gudrun coordinates Helga's team.
    set_session(client, (await sign_in(client, "gudrun")).cookies["vaki_session"])
    page = await client.get("/console/staff")
    assert page.status_code == 200
    assert "Helga B." in page.text
    assert "Læst til" in page.text  # "Locked until", in Guðrún's Icelandic
    assert "Ólafur C." not in page.text  # another team's staff are not listed
    csrf = hidden(page.text, "csrf_token")
    unlocked = await client.post(
        f"/console/staff/{console.world.helga}/unlock",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert unlocked.status_code == 303
    assert "unlocked" in unlocked.headers["location"]
    assert "Getur skráð sig inn" in (await client.get("/console/staff")).text
    helga = await sign_in(client, "helga")
    assert helga.status_code == 303
    # Helga, a nurse, may not manage staff; another team's coordinator cannot reach her.
    set_session(client, helga.cookies["vaki_session"])
    assert (await client.get("/console/staff")).status_code == 403
    set_session(client, (await sign_in(client, "olafur")).cookies["vaki_session"])
    olafur_page = await client.get("/console/staff")
    refused = await client.post(
        f"/console/staff/{console.world.helga}/deactivate",
        data={"csrf_token": hidden(olafur_page.text, "csrf_token")},
        follow_redirects=False,
    )
    assert refused.status_code == 404


async def test_deactivating_ends_the_sessions_and_tokens(console: Console) -> None:
    client = console.client
    async with console.sessions() as session:
        token = await care.create_api_token(session, "helga")
        await session.commit()
    helga_session = (await sign_in(client, "helga")).cookies["vaki_session"]
    set_session(client, (await sign_in(client, "gudrun")).cookies["vaki_session"])
    csrf = hidden((await client.get("/console/staff")).text, "csrf_token")
    done = await client.post(
        f"/console/staff/{console.world.helga}/deactivate",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "Óvirkur" in (await client.get("/console/staff")).text
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/alerts/", headers=bearer)).status_code == 401
    set_session(client, helga_session)
    signed_out = await client.get("/console/", follow_redirects=False)
    assert signed_out.headers["location"].startswith("/login")
    assert WRONG in (await sign_in(client, "helga")).text
