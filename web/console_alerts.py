"""The console's alert queue, an alert's whole story, and the call queue.

Pages are rendered on the server; ``static/console.js`` keeps the queue live from the alert
stream and sends the "I am looking at this alert" heartbeat. Every form works without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import video
from web.console_presence import Onlooker, presence_of
from web.console_view import PAGE_HEADERS, Viewer, console_page, refuse_technician, viewer_of
from web.console_words import DeviceWords, alert_facts, alert_kind_name

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
Alerts = NamedDependency[alerts.AlertService]

SEVERITY_ORDER = {"critical": 0, "high": 1, "normal": 2, "technical": 3}
# How an alert ended, as the resolve form offers it; "other" needs a note.
OUTCOMES = ("resident_fine", "helped_at_home", "ambulance", "false_alarm", "technical", "other")
NOTE_MAX = 2000
QUEUE = "/console/"


@dataclass(frozen=True)
class QueueItem:
    """One alert as the queue shows it."""

    alert: alerts.Alert
    resident_name: str | None
    acknowledged_by: str | None
    onlookers: list[Onlooker]
    device: DeviceWords | None = None

    @property
    def is_critical(self) -> bool:
        """Critical alerts ring and stand out."""
        return self.alert.severity == alerts.AlertSeverity.CRITICAL


@dataclass(frozen=True)
class WaitingCall:
    """A resident waiting for the care team to call them."""

    request: video.CallRequest
    resident_name: str
    phone: str | None


def _redirect(path: str, **query: str) -> Redirect:
    """303 to a console page, with a notice for the person who sent the form."""
    target = f"{path}?{urlencode(query)}" if query else path
    return Redirect(target, status_code=HTTP_303_SEE_OTHER, headers=PAGE_HEADERS)


def _next_of(value: object, fallback: str = QUEUE) -> str:
    """Where a form goes back to: a console page, never another site."""
    if isinstance(value, str) and value.startswith("/console/") and "//" not in value:
        return value.split("?", 1)[0]
    return fallback


async def _queue(
    request: Request[Any, Any, Any], viewer: Viewer, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, Any]:
    """The open and acknowledged alerts of the caller's teams, critical first, and the calls.

    The queue shows what the alert stream shows (kind, severity, the resident's name); a
    resident's data is read, and logged, when their alert or page is opened.
    """
    identity = viewer.identity
    presence = presence_of(request.app.state)
    query = request.query_params
    wanted = alerts.QueueFilter.parse(query.get("mine"), query.get("severity"), query.get("team"))
    service = alerts.AlertService(sessions)
    found = await service.console_queue(identity.actor, wanted)
    technical = await service.technical_problems(identity.actor)
    teams = await service.team_names(identity.actor)
    waiting = await video.ConsultationService(sessions).waiting_calls(identity.actor)
    items = [
        QueueItem(
            alert=entry.alert,
            resident_name=entry.resident_name,
            acknowledged_by=entry.acknowledged_by,
            onlookers=presence.onlookers(entry.alert.id or 0, besides=identity.staff_id),
            device=DeviceWords(entry.device.label, entry.device.kind) if entry.device else None,
        )
        for entry in found
    ]
    calls = [
        WaitingCall(request=call, resident_name=resident.full_name, phone=resident.phone)
        for call, resident in waiting
    ]
    return {
        "items": items,
        "calls": calls,
        "outcomes": OUTCOMES,
        "wanted": wanted,
        "technical": technical,
        "teams": teams,
        "severities": SEVERITY_ORDER,
        "critical_open": sum(
            1 for i in items if i.is_critical and i.alert.status == alerts.AlertStatus.OPEN
        ),
    }


@get("/console/", include_in_schema=False)
async def alert_queue(request: Request[Any, Any, Any], sessions: Sessions) -> Template | Redirect:
    """The alert queue: live, critical first; acknowledge in one click, resolve with an outcome."""
    viewer = await viewer_of(request, sessions)
    if viewer.is_technician:
        return _redirect("/console/devices")
    context = await _queue(request, viewer, sessions)
    return console_page(
        request,
        viewer,
        "console_queue.html",
        section="queue",
        notice=request.query_params.get("notice"),
        request_query=request.url.query,
        **context,
    )


@get("/console/queue/items", include_in_schema=False)
async def alert_queue_items(request: Request[Any, Any, Any], sessions: Sessions) -> Template:
    """The queue's lists alone, which the page fetches when the stream says something changed."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, "alert queue")
    context = await _queue(request, viewer, sessions)
    return console_page(request, viewer, "console_queue_items.html", section="queue", **context)


@get("/console/live", include_in_schema=False)
async def live_state(request: Request[Any, Any, Any], sessions: Sessions) -> dict[str, Any]:
    """What must ring on every console page: critical and high alerts nobody has yet, callers.

    Every page's live script fetches this when it (re)connects and after each change.
    """
    viewer = await viewer_of(request, sessions)
    if viewer.is_technician:
        return {"ringing": [], "calls": 0}
    actor = viewer.identity.actor
    ringing = await alerts.AlertService(sessions).ringing(actor)
    waiting = await video.ConsultationService(sessions).waiting_calls(actor)
    return {
        "ringing": [
            {
                "id": entry.alert.id,
                "what": alert_kind_name(entry.alert.kind),
                "who": entry.resident_name or "",
                "facts": " · ".join(
                    alert_facts(
                        entry.alert.kind,
                        entry.alert.details,
                        DeviceWords(entry.device.label, entry.device.kind)
                        if entry.device
                        else None,
                    )
                ),
                "since": entry.alert.first_seen_at.isoformat(),
                # A new press or re-trigger counts up: a mute holds for one count.
                "count": entry.alert.count,
                "severity": str(entry.alert.severity),
                "url": f"/console/alerts/{entry.alert.id}",
            }
            for entry in ringing
        ],
        "calls": len(waiting),
    }


@post("/console/alerts/{alert_id:int}/acknowledge", include_in_schema=False)
async def acknowledge_alert(
    request: Request[Any, Any, Any],
    alert_id: FromPath[int],
    sessions: Sessions,
    alert_service: Alerts,
) -> Redirect:
    """I have it: the escalation stops."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"alert {alert_id}")
    back = _next_of((await request.form()).get("next"))
    await alert_service.visible(viewer.identity.actor, alert_id)
    try:
        await alert_service.acknowledge(viewer.identity.actor, alert_id)
    except alerts.AlertStateError:
        # Someone was quicker: the page says so where the nurse is, not as an error page.
        return _redirect(back, notice="not_open")
    return _redirect(back, notice="acknowledged")


@post("/console/alerts/{alert_id:int}/resolve", include_in_schema=False)
async def resolve_alert(
    request: Request[Any, Any, Any],
    alert_id: FromPath[int],
    sessions: Sessions,
    alert_service: Alerts,
) -> Redirect:
    """Close the alert with what happened and a note."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"alert {alert_id}")
    form = await request.form()
    back = _next_of(form.get("next"))
    outcome = str(form.get("outcome", ""))
    note = str(form.get("note", "")).strip()
    await alert_service.visible(viewer.identity.actor, alert_id)
    if outcome not in OUTCOMES:
        return _redirect(back, notice="pick_outcome")
    if outcome == "other" and not note:
        return _redirect(back, notice="note_needed")
    if len(note) > NOTE_MAX:
        return _redirect(back, notice="note_too_long")
    try:
        await alert_service.resolve(viewer.identity.actor, alert_id, outcome=outcome, note=note)
    except alerts.AlertStateError:
        return _redirect(back, notice="already_resolved")
    return _redirect(back, notice="resolved")


@post("/console/alerts/{alert_id:int}/presence", include_in_schema=False)
async def alert_presence(
    request: Request[Any, Any, Any], alert_id: FromPath[int], sessions: Sessions
) -> dict[str, Any]:
    """The page of an alert is still open (or, with ``leaving``, was closed): who else is here."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"alert {alert_id}")
    await alerts.AlertService(sessions).visible(viewer.identity.actor, alert_id)
    presence = presence_of(request.app.state)
    identity = viewer.identity
    if request.query_params.get("leaving"):
        presence.left(alert_id, identity.staff_id)
    else:
        presence.looking(alert_id, identity.staff_id, identity.full_name or identity.username)
    others = presence.onlookers(alert_id, besides=identity.staff_id)
    return {"alert_id": alert_id, "onlookers": [o.name for o in others]}


@get("/console/alerts/{alert_id:int}", include_in_schema=False)
async def alert_detail(
    request: Request[Any, Any, Any], alert_id: FromPath[int], sessions: Sessions
) -> Template:
    """Everything about one alert: what set it off, its timeline, escalation and messages."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"alert {alert_id}")
    identity = viewer.identity
    story = await alerts.AlertService(sessions).story(identity.actor, alert_id)
    presence = presence_of(request.app.state)
    presence.looking(alert_id, identity.staff_id, identity.full_name or identity.username)
    return console_page(
        request,
        viewer,
        "console_alert.html",
        section="queue",
        alert=story.alert,
        resident=story.resident,
        timeline=story.timeline,
        steps=story.steps,
        notifications=story.notifications,
        policy=story.policy,
        tiers=story.tiers,
        staff_names=story.staff_names,
        event=story.event,
        reading=story.reading,
        device=story.device,
        device_words=DeviceWords(story.device.label, story.device.kind) if story.device else None,
        onlookers=presence.onlookers(alert_id, besides=identity.staff_id),
        outcomes=OUTCOMES,
        notice=request.query_params.get("notice"),
        details={
            k: v
            for k, v in story.alert.details.items()
            if k not in ("event_id", "reading_id", "auto_resolves")
        },
    )


@post("/console/calls/{request_id:int}/take", include_in_schema=False)
async def take_call(
    request: Request[Any, Any, Any],
    request_id: FromPath[int],
    sessions: Sessions,
    alert_service: Alerts,
) -> Redirect:
    """Take a resident's "please call me": the first one to click has it."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"call request {request_id}")
    try:
        resident_id = await video.ConsultationService(sessions).take_call(
            viewer.identity.actor, request_id
        )
    except video.CallTakenError:
        # Someone else was quicker: back to the queue, which says so.
        return _redirect(QUEUE, notice="call_taken")
    await alert_service.tell_teams("call_taken", resident_id)
    return _redirect(f"/console/residents/{resident_id}", notice="call_yours")


ALERT_ROUTES: list[ControllerRouterHandler] = [
    alert_queue,
    live_state,
    alert_queue_items,
    alert_detail,
    acknowledge_alert,
    resolve_alert,
    alert_presence,
    take_call,
]
