"""The console's doors (the sign-in page and sign-out), and the list of the console's routes."""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ControllerRouterHandler

from web import i18n
from web.auth import PUBLIC_OPT, staff_access_of
from web.console_access import ACCESS_ROUTES
from web.console_alerts import ALERT_ROUTES
from web.console_calls import CALL_ROUTES
from web.console_devices import DEVICE_ROUTES
from web.console_language import LANGUAGE_ROUTES, remember_language
from web.console_plans import PLAN_ROUTES
from web.console_policy import POLICY_ROUTES
from web.console_residents import RESIDENT_ROUTES
from web.console_staff import STAFF_ROUTES
from web.console_view import PAGE_HEADERS
from web.i18n import gettext as _
from web.sessions import (
    LOGIN_FORM_COOKIE,
    AccessPolicy,
    SessionService,
    SignInOutcome,
    SignInService,
)

CONSOLE_HOME = "/console/"
# Each language named in itself, for the sign-in page's language links.
LANGUAGE_NAMES = {
    "is": "Íslenska",
    "en": "English",
    "sv": "Svenska",
    "fi": "Suomi",
    "pl": "Polski",
}


def browser_language(accept_language: str) -> str:
    """The language the browser prefers most among the five (Icelandic when none fits)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _sep, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
        if primary in i18n.LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else i18n.DEFAULT_LANGUAGE


def _sign_in_language(request: Request[Any, Any, Any], chosen: object = None) -> str:
    """The sign-in page's language: the one picked on the page, else the browser's."""
    if isinstance(chosen, str) and chosen in i18n.LANGUAGES:
        return i18n.use_language(chosen)
    return i18n.use_language(browser_language(request.headers.get("accept-language", "")))


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
            "lang": i18n.current_language(),
            "languages": LANGUAGE_NAMES,
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
    _sign_in_language(request, request.query_params.get("lang"))
    page = _login_page(access.policy, next_page=_next_page(request.query_params.get("next")))
    page.context["lang_chosen"] = request.query_params.get("lang") in i18n.LANGUAGES
    return page


@post("/login", opt={PUBLIC_OPT: True}, include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def login(request: Request[Any, Any, Any]) -> Template | Redirect:
    """Check the credentials; on success a new session (the old one ends) and the console."""
    access = staff_access_of(request)
    policy = access.policy
    form = await request.form()
    _sign_in_language(request, form.get("lang"))
    next_page = _next_page(form.get("next"))
    username = str(form.get("username", ""))
    form_token = str(form.get("form_token", ""))
    expected = request.cookies.get(LOGIN_FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, form_token):
        return _login_page(
            policy,
            next_page=next_page,
            username=username,
            error=_("The sign-in page had expired. Please try again."),
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
        wait = result.retry_after or policy.lockout_window
        seconds = math.ceil(wait.total_seconds())
        return _login_page(
            policy,
            next_page=next_page,
            username=username,
            error=_(
                "Too many failed sign-ins. Wait %(minutes)s minutes and try again, "
                "or ask a coordinator for help.",
                minutes=math.ceil(seconds / 60),
            ),
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
    if result.session_id is None:
        return _login_page(
            policy, next_page=next_page, username=username, error=_("Wrong username or password.")
        )
    if form.get("keep_lang"):
        await remember_language(access.sessions(), username, str(form.get("lang", "")))
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
    *PLAN_ROUTES,
    *ACCESS_ROUTES,
    *POLICY_ROUTES,
    *DEVICE_ROUTES,
    *CALL_ROUTES,
    *LANGUAGE_ROUTES,
    *STAFF_ROUTES,
]
