"""Who is calling: a staff member with a console session or an API token, and what they see.

Every route needs a signed-in staff member unless it is on the short public list
(``require_staff`` is the app's guard), so a new route is closed until opened on purpose.
A change made with the session cookie must carry the session's CSRF token; a WebSocket
opened with the cookie must come from the console's own origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    WebSocketException,
)
from litestar.exceptions.responses import create_exception_response
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect, Response
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from web.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    AccessPolicy,
    SessionService,
    StaffAccess,
    csrf_token_for,
    csrf_token_matches,
)

# The app keeps its StaffAccess in its state under this key (server/app.py puts it there).
ACCESS_STATE_KEY = "staff_access"
# Open to anyone: sign-in, probes, the API description, static files, and the resident's
# tablet (which proves itself with its device key, not as staff).
PUBLIC_PATHS = frozenset({"/", "/login", "/healthz", "/readyz", "/metrics"})
PUBLIC_PREFIXES = ("/static/", "/schema", "/tablet/", "/api/tablet/")
# The only route that takes an API token as ``?token=``: the live alert stream's WebSocket.
TOKEN_QUERY_PATHS = frozenset({"/api/alerts/stream"})
# A handler may also declare itself public with ``opt={"public": True}``.
PUBLIC_OPT = "public"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_IDENTITY_KEY = "vaki_staff_identity"
_CSRF_TOKEN_KEY = "vaki_csrf_token"  # noqa: S105 (a state key, not a secret)


@dataclass(frozen=True)
class StaffIdentity:
    """The staff member behind a request and the care teams they may see."""

    staff_id: int
    username: str
    organisation_id: int
    role: str
    language: str
    team_ids: frozenset[int]
    full_name: str = ""
    time_zone: str = "Atlantic/Reykjavik"

    @property
    def actor(self) -> care.Actor:
        """This staff member as the domain services take them."""
        return care.Actor(
            staff_id=self.staff_id,
            organisation_id=self.organisation_id,
            role=self.role,
            team_ids=self.team_ids,
        )


def is_public(path: str) -> bool:
    """True for the paths anyone may reach without signing in."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or path == "/tablet"


def staff_access_of(connection: ASGIConnection[Any, Any, Any, Any]) -> StaffAccess:
    """The app's StaffAccess (sign-in policy and database)."""
    access = connection.app.state.get(ACCESS_STATE_KEY)
    if not isinstance(access, StaffAccess):
        raise RuntimeError(f"the app has no {ACCESS_STATE_KEY!r} in its state")
    return access


def _policy_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessPolicy:
    """The app's access policy, or the defaults for an app assembled without one."""
    access = connection.app.state.get(ACCESS_STATE_KEY)
    return access.policy if isinstance(access, StaffAccess) else AccessPolicy()


def _token_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The bearer token from the Authorization header, or ``?token=`` on the live alert
    stream only (browsers cannot set headers on a WebSocket). Anywhere else a token in the
    address would end up in logs, histories and Referer headers, so it is not taken."""
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    if connection.scope["type"] == ScopeType.WEBSOCKET and connection.scope["path"] in (
        TOKEN_QUERY_PATHS
    ):
        return connection.query_params.get("token")
    return None


def csrf_token_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The CSRF token for forms on a page served to a signed-in session."""
    token = connection.state.get(_CSRF_TOKEN_KEY)
    return token if isinstance(token, str) else None


def _refuse_foreign_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """403 for a WebSocket opened with the cookie from another site's page.

    Browsers send cookies with cross-site WebSocket handshakes; Origin tells them apart.
    """
    origin = urlsplit(connection.headers.get("origin", ""))
    if not origin.netloc or origin.netloc != connection.headers.get("host"):
        raise PermissionDeniedException("the live stream opens only from the console's pages")


async def _refuse_forgery(connection: ASGIConnection[Any, Any, Any, Any], session_id: str) -> None:
    """403 unless a request made with the session cookie shows it comes from our pages."""
    if connection.scope["type"] == ScopeType.WEBSOCKET:
        return  # its Origin was checked before the session was looked up
    request = (
        connection
        if isinstance(connection, Request)
        else Request[Any, Any, Any](connection.scope, connection.receive)
    )
    if request.method in SAFE_METHODS:
        return
    token = request.headers.get(CSRF_HEADER)
    content_type, _ = request.content_type
    if token is None and content_type in (
        RequestEncodingType.URL_ENCODED,
        RequestEncodingType.MULTI_PART,
    ):
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not csrf_token_matches(session_id, token):
        raise PermissionDeniedException("the page was out of date: reload it and try again")


