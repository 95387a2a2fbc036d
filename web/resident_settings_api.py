"""What staff set for a resident's tablet: its language and whether it answers booked calls
of the resident's own care team by itself."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from web import i18n
from web.auth import identify

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]


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
        resident = await care.ResidentService(sessions).tablet_settings(identity.actor, resident_id)
        return _settings_json(resident.language, resident.auto_answer_scheduled_calls)

    @put("/", summary="Set the resident's tablet language and call answering")
    async def change(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        resident_id: FromPath[int],
        data: JSONBody[TabletSettings],
    ) -> dict[str, Any]:
        """Change the settings (nurses, coordinators); the tablet follows within seconds."""
        identity = await identify(request, sessions)
        resident = await care.ResidentService(sessions).change_tablet_settings(
            identity.actor,
            resident_id,
            language=i18n.supported(data.language),
            auto_answer_scheduled_calls=data.auto_answer_scheduled_calls,
        )
        return _settings_json(resident.language, resident.auto_answer_scheduled_calls)


def _settings_json(language: str, auto_answer: bool) -> dict[str, Any]:
    """The settings as the API shows them."""
    return {"language": language, "auto_answer_scheduled_calls": auto_answer}
