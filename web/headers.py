"""Security headers on every response, and requests too odd to serve, refused in words.

One response hook adds what a response lacks, so error pages, 404s, static files and the
API get the same protection as the pages that set their own: no MIME sniffing, no framing,
a restrictive CSP, no referrer to other sites, and JSON (health data) never cached.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import ClientException
from litestar.response import Response
from litestar.types import Message, Scope

DEFAULT_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
# The API description's pages load their viewer from a CDN; they carry only public text.
_NO_DEFAULT_CSP = ("/schema",)
# The deepest JSON anyone sends us is a few levels; a thousand would exhaust the decoder.
MAX_JSON_DEPTH = 32
# Ids and counts are stored as 64-bit integers at most.
MAX_INTEGER = 2**63 - 1
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]|(?<![0-9.eE+-])-?[0-9]{19,}(?![0-9.eE])')


async def security_headers(message: Message, scope: Scope) -> None:
    """The response hook (Litestar's ``before_send``, which sees every response, the
    router's 404s and error pages included): fill in the security headers it lacks."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers.setdefault("x-content-type-options", "nosniff")
    headers.setdefault("x-frame-options", "DENY")
    headers.setdefault("referrer-policy", "same-origin")
    if not scope["path"].startswith(_NO_DEFAULT_CSP):
        headers.setdefault("content-security-policy", DEFAULT_CSP)
    content_type = headers.get("content-type") or ""
    if content_type.startswith(("application/json", "application/problem+json")):
        headers.setdefault("cache-control", "no-store")


def json_too_odd(body: bytes) -> str | None:
    """Why a JSON body is refused unread (nested too deep, a number too large); None if fine."""
    depth = 0
    for token in _JSON_TOKENS.finditer(body):
        first = token.group()[:1]
        if first in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return f"the JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)"
        elif first in (b"]", b"}"):
            depth -= 1
        elif first != b'"' and abs(int(token.group())) > MAX_INTEGER:
            return "a number in the request is too large"
    return None


async def refuse_odd_requests(request: Request[Any, Any, Any]) -> None:
    """400, in words, for numbers too large for an id in the path or a JSON body, and for
    JSON nested deeper than any client needs (it would exhaust the decoder: a 500)."""
    for value in request.path_params.values():
        if isinstance(value, int) and abs(value) > MAX_INTEGER:
            raise ClientException("a number in the address is too large")
    if request.method in ("POST", "PUT", "PATCH") and "json" in (
        request.headers.get("content-type") or ""
    ):
        reason = json_too_odd(await request.body())
        if reason is not None:
            raise ClientException(reason)


def out_of_range(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A value the database cannot store (an integer beyond its column): 400, not 500."""
    return Response(
        {"status_code": 400, "detail": "a number in the request is out of range"},
        status_code=400,
    )
