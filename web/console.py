"""The console's doors (the sign-in page and sign-out), and the list of the console's routes."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ControllerRouterHandler

from web.auth import PUBLIC_OPT, staff_access_of
from web.console_alerts import ALERT_ROUTES
from web.console_calls import CALL_ROUTES
from web.console_devices import DEVICE_ROUTES
from web.console_residents import RESIDENT_ROUTES
from web.console_view import PAGE_HEADERS
from web.sessions import (
    LOGIN_FORM_COOKIE,
    AccessPolicy,
    SessionService,
    SignInOutcome,
    SignInService,
)

WRONG_CREDENTIALS = "Wrong username or password."
CONSOLE_HOME = "/console/"


def _next_page(value: object) -> str:
    """Where to go after signing in: a console page, never another site."""
    if isinstance(value, str) and value.startswith("/console") and "//" not in value:
        return value
    return CONSOLE_HOME


def _login_page(
    policy: AccessPolicy,
    *,
    next_page: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    """The sign-in form with a fresh form token (a cookie the form must echo: no login CSRF)."""
    form_token = secrets.token_urlsafe(24)
    page = Template(
        template_name="login.html",
        context={
            "form_token": form_token,
            "next_page": next_page,
            "username": username,
            "error": error,
        },
        status_code=status_code,
        headers={**PAGE_HEADERS, **(headers or {})},
    )
    page.set_cookie(
        LOGIN_FORM_COOKIE,
        form_token,
        path="/login",
        secure=policy.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return page


@get("/login", opt={PUBLIC_OPT: True}, include_in_schema=False)
async def login_form(request: Request[Any, Any, Any]) -> Template:
    """The sign-in page (signing in again replaces the browser's session)."""
    access = staff_access_of(request)
    return _login_page(access.policy, next_page=_next_page(request.query_params.get("next")))


@post("/login", opt={PUBLIC_OPT: True}, include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def login(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Check the credentials; on success a new session (the old one ends) and the console."""
    access = staff_access_of(request)
    policy = access.policy
    form = await request.form()
    next_page = _next_page(form.get("next"))
    username = str(form.get("username", ""))
    form_token = str(form.get("form_token", ""))
    expected = request.cookies.get(LOGIN_FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, form_token):
        return _login_page(
            policy,
            next_page=next_page,
            username=username,
            error="The sign-in page had expired. Please try again.",
            status_code=403,
        )
    result = await SignInService(access.sessions(), policy).sign_in(
        username,
        str(form.get("password", "")),
        str(form.get("code", "")),
        client_address=request.client.host if request.client else "",
        replacing=request.cookies.get(policy.session_cookie),
    )
    if result.outcome is SignInOutcome.LOCKED_OUT:
        minutes = int(policy.lockout_window.total_seconds() // 60)
        return _login_page(
            policy,
            next_page=next_page,
            username=username,
            error=f"Too many failed sign-ins. Wait {minutes} minutes and try again, "
            "or ask a coordinator for help.",
            status_code=429,
            headers={"Retry-After": str(int(policy.lockout_window.total_seconds()))},
        )
    if result.session_id is None:
        return _login_page(policy, next_page=next_page, username=username, error=WRONG_CREDENTIALS)
    response = Redirect(next_page, status_code=HTTP_303_SEE_OTHER, headers=PAGE_HEADERS)
    # No max-age: the browser forgets the cookie when it closes; the server ends it anyway.
    response.set_cookie(
        policy.session_cookie,
        result.session_id,
        path="/",
        secure=policy.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    response.set_cookie(
        LOGIN_FORM_COOKIE,
        "",
        max_age=0,
        path="/login",
        secure=policy.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@post("/logout", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    """Sign out: the session ends in the database and the browser forgets the cookie."""
    access = staff_access_of(request)
    policy = access.policy
    session_id = request.cookies.get(policy.session_cookie)
    if session_id:
        await SessionService(access.sessions(), policy).end(session_id)
    response = Redirect("/login", status_code=HTTP_303_SEE_OTHER, headers=PAGE_HEADERS)
    response.set_cookie(
        policy.session_cookie,
        "",
        max_age=0,
        path="/",
        secure=policy.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


# The console's routes; web/__init__.py serves them.
CONSOLE_ROUTES: list[ControllerRouterHandler] = [
    login_form,
    login,
    logout,
    *ALERT_ROUTES,
    *RESIDENT_ROUTES,
    *DEVICE_ROUTES,
    *CALL_ROUTES,
]
