"""The console's alert queue, an alert's whole story, and the call queue.

Pages are rendered on the server; ``static/console.js`` keeps the queue live from the alert
stream and sends the "I am looking at this alert" heartbeat. Every form works without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import video
from web.auth import visible_resident
from web.console_presence import Onlooker, presence_of
from web.console_view import PAGE_HEADERS, Viewer, console_page, refuse_technician, viewer_of
from web.console_words import DeviceWords, alert_facts, alert_kind_name

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
Lifecycle = NamedDependency[alerts.AlertLifecycle]

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


async def _names(session: AsyncSession, model: Any, ids: set[int]) -> dict[int, str]:
    """id → full name of residents or staff."""
    if not ids:
        return {}
    rows = await session.exec(select(model).where(col(model.id).in_(sorted(ids))))
    return {row.id: row.full_name for row in rows.all()}


async def team_resident_ids(session: AsyncSession, team_ids: frozenset[int]) -> set[int]:
    """The residents the caller's teams look after."""
    if not team_ids:
        return set()
    rows = await session.exec(
        select(care.ResidentTeam.resident_id).where(
            col(care.ResidentTeam.team_id).in_(sorted(team_ids))
        )
    )
    return set(rows.all())


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
    async with sessions() as session:
        found = await alerts.queue_alerts(session, identity.team_ids, identity.staff_id, wanted)
        technical = await alerts.technical_problems(session, identity.team_ids)
        machines = await alerts.devices_of(session, found)
        teams = {
            t.id: t.name
            for t in (
                await session.exec(
                    select(care.CareTeam).where(
                        col(care.CareTeam.id).in_(sorted(identity.team_ids))
                    )
                )
            ).all()
        }
        residents = await _names(
            session, care.Resident, {a.resident_id for a in found if a.resident_id is not None}
        )
        staff = await _names(
            session,
            care.StaffUser,
            {a.acknowledged_by for a in found if a.acknowledged_by is not None},
        )
        waiting = await video.waiting_calls(
            session, await team_resident_ids(session, identity.team_ids)
        )
        callers = {
            r.id: r
            for r in (
                await session.exec(
                    select(care.Resident).where(
                        col(care.Resident.id).in_([w.resident_id for w in waiting])
                    )
                )
            ).all()
        }
    items = [
        QueueItem(
            alert=alert,
            resident_name=residents.get(alert.resident_id) if alert.resident_id else None,
            acknowledged_by=staff.get(alert.acknowledged_by) if alert.acknowledged_by else None,
            onlookers=presence.onlookers(alert.id or 0, besides=identity.staff_id),
            device=DeviceWords(machines[alert.device_id].label, machines[alert.device_id].kind)
            if alert.device_id in machines
            else None,
        )
        for alert in found
    ]
    calls = [
        WaitingCall(
            request=w,
            resident_name=callers[w.resident_id].full_name,
            phone=callers[w.resident_id].phone,
        )
        for w in waiting
        if w.resident_id in callers
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
    """What must ring on every console page: critical alerts nobody has yet, waiting callers.

    Every page's live script fetches this when it (re)connects and after each change.
    """
    viewer = await viewer_of(request, sessions)
    if viewer.is_technician:
        return {"ringing": [], "calls": 0}
    identity = viewer.identity
    async with sessions() as session:
        ringing = await alerts.ringing_alerts(session, identity.team_ids)
        machines = await alerts.devices_of(session, ringing)
        residents = await _names(
            session, care.Resident, {a.resident_id for a in ringing if a.resident_id is not None}
        )
        waiting = await video.waiting_calls(
            session, await team_resident_ids(session, identity.team_ids)
        )
    return {
        "ringing": [
            {
                "id": alert.id,
                "what": alert_kind_name(alert.kind),
                "who": residents.get(alert.resident_id or 0, ""),
                "facts": " · ".join(
                    alert_facts(
                        alert.kind,
                        alert.details,
                        DeviceWords(machines[alert.device_id].label, machines[alert.device_id].kind)
                        if alert.device_id in machines
                        else None,
                    )
                ),
                "since": alert.first_seen_at.isoformat(),
                "url": f"/console/alerts/{alert.id}",
            }
            for alert in ringing
        ],
        "calls": len(waiting),
    }


async def _visible_alert(session: AsyncSession, viewer: Viewer, alert_id: int) -> alerts.Alert:
    """The alert, if one of the caller's teams answers for it (404 otherwise)."""
    refuse_technician(viewer, f"alert {alert_id}")
    alert = await session.get(alerts.Alert, alert_id)
    if alert is None or alert.team_id not in viewer.identity.team_ids:
        raise NotFoundException(f"no alert {alert_id}")
    return alert


@post("/console/alerts/{alert_id:int}/acknowledge", include_in_schema=False)
async def acknowledge_alert(
    request: Request[Any, Any, Any],
    alert_id: FromPath[int],
    sessions: Sessions,
    alarm_lifecycle: Lifecycle,
) -> Redirect:
    """I have it: the escalation stops."""
    viewer = await viewer_of(request, sessions)
    back = _next_of((await request.form()).get("next"))
    async with sessions() as session:
        await _visible_alert(session, viewer, alert_id)
    try:
        await alarm_lifecycle.acknowledge(alert_id, viewer.identity.staff_id)
    except alerts.AlertStateError:
        return _redirect(back, notice="not_open")
    return _redirect(back, notice="acknowledged")


@post("/console/alerts/{alert_id:int}/resolve", include_in_schema=False)
async def resolve_alert(
    request: Request[Any, Any, Any],
    alert_id: FromPath[int],
    sessions: Sessions,
    alarm_lifecycle: Lifecycle,
) -> Redirect:
    """Close the alert with what happened and a note."""
    viewer = await viewer_of(request, sessions)
    form = await request.form()
    back = _next_of(form.get("next"))
    outcome = str(form.get("outcome", ""))
    note = str(form.get("note", "")).strip()
    async with sessions() as session:
        await _visible_alert(session, viewer, alert_id)
    if outcome not in OUTCOMES:
        return _redirect(back, notice="pick_outcome")
    if outcome == "other" and not note:
        return _redirect(back, notice="note_needed")
    if len(note) > NOTE_MAX:
        return _redirect(back, notice="note_too_long")
    try:
        await alarm_lifecycle.resolve(
            alert_id, viewer.identity.staff_id, outcome=outcome, note=note
        )
    except alerts.AlertStateError:
        return _redirect(back, notice="already_resolved")
    return _redirect(back, notice="resolved")


@post("/console/alerts/{alert_id:int}/presence", include_in_schema=False)
async def alert_presence(
    request: Request[Any, Any, Any], alert_id: FromPath[int], sessions: Sessions
) -> dict[str, Any]:
    """The page of an alert is still open (or, with ``leaving``, was closed): who else is here."""
    viewer = await viewer_of(request, sessions)
    async with sessions() as session:
        await _visible_alert(session, viewer, alert_id)
    presence = presence_of(request.app.state)
    identity = viewer.identity
    if request.query_params.get("leaving"):
        presence.left(alert_id, identity.staff_id)
    else:
        presence.looking(alert_id, identity.staff_id, identity.full_name or identity.username)
    others = presence.onlookers(alert_id, besides=identity.staff_id)
    return {"alert_id": alert_id, "onlookers": [o.name for o in others]}


@dataclass(frozen=True)
class TimelineLine:
    """One line of an alert's story, with who did it."""

    at: datetime
    kind: str
    actor: str | None
    data: dict[str, Any]


@get("/console/alerts/{alert_id:int}", include_in_schema=False)
async def alert_detail(
    request: Request[Any, Any, Any], alert_id: FromPath[int], sessions: Sessions
) -> Template:
    """Everything about one alert: what set it off, its timeline, escalation and messages."""
    viewer = await viewer_of(request, sessions)
    identity = viewer.identity
    async with sessions() as session:
        alert = await _visible_alert(session, viewer, alert_id)
        resident = (
            await visible_resident(
                session,
                identity,
                alert.resident_id,
                action="console.alert",
                context=f"alert {alert_id}",
            )
            if alert.resident_id is not None
            else None
        )
        entries = (
            await session.exec(
                select(alerts.AlertTimelineEntry)
                .where(alerts.AlertTimelineEntry.alert_id == alert_id)
                .order_by(col(alerts.AlertTimelineEntry.at), col(alerts.AlertTimelineEntry.id))
            )
        ).all()
        steps = (
            await session.exec(
                select(alerts.EscalationStep)
                .where(alerts.EscalationStep.alert_id == alert_id)
                .order_by(
                    col(alerts.EscalationStep.round),
                    col(alerts.EscalationStep.due_at),
                    col(alerts.EscalationStep.id),
                )
            )
        ).all()
        notifications = (
            await session.exec(
                select(alerts.Notification)
                .where(alerts.Notification.alert_id == alert_id)
                .order_by(col(alerts.Notification.created_at), col(alerts.Notification.id))
            )
        ).all()
        policy = (
            await session.get(alerts.EscalationPolicy, alert.policy_id) if alert.policy_id else None
        )
        tiers = (
            (
                await session.exec(
                    select(alerts.EscalationTier)
                    .where(alerts.EscalationTier.policy_id == alert.policy_id)
                    .order_by(col(alerts.EscalationTier.position))
                )
            ).all()
            if alert.policy_id
            else []
        )
        staff_ids = {e.actor_staff_id for e in entries if e.actor_staff_id is not None}
        staff_ids |= {
            n.recipient_id for n in notifications if n.recipient_kind == "staff" and n.recipient_id
        }
        staff_ids |= {s for s in (alert.acknowledged_by, alert.resolved_by) if s is not None}
        staff = await _names(session, care.StaffUser, staff_ids)
        event_id, reading_id = alert.details.get("event_id"), alert.details.get("reading_id")
        event = await session.get(devices.Event, event_id) if isinstance(event_id, int) else None
        reading = (
            await session.get(devices.Reading, reading_id) if isinstance(reading_id, int) else None
        )
        device = await session.get(devices.Device, alert.device_id) if alert.device_id else None
        await session.commit()
    presence = presence_of(request.app.state)
    presence.looking(alert_id, identity.staff_id, identity.full_name or identity.username)
    return console_page(
        request,
        viewer,
        "console_alert.html",
        section="queue",
        alert=alert,
        resident=resident,
        timeline=[
            TimelineLine(
                e.at, e.kind, staff.get(e.actor_staff_id) if e.actor_staff_id else None, e.data
            )
            for e in entries
        ],
        steps=steps,
        notifications=notifications,
        policy=policy,
        tiers=tiers,
        staff_names=staff,
        event=event,
        reading=reading,
        device=device,
        device_words=DeviceWords(device.label, device.kind) if device else None,
        onlookers=presence.onlookers(alert_id, besides=identity.staff_id),
        outcomes=OUTCOMES,
        notice=request.query_params.get("notice"),
        details={
            k: v
            for k, v in alert.details.items()
            if k not in ("event_id", "reading_id", "auto_resolves")
        },
    )


@post("/console/calls/{request_id:int}/take", include_in_schema=False)
async def take_call(
    request: Request[Any, Any, Any],
    request_id: FromPath[int],
    sessions: Sessions,
    alarm_lifecycle: Lifecycle,
) -> Redirect:
    """Take a resident's "please call me": the first one to click has it."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"call request {request_id}")
    async with sessions() as session, session.begin():
        call = await session.get(video.CallRequest, request_id)
        if call is None or call.resident_id not in await team_resident_ids(
            session, viewer.identity.team_ids
        ):
            raise NotFoundException(f"no call request {request_id}")
        resident_id = call.resident_id
        try:
            await video.take_call(session, request_id, viewer.identity.staff_id, care.utcnow())
        except video.CallTakenError:
            return _redirect(QUEUE, notice="call_taken")
    await alarm_lifecycle.tell_teams("call_taken", resident_id)
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
