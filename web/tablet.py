"""The resident's tablet: pairing, the home screen, check-ins and reminders, "call my care
team", "I need help", and the incoming call.

A tablet authenticates with its device key (``Authorization: Bearer vakid.<id>.<secret>``,
the same credential it uses on MQTT), so it needs no password and no cookie; it gets the
key once, by typing a pairing code from its care team, and keeps it; revoking the device
ends its access. Answers given here and over MQTT are accepted once, whichever is first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_skeleton
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import (
    NotAuthorizedException,
)
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import video
from web import i18n
from web.tablet_pairing import PAIRING_ROUTES

# The page remembers the resident's language in this cookie (not a credential: the key
# stays in the browser's storage), so it is rendered in their language from the start.
LANGUAGE_COOKIE = "vaki_tablet_lang"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


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
Help = NamedDependency[devices.DeviceService]


class Answer(BaseModel):
    """A resident's answer to one prompt."""

    answer: str | None = Field(default=None, max_length=32, examples=["fine"])
    answers: dict[str, Any] = Field(default_factory=dict, examples=[{"pain": 3}])


class HelpRequest(BaseModel):
    """One press of "I need help", with the tablet's own id for it (resends count once)."""

    request_id: str = Field(pattern=r"^[A-Za-z0-9-]{8,48}$", examples=["3f2c9a1e-77b0"])


class PairingRequest(BaseModel):
    """The code from the care team, as typed."""

    code: str = Field(max_length=32, examples=["4821 0937"])


