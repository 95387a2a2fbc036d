"""Pages every visitor may see."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from web import i18n
from web.console import browser_language


@get("/", include_in_schema=False)
async def index(request: Request[Any, Any, Any]) -> Template:
    """The front page, in the browser's language: what this service is, and where staff
    (the console) and residents (the tablet) go."""
    language = i18n.use_language(browser_language(request.headers.get("accept-language", "")))
    return Template(template_name="index.html", context={"lang": language})
