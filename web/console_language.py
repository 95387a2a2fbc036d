"""The console's language switch: a staff member's choice is kept with them, so every page,
and every notification they get, speaks it from then on; a choice made on the sign-in page
is kept the same way."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from web import i18n
from web.auth import identify
from web.console_view import back_to

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]


async def remember_language(
    sessions: async_sessionmaker[AsyncSession], username: str, language: str
) -> None:
    """Keep ``language`` as the staff member's own (nothing when it is not one we speak)."""
    if language in i18n.LANGUAGES:
        await care.StaffPreferenceService(sessions).set_language(username, language)


@post("/console/language", include_in_schema=False)
async def switch_language(request: Request[Any, Any, Any], sessions: Sessions) -> Redirect:
    """Speak another language from now on, and go back to the page."""
    identity = await identify(request, sessions)
    form = await request.form()
    await remember_language(sessions, identity.username, str(form.get("language", "")))
    return back_to(str(form.get("next", "/console/")))


LANGUAGE_ROUTES: list[ControllerRouterHandler] = [switch_language]
