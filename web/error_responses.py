"""The one map from domain errors to HTTP: JSON for the API, a page for people.

``create_app`` registers :func:`domain_error_response` once per domain base error. A
domain says what an error means (not found, not allowed, state conflict, invalid) by the
class it derives from; this module alone turns that meaning into a status code, so no
controller catches a domain error to translate it.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request
from litestar.response import Response, Template
from litestar.status_codes import (
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

import alerts
import care
import devices
import video
from web import i18n
from web.console_view import PAGE_HEADERS

log = logging.getLogger(__name__)

# Every domain's errors, by meaning, and the status each meaning is.
STATUS_BY_MEANING: tuple[tuple[tuple[type[Exception], ...], int], ...] = (
    (
        (care.NotFoundError, alerts.NotFoundError, devices.NotFoundError, video.NotFoundError),
        HTTP_404_NOT_FOUND,
    ),
    (
        (
            care.NotAllowedError,
            alerts.NotAllowedError,
            devices.NotAllowedError,
            video.NotAllowedError,
        ),
        HTTP_403_FORBIDDEN,
    ),
    (
        (
            care.StateConflictError,
            alerts.StateConflictError,
            devices.StateConflictError,
            video.StateConflictError,
        ),
        HTTP_409_CONFLICT,
    ),
    (
        (care.InvalidError, alerts.InvalidError, devices.InvalidError, video.InvalidError),
        HTTP_422_UNPROCESSABLE_ENTITY,
    ),
)
DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    care.CareError,
    alerts.AlertsError,
    devices.DevicesError,
    video.VideoError,
)


def _page_words(status: int) -> tuple[str, str]:
    """The page's heading and explanation for ``status``, in the request's language.

    The domain's own words are for the API; a person reads these, from the catalogues.
    """
    translate = i18n.translate
    if status == HTTP_403_FORBIDDEN:
        return translate("Not allowed"), translate(
            "Your role does not allow this. Ask a coordinator of your team if you need it."
        )
    if status == HTTP_404_NOT_FOUND:
        return translate("Not found"), translate(
            "This page does not exist, or it is not for your care teams."
        )
    if status == HTTP_409_CONFLICT:
        return translate("Changed meanwhile"), translate(
            "Someone has changed this in the meantime. Go back and look again."
        )
    if status == HTTP_422_UNPROCESSABLE_ENTITY:
        return translate("Could not be accepted"), translate(
            "What was sent could not be accepted. Go back, check it and try again."
        )
    if status == HTTP_429_TOO_MANY_REQUESTS:
        return translate("Too many tries"), translate(
            "There were too many tries. Wait a little and try again."
        )
    return translate("Something went wrong"), translate(
        "The server could not do this. Try again; if it happens again, tell a technician."
    )


def status_of(exc: Exception) -> int:
    """The HTTP status an error of a domain means; 500 for one with no meaning to callers."""
    if getattr(exc, "retry_after", None) is not None:
        return HTTP_429_TOO_MANY_REQUESTS
    for classes, status in STATUS_BY_MEANING:
        if isinstance(exc, classes):
            return status
    return HTTP_500_INTERNAL_SERVER_ERROR


def _extra_of(exc: Exception) -> dict[str, Any]:
    """The details a client can act on: every gap or problem found, when the error keeps them."""
    extra: dict[str, Any] = {}
    for name in ("gaps", "problems"):
        value = getattr(exc, name, None)
        if isinstance(value, list):
            extra[name] = list(value)
    return extra


def _headers_of(exc: Exception) -> dict[str, str]:
    """``Retry-After`` for an error that says when to try again."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is None:
        return {}
    return {"Retry-After": str(int(retry_after.total_seconds()))}


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    """The API (and anything asking for JSON) gets JSON; console and tablet pages get a page."""
    path: str = request.scope["path"]
    if path.startswith("/api/"):
        return True
    if path.startswith(("/console", "/tablet")):
        return False
    return "text/html" not in request.headers.get("accept", "")


def domain_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The response to a domain error that reached a route: its status, as JSON or a page."""
    status = status_of(exc)
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.error(
            "request %s %s failed",
            request.method,
            request.scope["path"],
            exc_info=(type(exc), exc, exc.__traceback__),
        )
    headers = _headers_of(exc)
    if _wants_json(request):
        body: dict[str, Any] = {"status_code": status, "detail": str(exc)}
        if extra := _extra_of(exc):
            body["extra"] = extra
        return Response(
            body,
            status_code=status,
            media_type=MediaType.JSON,
            headers={**headers, "Cache-Control": "no-store"},
        )
    title, explanation = _page_words(status)
    path = request.scope["path"]
    on_tablet = path.startswith("/tablet")
    return Template(
        template_name="error.html",
        context={
            "lang": i18n.current_language(),
            "title": title,
            "explanation": explanation,
            "back": "/tablet" if on_tablet else "/console/",
            "back_words": i18n.translate("Back to the tablet")
            if on_tablet
            else i18n.translate("Back to the console"),
            "status": status,
        },
        status_code=status,
        headers={**PAGE_HEADERS, **headers},
        media_type=MediaType.HTML,
    )