async def tablet_device(
    request: Request[Any, Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> devices.Device:
    """The resident's tablet that is calling; 401 without a valid device key."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not key:
        raise NotAuthorizedException("this tablet has no device key")
    device = await devices.DeviceService(sessions).tablet_for_key(key)
    if device is None or device.resident_id is None:
        raise NotAuthorizedException("the device key is not valid (revoked?)")
    return device


async def tablet_resident(
    request: Request[Any, Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> int:
    """The resident whose tablet is calling; 401 without a valid device key."""
    device = await tablet_device(request, sessions)
    assert device.resident_id is not None
    return device.resident_id


def _zone(name: str) -> ZoneInfo:
    """The resident's time zone; Reykjavik when the stored name is not a zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Atlantic/Reykjavik")


def when_label(moment: datetime, now: datetime, zone: ZoneInfo) -> str:
    """When an appointment is, in words: "Today at 14:00", "Thursday 26 November at 10:30"."""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    clock = i18n.local_time(moment)
    if local.date() == today:
        return i18n.gettext("Today at %(time)s", time=clock)
    if local.date() == today + timedelta(days=1):
        return i18n.gettext("Tomorrow at %(time)s", time=clock)
    locale = i18n.LOCALES[i18n.current_language()]
    day = format_skeleton("MMMMEEEEd", local, locale=locale)
    return i18n.gettext("%(date)s at %(time)s", date=day, time=clock)


def _appointments(
    calls: list[video.Consultation], now: datetime, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """The resident's booked video calls in the coming week, soonest first."""
    return [
        {
            "id": c.id,
            "at": c.scheduled_at.isoformat(),
            "when": when_label(c.scheduled_at, now, zone),
        }
        for c in calls
        if c.scheduled_at is not None
    ]


def _starting_soon(appointments: list[dict[str, Any]], now: datetime) -> dict[str, Any] | None:
    """The booked call that starts within the reminder time, for a reminder on the screen."""
    for appointment in appointments:
        at = datetime.fromisoformat(appointment["at"])
        if now < at <= now + video.REMIND_BEFORE:
            return appointment
    return None


class TabletController(Controller):
    """The tablet's JSON API."""

    path = "/api/tablet"

    @post("/pair", status_code=201)
    async def pair(
        self, request: Request[Any, Any, Any], sessions: Sessions, data: JSONBody[PairingRequest]
    ) -> dict[str, str]:
        """Pair this tablet with the code from the care team; the answer holds its key
        (422 for a wrong, used or expired code; 429 while the address must wait)."""
        address = request.client.host if request.client else ""
        paired = await devices.DeviceService(sessions).pair_tablet(
            data.code, client_address=address
        )
        return {"key": paired.key, "language": i18n.supported(paired.language)}

    @get("/home")
    async def home(
        self, request: Request[Any, Any, Any], sessions: Sessions, checkin_desk: Desk
    ) -> dict[str, Any]:
        """Everything the home screen shows, in the resident's language and time zone."""
        resident_id = await tablet_resident(request, sessions)
        calls = await video.ConsultationService(sessions).tablet_calls(resident_id)
        resident, now = calls.resident, care.utcnow()
        zone = _zone(resident.time_zone)
        language = i18n.use_language(resident.language, zone.key)
        appointments = _appointments(calls.upcoming, now, zone)
        incoming = (
            {
                "id": calls.ringing.id,
                "status": calls.ringing.status,
                "auto_answer": calls.auto_answer,
            }
            if calls.ringing is not None
            else None
        )
        call_requested = calls.call_requested
        return {
            "resident": {
                "name": resident.preferred_name or resident.full_name.split(" ", 1)[0],
                "language": language,
                "time_zone": zone.key,
            },
            "prompts": await checkin_desk.service.open_prompts(resident_id),
            "appointments": appointments,
            "incoming_call": incoming,
            "starting_soon": _starting_soon(appointments, now),
            "call_requested": call_requested,
            "server_time": now.isoformat(),
        }

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
        outcome = await checkin_desk.answer(
            reference, data.answer, data.answers, via="tablet", resident_id=resident_id
        )
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

    @post("/help", status_code=202)
    async def ask_for_help(
        self,
        request: Request[Any, Any, Any],
        sessions: Sessions,
        tablet_desk: Help,
        data: JSONBody[HelpRequest],
    ) -> dict[str, Any]:
        """ "I need help": an alarm for the resident's care team, at once."""
        device = await tablet_device(request, sessions)
        new = await tablet_desk.ask_for_help(device, data.request_id)
        return {"status": "sent", "new": new}


def page_strings() -> dict[str, str]:
    """The words the tablet's script shows, in the page's language."""
    return {
        "good_morning": i18n.translate("Good morning, %(name)s"),
        "good_day": i18n.translate("Good day, %(name)s"),
        "good_evening": i18n.translate("Good evening, %(name)s"),
        "offline": i18n.translate("No connection. Trying again…"),
        "pending": i18n.translate("Waiting for the connection to send it."),
        "wrong_code": i18n.translate("That code did not work. Check the digits and try again."),
        "too_many": i18n.translate("Too many tries. Please wait 15 minutes and try again."),
        "pairing": i18n.translate("Connecting…"),
        "question_of": i18n.translate("Question %(number)s of %(count)s"),
        "yes": i18n.translate("Yes"),
        "no": i18n.translate("No"),
        "call_requested": i18n.translate("Your care team will call you soon."),
        "answer_prompt": i18n.translate("Answer"),
        "auto_answer": i18n.translate("The call is answered by itself in %(seconds)s seconds."),
        "starting_soon": i18n.translate("Your video call with the care team starts soon: %(when)s"),
        "call_good": i18n.translate("Connection good"),
        "call_weak": i18n.translate("Connection weak"),
        "call_ended": i18n.translate("The call has ended."),
        "call_failed": i18n.translate("The call could not be connected. Please try again."),
    }


def page_calendar(language: str) -> dict[str, Any]:
    """The locale's date and time patterns and names (from CLDR, through Babel), so the
    script shows the ticking clock exactly as the server would format it, offline too."""
    locale = Locale.parse(i18n.LOCALES[language])

    def ordered(names: Any, first: int) -> list[str]:
        return [str(names[n]) for n in range(first, first + len(names))]

    return {
        "date": locale.date_formats["full"].pattern,
        "time": locale.time_formats["short"].pattern,
        "months": ordered(locale.months["format"]["wide"], 1),
        "months_alone": ordered(locale.months["stand-alone"]["wide"], 1),
        "days": ordered(locale.days["format"]["wide"], 0),
        "days_alone": ordered(locale.days["stand-alone"]["wide"], 0),
        "am": str(locale.day_periods["format"]["abbreviated"]["am"]),
        "pm": str(locale.day_periods["format"]["abbreviated"]["pm"]),
    }


def _page_language(request: Request[Any, Any, Any]) -> str:
    """The language to render in: asked for, remembered, the browser's, or Icelandic."""
    asked = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    if asked:
        return i18n.supported(asked)
    accepted = request.headers.get("accept-language", "")
    return i18n.supported(accepted.split(",", 1)[0])


@get("/tablet/", include_in_schema=False)
async def tablet_page(request: Request[Any, Any, Any]) -> Template:
    """The tablet's page; it holds its device key in the browser and asks the API."""
    language = i18n.use_language(_page_language(request))
    page = Template(
        template_name="tablet.html",
        context={
            "lang": language,
            "strings": page_strings(),
            "calendar": page_calendar(language),
            "languages": LANGUAGE_NAMES,
        },
        headers=PAGE_HEADERS,
    )
    if "lang" in request.query_params:
        page.set_cookie(
            LANGUAGE_COOKIE, language, path="/tablet/", max_age=10 * 365 * 86400, samesite="lax"
        )
    return page


# Each language named in itself, for the language choice before pairing.
LANGUAGE_NAMES = {"is": "Íslenska", "en": "English", "sv": "Svenska", "fi": "Suomi", "pl": "Polski"}

# The tablet's routes; web/__init__.py serves them.
TABLET_ROUTES: list[ControllerRouterHandler] = [TabletController, tablet_page, *PAIRING_ROUTES]
