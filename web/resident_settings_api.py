"""What staff set for a resident's tablet: its language and whether it answers booked calls
of the resident's own care team by itself."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from web import i18n
from web.auth import identify, visible_resident
from web.tablet_pairing import tell_tablet

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]

# Who may change what the resident's tablet does.
SETTINGS_EDITORS = frozenset({"coordinator", "nurse"})


class TabletSettings(BaseModel):
    """The resident's tablet settings as staff set them."""

    language: str = Field(pattern="^(is|en|sv|fi|pl)$", examples=["is"])
    auto_answer_scheduled_calls: bool = False


class ResidentSettingsController(Controller):
    """Read and change a resident's tablet settings (staff of the resident's teams)."""

    path = "/api/residents/{resident_id:int}/tablet-settings"
    tags = ("tablet",)

    @get("/", summary="The resident's tablet language and call answering")
    async def read(
        self, request: Request[Any, Any, Any], sessions: Sessions, resident_id: FromPath[int]
    ) -> dict[str, Any]:
        """The settings; the read is logged like any read of the resident's data."""
        identity = await identify(request, sessions)
        async with sessions() as session, session.begin():
            resident = await visible_resident(
                session, identity, resident_id, action="read tablet settings"
            )
            return _settings_json(resident.language, resident.auto_answer_scheduled_calls)

    @put("/", summary="Set the resident's tablet language and call answering")
    async def change(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        resident_id: FromPath[int],
        data: JSONBody[TabletSettings],
    ) -> dict[str, Any]:
        """Change the settings (coordinators and nurses); the tablet follows within seconds."""
        identity = await identify(request, sessions)
        async with sessions() as session, session.begin():
            resident = await visible_resident(
                session, identity, resident_id, action="change tablet settings"
            )
            if identity.role not in SETTINGS_EDITORS:
                raise PermissionDeniedException("a coordinator or a nurse sets this")
            resident.language = i18n.supported(data.language)
            resident.auto_answer_scheduled_calls = data.auto_answer_scheduled_calls
            session.add(resident)
            changed = _settings_json(resident.language, resident.auto_answer_scheduled_calls)
        tell_tablet(request.app, resident_id)
        return changed


def _settings_json(language: str, auto_answer: bool) -> dict[str, Any]:
    """The settings as the API shows them."""
    return {"language": language, "auto_answer_scheduled_calls": auto_answer}
