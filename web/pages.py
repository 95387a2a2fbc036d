"""Pages every visitor may see."""

from __future__ import annotations

from litestar import get
from litestar.response import Template


@get("/", include_in_schema=False)
async def index() -> Template:
    """The front page: what this service is, and where staff and tablets go."""
    return Template(template_name="index.html")
