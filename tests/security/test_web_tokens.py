"""API tokens as an attacker would use them: in the address, after expiry, after revocation,
after the staff member left; the live stream after sign-out; tokens in the logs."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import delete
from sqlmodel import col

import care
from tests.conftest import VAKI, ServedVaki
from tests.security.conftest import Served
from tests.web.conftest import PASSWORD, hidden, sign_in


async def _token(served: Served, username: str = "helga", **kwargs: object) -> str:
    async with served.sessions() as session:
        token = await care.create_api_token(session, username, "test", **kwargs)  # type: ignore[arg-type]
        await session.commit()
    return token


async def test_a_token_in_the_address_is_not_taken_on_http(served: Served) -> None:
    token = await _token(served)
    async with served.client() as client:
        in_query = await client.get("/api/alerts/", params={"token": token})
        assert in_query.status_code == 401
        bearer = await client.get("/api/alerts/", headers={"Authorization": f"Bearer {token}"})
        assert bearer.status_code == 200


async def test_expired_revoked_and_deactivated_tokens_are_refused(served: Served) -> None:
    short = await _token(served, lifetime=timedelta(days=1), now=served.clock.now)
    revoked = await _token(served)
    leaver = await _token(served, "olafur")
    async with served.sessions() as session:
        listed = await care.list_api_tokens(session, "helga")
        assert [t.state(served.clock.now) for t in listed] == ["active", "active"]
        await care.revoke_api_token(session, listed[1].id)
        await care.deactivate_staff(session, "olafur")
        await session.commit()
        assert [t.state(served.clock.now) for t in await care.list_api_tokens(session)] == [
            "active",
            "revoked",
            "revoked",
        ]
    async with served.client() as client:

        async def status(token: str) -> int:
            answer = await client.get("/api/alerts/", headers={"Authorization": f"Bearer {token}"})
            return answer.status_code

        assert await status(short) == 200
        assert await status(revoked) == 401
        assert await status(leaver) == 401
        served.clock.advance(days=1, seconds=1)
        assert await status(short) == 401
        # The staff member who left cannot sign in either.
        assert (await sign_in(client, "olafur")).status_code == 200


def _stream_url(served: Served) -> str:
    return served.url.replace("http://", "ws://") + "/api/alerts/stream"


async def _closed_with(socket: websockets.ClientConnection) -> int:
    """Wait for the server to close the stream; its close code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), timeout=30)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_the_live_stream_ends_with_its_token_or_session(served: Served) -> None:
    token = await _token(served)
    async with websockets.connect(f"{_stream_url(served)}?token={token}") as by_token:
        async with served.sessions() as session:
            await care.revoke_api_token(session, care.tokens.token_prefix(token) or "")
            await session.commit()
        assert await _closed_with(by_token) == 4401

    async with served.client() as browser:
        signed_in = await sign_in(browser, "helga")
        assert signed_in.status_code == 303
        cookie = f"vaki_session={signed_in.cookies['vaki_session']}"
        page = await browser.get("/console/")
        async with websockets.connect(
            _stream_url(served), additional_headers={"Cookie": cookie, "Origin": served.url}
        ) as by_session:
            out = await browser.post(
                "/logout", data={"csrf_token": hidden(page.text, "csrf_token")}
            )
            assert out.status_code == 303
            assert await _closed_with(by_session) == 4401


async def test_the_live_stream_ends_when_the_member_leaves_the_team(served: Served) -> None:
    token = await _token(served)
    async with websockets.connect(f"{_stream_url(served)}?token={token}") as stream:
        async with served.sessions() as session:
            await session.exec(
                delete(care.TeamMembership).where(
                    col(care.TeamMembership.staff_id) == served.world.helga
                )
            )
            await session.commit()
        assert await _closed_with(stream) == 4403


def test_tokens_never_reach_the_log(served_vaki: ServedVaki, tmp_path: Path) -> None:
    """``vaki serve``'s access log shows the stream's address with the token blanked out."""

    def vaki(*args: str) -> str:
        done = subprocess.run(  # noqa: PLW1510 (checked below)
            [VAKI, *args], env=served_vaki.env, cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    vaki(
        *["user", "add", "--username", "helga", "--full-name", "Helga", "--role", "nurse"],
        *["--organisation", "Fjallabyggð", "--password", PASSWORD],
    )
    token = vaki("token", "create", "--username", "helga").splitlines()[-1]
    secret = token.rsplit("_", 1)[1]
    ws_url = served_vaki.url.replace("http://", "ws://")

    async def attempts() -> None:
        async with websockets.connect(f"{ws_url}/api/alerts/stream?token={token}"):
            pass
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"{ws_url}/api/alerts/stream?token={token}x"):
                pass

    asyncio.run(attempts())
    httpx.get(f"{served_vaki.url}/api/alerts/?token={token}", timeout=10)
    httpx.get(f"{served_vaki.url}/api/alerts/", headers={"Authorization": f"Bearer {token}"})
    served_vaki.stop()
    log = (tmp_path / "serve.log").read_text()
    requests = [line for line in log.splitlines() if "/api/alerts" in line]
    assert any("/api/alerts/stream?token=[redacted]" in line for line in requests), requests
    # (Litestar hands the server the path without its trailing slash.)
    assert any("GET /api/alerts?token=[redacted]" in line for line in requests), requests
    assert secret not in log