async def _look_up(
    connection: ASGIConnection[Any, Any, Any, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> StaffIdentity:
    """The staff member behind the connection's token or session cookie, looked up now."""
    token = _token_of(connection)
    async with sessions() as session:
        if token:
            staff = await care.staff_for_token(session, token, now=_policy_of(connection).clock())
            if staff is None:
                raise NotAuthorizedException("the token is not valid")
        else:
            session_id = connection.cookies.get(_policy_of(connection).session_cookie)
            if not session_id:
                raise NotAuthorizedException("sign in, or send a bearer token")
            if connection.scope["type"] == ScopeType.WEBSOCKET:
                _refuse_foreign_origin(connection)  # before any work for a forged request
            staff = await SessionService(sessions, _policy_of(connection)).resolve(session_id)
            if staff is None:
                raise NotAuthorizedException("the session has ended: sign in again")
            await _refuse_forgery(connection, session_id)
            connection.state[_CSRF_TOKEN_KEY] = csrf_token_for(session_id)
        assert staff.id is not None
        teams = await care.team_ids_of(session, staff.id)
    return StaffIdentity(
        staff_id=staff.id,
        username=staff.username,
        organisation_id=staff.organisation_id,
        role=staff.role,
        language=staff.language,
        team_ids=frozenset(teams),
        full_name=staff.full_name,
        time_zone=staff.time_zone,
    )


async def identify(
    connection: ASGIConnection[Any, Any, Any, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> StaffIdentity:
    """The calling staff member, by API token or console session; 401 without either.

    A bearer token wins over a cookie: browsers never add it on their own, so a request
    carrying one was not forged by another site.
    """
    cached = connection.state.get(_IDENTITY_KEY)
    if isinstance(cached, StaffIdentity):
        return cached
    identity = await _look_up(connection, sessions)
    connection.state[_IDENTITY_KEY] = identity
    return identity


async def still_identified(
    connection: ASGIConnection[Any, Any, Any, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> StaffIdentity | None:
    """The connection's staff member as the database says now (for a long-lived stream):
    None once the session has ended, the token is revoked or expired, or the staff member
    is deactivated."""
    try:
        return await _look_up(connection, sessions)
    except (NotAuthorizedException, PermissionDeniedException):
        return None


def stream_recheck_interval(connection: ASGIConnection[Any, Any, Any, Any]) -> float:
    """Seconds between a live stream's checks of its credential."""
    return _policy_of(connection).stream_recheck.total_seconds()


async def require_staff(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app's guard: every route but the public ones needs a signed-in staff member."""
    if is_public(connection.scope["path"]) or handler.opt.get(PUBLIC_OPT):
        return
    try:
        await identify(connection, staff_access_of(connection).sessions())
    except (NotAuthorizedException, PermissionDeniedException) as err:
        if connection.scope["type"] != ScopeType.WEBSOCKET:
            raise
        # Closed before the handshake completes, with 4401 or 4403 (not a server error).
        raise WebSocketException(detail=err.detail, code=4000 + err.status_code) from err


def sign_in_or_refuse(
    request: Request[Any, Any, Any], exc: NotAuthorizedException
) -> Response[Any]:
    """A browser asking for a console page without a session goes to the sign-in page;
    everything else gets the plain 401."""
    path = request.scope["path"]
    if request.method == "GET" and path.startswith("/console"):
        return Redirect(f"/login?next={quote(path)}")
    return create_exception_response(request, exc)


async def visible_resident(
    session: AsyncSession,
    identity: StaffIdentity,
    resident_id: int,
    *,
    action: str,
    context: str = "",
) -> care.Resident:
    """The resident, when one of the caller's teams looks after them, with the read logged
    (care.visible_resident: 404, as if absent, for a resident of other teams)."""
    return await care.visible_resident(
        session, identity.actor, resident_id, action=action, context=context
    )
