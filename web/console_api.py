"""The console's resident API: who viewed a resident's data, for the resident to be shown."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from web.auth import identify

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
# "from" is a Python keyword, so the parameters take other names in the code.
Since = Annotated[datetime | None, QueryParameter(name="from", description="Start (inclusive)")]
Until = Annotated[datetime | None, QueryParameter(name="to", description="End (exclusive)")]


def _aware(value: datetime | None) -> datetime | None:
    """A UTC datetime, also from a naive one (read as UTC)."""
    return None if value is None else care.as_utc(value)


class ResidentsController(Controller):
    """What the console may ask about a resident of the caller's teams."""

    path = "/api/residents"
    tags = ("residents",)

    @get("/{resident_id:int}/access-log", summary="Who viewed this resident's data, and why")
    async def access_log(
        self,
        request: Request[Any, Any, Any],
        resident_id: FromPath[int],
        sessions: Sessions,
        since: Since = None,
        until: Until = None,
    ) -> dict[str, Any]:
        """Every read of the resident's data in the period; for a coordinator of their team.

        Reading the log is itself a read, and is logged.
        """
        identity = await identify(request, sessions)
        since, until = _aware(since), _aware(until)
        if since is not None and until is not None and until <= since:
            raise ValidationException("'to' must come after 'from'")
        _, lines = await care.ResidentService(sessions).access_log(
            identity.actor, resident_id, since=since, until=until
        )
        return {
            "resident_id": resident_id,
            "from": since.isoformat() if since else None,
            "to": until.isoformat() if until else None,
            "entries": [
                {
                    "at": line.entry.at.isoformat(),
                    "staff_id": line.entry.staff_id,
                    "staff_name": line.staff_name,
                    "organisation": line.organisation,
                    "action": line.entry.action,
                    "context": line.entry.context,
                }
                for line in lines
            ],
        }
