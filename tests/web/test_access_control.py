"""Every route is closed to anonymous callers unless listed as public; CSRF; bearer tokens."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.routes import ASGIRoute, HTTPRoute, WebSocketRoute
from litestar.testing import AsyncTestClient

import care
from server.app import create_app
from server.db import create_engine, session_factory
from server.settings import Settings
from tests.web.conftest import PASSWORD, Console, hidden, make_world, set_session, sign_in

# Reachable without signing in, each for a reason: signing in itself, probes for the
# orchestrator, the API description, static files, the front page that says what this
# is, and the resident's tablet (it proves itself with its device key, not as staff).
# A FHIR client reads the CapabilityStatement before it authenticates (it names no resident).
PUBLIC = ("/login", "/healthz", "/readyz", "/metrics", "/schema", "/static", "/fhir/metadata", "/")
TABLET = ("/tablet", "/api/tablet")


def _public(path: str) -> bool:
    if path in PUBLIC:
        return True
    return any(path.startswith(f"{p}/") for p in (*PUBLIC[:-1], *TABLET)) or path in TABLET


def _concrete(route: HTTPRoute | WebSocketRoute | ASGIRoute) -> str:
    """The route's path with every parameter filled in."""
    path = route.path_format
    for parameter in route.path_parameters.values():
        value = "1" if parameter.type is int else "x"
        path = path.replace(f"{{{parameter.name}}}", value)
    return path


def _routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(kind, method, path) for every route of the app."""
    found: list[tuple[str, str, str]] = []
    for route in app.routes:
        path = _concrete(route)
        if isinstance(route, HTTPRoute):
            found.extend(("http", method, path) for method in sorted(route.methods))
        elif isinstance(route, WebSocketRoute):
            found.append(("websocket", "GET", path))
        else:
            found.append(("asgi", "GET", path))
    return found


async def test_every_route_refuses_an_anonymous_caller(settings: Settings) -> None:
    app = create_app(settings)
    routes = _routes(app)
    closed = [r for r in routes if not _public(r[2])]
    assert len(closed) >= 8, routes  # the check checks something
    async with AsyncTestClient(app=app) as client:
        for kind, method, path in closed:
            if kind == "websocket":
                handshake = await client.websocket_connect(path)
                with pytest.raises(WebSocketDisconnect) as refused, handshake:
                    pass
                assert refused.value.code in (4401, 4403), (path, refused.value)
                continue
            if method == "OPTIONS":
                continue  # Litestar answers it itself: the allowed methods, no data
            response = await client.request(method, path, follow_redirects=False)
            if response.status_code in (302, 303, 307):
                assert response.headers["location"].startswith("/login"), (method, path)
            else:
                assert response.status_code in (401, 403), (method, path, response.text)


async def test_public_routes_answer_without_signing_in(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        for path in ("/", "/login", "/healthz", "/static/base.css", "/schema/openapi.json"):
            assert (await client.get(path)).status_code == 200, path


async def test_a_change_with_the_session_cookie_needs_the_csrf_token(console: Console) -> None:
    client = console.client
    set_session(client, (await sign_in(client, "gudrun")).cookies["vaki_session"])
    token = hidden((await client.get("/console/")).text, "csrf_token")
    url = "/api/alerts/999/acknowledge"
    assert (await client.post(url)).status_code == 403
    assert (await client.post(url, headers={"X-CSRF-Token": "0" * 64})).status_code == 403
    # With the token the request gets through to the handler (there is no alert 999).
    passed = await client.post(url, headers={"X-CSRF-Token": token})
    assert passed.status_code == 404, passed.text
    # Reading needs no token.
    assert (await client.get("/api/alerts/")).status_code == 200
    # Sign-out is a change too.
    assert (await client.post("/logout", follow_redirects=False)).status_code == 403
    out = await client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303


async def test_the_live_stream_opens_with_the_cookie_only_from_the_console(
    console: Console,
) -> None:
    client = console.client
    set_session(client, (await sign_in(client, "gudrun")).cookies["vaki_session"])
    handshake = await client.websocket_connect(
        "/api/alerts/stream", headers={"Origin": "https://evil.example"}
    )
    with pytest.raises(WebSocketDisconnect) as refused, handshake:
        pass
    assert refused.value.code == 4403


async def test_bearer_tokens_still_work_without_a_csrf_token(console: Console) -> None:
    client = console.client
    async with console.sessions() as session:
        token = await care.create_api_token(session, "gudrun", "wall display")
        await session.commit()
    bearer = {"Authorization": f"Bearer {token}"}
    listed = await client.get("/api/alerts/", headers=bearer)
    assert listed.status_code == 200, listed.text
    assert listed.json() == []
    acted = await client.post("/api/alerts/999/acknowledge", headers=bearer)
    assert acted.status_code == 404
    forged = await client.get("/api/alerts/", headers={"Authorization": "Bearer vaki_x_y"})
    assert forged.status_code == 401


async def test_cookies_are_secure_over_https(settings: Settings, sqlite_url: str) -> None:
    """Behind https the session cookie is Secure and takes the __Host- prefix."""
    settings.public_url = "https://vaki.example.is"
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
        engine = create_engine(sqlite_url)
        try:
            await make_world(session_factory(engine))
        finally:
            await engine.dispose()
        form = await client.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        signed_in = await client.post(
            "/login",
            data={
                "form_token": hidden(form.text, "form_token"),
                "username": "helga",
                "password": PASSWORD,
            },
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        cookie = next(
            c for c in signed_in.headers.get_list("set-cookie") if c.startswith("__Host-")
        )
        assert cookie.startswith("__Host-vaki_session=")
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert "Path=/" in cookie
        assert "Domain" not in cookie
        assert (await client.get("/console/")).status_code == 200
