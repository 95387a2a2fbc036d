"""Who viewed a resident's data: the access log as a page a coordinator can print and show
the resident. Reading it is itself a read of the resident's data, and is logged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from web.console_view import console_page, refuse_technician, viewer_of
from web.i18n import gettext as _

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class AccessLine:
    """One read of the resident's data, as the page shows it."""

    at: datetime
    who: str
    organisation: str
    what: str
    why: str


def action_in_words(action: str) -> str:
    """What was read or done, in words; the code itself when it is not known here."""
    words = {
        "console.resident": _("Looked at the resident's page"),
        "console.residents": _("Saw the resident in the list of residents"),
        "console.alert": _("Looked at an alert"),
        "console.devices": _("Looked at the resident's devices"),
        "console.device_add": _("Added a device"),
        "console.plans": _("Looked at or changed check-in plans"),
        "access_log.read": _("Looked at who viewed the data"),
        "read check-in plans": _("Looked at check-in plans"),
        "edit check-in plans": _("Changed check-in plans"),
        "read check-in adherence": _("Looked at answered check-ins"),
        "read tablet settings": _("Looked at the tablet's settings"),
        "change tablet settings": _("Changed the tablet's settings"),
        "tablet.pairing.read": _("Looked at the tablet's pairing"),
        "tablet.pairing.create": _("Made a code to pair a tablet"),
        "tablet.revoke": _("Unpaired a tablet"),
        "video.invite": _("Invited to a video call"),
        "video.join": _("Joined a video call"),
        "video.start": _("Started a video call"),
    }
    return words.get(action, action)


def _day(value: str | None, fallback: date) -> tuple[date, bool]:
    """A "2026-11-23" date; the fallback (and False) when it is not one."""
    if not value:
        return fallback, True
    try:
        return date.fromisoformat(value), True
    except ValueError:
        return fallback, False


@get("/console/residents/{resident_id:int}/access-log", include_in_schema=False)
async def access_log_page(
    request: Request[Any, Any, Any], resident_id: FromPath[int], sessions: Sessions
) -> Template:
    """Every read of the resident's data from ``from`` to ``to`` (dates, both included)."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"resident {resident_id}")
    zone = ZoneInfo(viewer.time_zone)
    today = care.utcnow().astimezone(zone).date()
    first, first_ok = _day(request.query_params.get("from"), today - timedelta(days=DEFAULT_DAYS))
    last, last_ok = _day(request.query_params.get("to"), today)
    problems = []
    if not (first_ok and last_ok):
        problems.append(_("Write dates like 2026-11-23."))
    if last < first:
        problems.append(_("The end must come after the start."))
        first, last = last, first
    since = datetime.combine(first, time(0), tzinfo=zone)
    until = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    resident, entries = await care.ResidentService(sessions).access_log(
        viewer.identity.actor,
        resident_id,
        since=since,
        until=until,
        context=f"access log page from {first} to {last}",
        log_refusal=True,
    )
    lines = [
        AccessLine(
            at=line.entry.at,
            who=(line.staff_name or _("Unknown")) if line.entry.staff_id else _("The system"),
            organisation=line.organisation or "",
            what=action_in_words(line.entry.action),
            why=line.entry.context,
        )
        for line in entries
    ]
    return console_page(
        request,
        viewer,
        "console_access_log.html",
        section="residents",
        resident=resident,
        lines=lines,
        first=first.isoformat(),
        last=last.isoformat(),
        problems=problems,
        printed_at=care.utcnow(),
    )


ACCESS_ROUTES: list[ControllerRouterHandler] = [access_log_page]
