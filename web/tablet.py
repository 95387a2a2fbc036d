"""The resident's tablet: open check-ins and reminders, answers, and "please call me".

A tablet authenticates with its device key (``Authorization: Bearer vakid.<id>.<secret>``,
the same credential it uses on MQTT), so it needs no password and no cookie; revoking the
device ends its access. Answers given here and over MQTT are accepted once, whichever is
first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import devices


@runtime_checkable
class CheckinDesk(Protocol):
    """What the tablet needs of the check-in service (the server's check-in pipeline)."""

    service: alerts.CheckinService

    async def answer(
        self,
        reference: str,
        answer: str | None,
        answers: dict[str, Any] | None,
        *,
        via: str,
        resident_id: int | None,
        at: datetime | None = None,
    ) -> alerts.AnswerOutcome:
        """Record an answer once and act on it."""
        ...

    async def request_call(self, resident_id: int, *, source: str, reason: str) -> None:
        """Put the resident in the call queue."""
        ...


Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
Desk = NamedDependency[CheckinDesk]


class Answer(BaseModel):
    """A resident's answer to one prompt."""

    answer: str | None = Field(default=None, max_length=32, examples=["fine"])
    answers: dict[str, Any] = Field(default_factory=dict, examples=[{"pain": 3}])


async def tablet_resident(
    request: Request[Any, Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> int:
    """The resident whose tablet is calling; 401 without a valid device key."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not key:
        raise NotAuthorizedException("this tablet has no device key")
    async with sessions() as session:
        device = await devices.authenticate_device(session, key)
    if device is None or device.resident_id is None:
        raise NotAuthorizedException("the device key is not valid (revoked?)")
    return device.resident_id


class TabletController(Controller):
    """The tablet's JSON API."""

    path = "/api/tablet"

    @get("/prompts")
    async def prompts(
        self, request: Request[Any, Any, Any], sessions: Sessions, checkin_desk: Desk
    ) -> dict[str, Any]:
        """The check-ins and reminders the resident can answer now, oldest first."""
        resident_id = await tablet_resident(request, sessions)
        return {"prompts": await checkin_desk.service.open_prompts(resident_id)}

    @post("/prompts/{reference:str}/answer", status_code=200)
    async def answer(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        checkin_desk: Desk,
        reference: FromPath[str],
        data: JSONBody[Answer],
    ) -> dict[str, Any]:
        """Answer a prompt; a second answer is not taken (``accepted`` is false)."""
        resident_id = await tablet_resident(request, sessions)
        try:
            outcome = await checkin_desk.answer(
                reference, data.answer, data.answers, via="tablet", resident_id=resident_id
            )
        except alerts.PromptNotFoundError as err:
            raise NotFoundException(str(err)) from err
        return {
            "prompt_id": reference,
            "accepted": outcome.accepted,
            "answer": outcome.answer,
            "late": outcome.late,
        }

    @post("/call-request", status_code=202)
    async def call_request(
        self, request: Request[Any, Any, Any], sessions: Sessions, checkin_desk: Desk
    ) -> dict[str, str]:
        """ "Call my care team": a place in the team's call queue."""
        resident_id = await tablet_resident(request, sessions)
        await checkin_desk.request_call(resident_id, source="tablet", reason="")
        return {"status": "waiting"}


@get("/tablet/", include_in_schema=False)
async def tablet_page() -> Template:
    """The tablet's page; it holds its device key in the browser and asks the API."""
    return Template(template_name="tablet.html")


# The tablet's routes; web/__init__.py serves them.
TABLET_ROUTES: list[ControllerRouterHandler] = [TabletController, tablet_page]
