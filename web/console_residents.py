"""The residents of the caller's teams at a glance, and one resident's page: vitals over
7, 30 or 90 days against their alert limits, recent events, check-in adherence, contacts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import video
from web.auth import visible_resident
from web.console_alerts import SEVERITY_ORDER
from web.console_charts import Bounds, Chart, vital_chart
from web.console_view import console_page, refuse_technician, viewer_of

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]

PERIODS = (7, 30, 90)
# (chart key, reading type, fields drawn, unit), in the order the page shows them.
VITALS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("blood_pressure", "blood_pressure", ("systolic", "diastolic"), "mmHg"),
    ("spo2", "spo2", ("spo2",), "%"),
    ("heart_rate", "heart_rate", ("heart_rate",), "bpm"),
    ("pulse", "blood_pressure", ("pulse",), "bpm"),
    ("weight", "weight", ("weight",), "kg"),
    ("temperature", "temperature", ("temperature",), "°C"),
    ("glucose", "glucose", ("glucose",), "mmol/L"),
)
CLOSED_PROMPTS = (alerts.PromptStatus.ANSWERED, alerts.PromptStatus.MISSED)


@dataclass(frozen=True)
class Glance:
    """One resident's state in a line."""

    resident: care.Resident
    open_alerts: int
    worst_severity: str | None
    last_checkin: alerts.CheckinPrompt | None
    devices_online: int
    devices_total: int
    lowest_battery: int | None
    waiting_call: bool


async def _glances(session: AsyncSession, residents: list[care.Resident]) -> list[Glance]:
    """Open alerts, last check-in, devices and battery of each resident (a few queries)."""
    ids = [r.id for r in residents if r.id is not None]
    open_alerts = (
        await session.exec(
            select(alerts.Alert).where(
                col(alerts.Alert.resident_id).in_(ids),
                alerts.Alert.status != alerts.AlertStatus.RESOLVED,
            )
        )
    ).all()
    prompts = (
        await session.exec(
            select(alerts.CheckinPrompt)
            .where(
                col(alerts.CheckinPrompt.resident_id).in_(ids),
                col(alerts.CheckinPrompt.status).in_(list(CLOSED_PROMPTS)),
                col(alerts.CheckinPrompt.slot_at) > care.utcnow() - timedelta(days=30),
            )
            .order_by(col(alerts.CheckinPrompt.slot_at).desc())
        )
    ).all()
    owned = (
        await session.exec(
            select(devices.Device).where(
                col(devices.Device.resident_id).in_(ids), col(devices.Device.revoked_at).is_(None)
            )
        )
    ).all()
    callers = {c.resident_id for c in await video.waiting_calls(session, set(ids))}
    glances = []
    for resident in residents:
        mine = [a for a in open_alerts if a.resident_id == resident.id]
        kit = [d for d in owned if d.resident_id == resident.id]
        batteries = [d.battery_pct for d in kit if d.battery_pct is not None]
        glances.append(
            Glance(
                resident=resident,
                open_alerts=len(mine),
                worst_severity=min(
                    (a.severity for a in mine), key=lambda s: SEVERITY_ORDER.get(s, 9), default=None
                ),
                last_checkin=next((p for p in prompts if p.resident_id == resident.id), None),
                devices_online=sum(1 for d in kit if d.online),
                devices_total=len(kit),
                lowest_battery=min(batteries, default=None),
                waiting_call=resident.id in callers,
            )
        )
    return glances


@get("/console/residents", include_in_schema=False)
async def residents_list(request: Request[Any, Any, Any], sessions: Sessions) -> Template:
    """Every resident of the caller's teams with their state at a glance."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, "residents")
    async with sessions() as session:
        ids = await care.residents_of_teams(session, viewer.identity.team_ids)
        residents = [
            await visible_resident(
                session, viewer.identity, resident_id, action="console.residents"
            )
            for resident_id in sorted(ids)
        ]
        residents.sort(key=lambda r: r.full_name)
        glances = await _glances(session, [r for r in residents if r.is_active])
        await session.commit()
    return console_page(
        request, viewer, "console_residents.html", section="residents", glances=glances
    )


async def _limits(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, resident_id: int
) -> dict[tuple[str, str], Bounds]:
    """(reading type, field) → (min, max) from the resident's effective vital-range rules."""
    found: dict[tuple[str, str], Bounds] = {}
    for rule in await alerts.RuleEngine(sessions).rules_for(session, resident_id):
        params = rule.params
        if rule.kind != "vital_range" or "type" not in params or "field" not in params:
            continue
        key = (str(params["type"]), str(params["field"]))
        low, high = found.get(key, (None, None))
        if params.get("min") is not None:
            low = float(params["min"])
        if params.get("max") is not None:
            high = float(params["max"])
        found[key] = (low, high)
    return found


async def _charts(
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    resident_id: int,
    *,
    since: datetime,
    until: datetime,
    time_zone: str,
) -> list[Chart]:
    """One chart per vital sign the resident has readings of in the period."""
    readings = (
        await session.exec(
            select(devices.Reading)
            .where(
                devices.Reading.resident_id == resident_id,
                col(devices.Reading.type).in_(sorted({v[1] for v in VITALS})),
                col(devices.Reading.received_at) >= since,
            )
            .order_by(col(devices.Reading.received_at))
        )
    ).all()
    limits = await _limits(sessions, session, resident_id)
    charts = []
    for key, type_, fields, unit in VITALS:
        lines = {
            name: [
                (r.device_ts or r.received_at, float(r.values[name]))
                for r in readings
                if r.type == type_ and isinstance(r.values.get(name), int | float)
            ]
            for name in fields
        }
        lines = {name: points for name, points in lines.items() if points}
        if not lines:
            continue
        charts.append(
            vital_chart(
                key,
                lines,
                {name: limits.get((type_, name), (None, None)) for name in lines},
                since=since,
                until=until,
                unit=unit,
                time_zone=time_zone,
            )
        )
    return charts


@get("/console/residents/{resident_id:int}", include_in_schema=False)
async def resident_page(
    request: Request[Any, Any, Any], resident_id: FromPath[int], sessions: Sessions
) -> Template:
    """One resident: vitals, events, check-ins, alerts, devices and contacts."""
    viewer = await viewer_of(request, sessions)
    refuse_technician(viewer, f"resident {resident_id}")
    try:
        days = int(request.query_params.get("days", "30"))
    except ValueError:
        days = 30
    days = days if days in PERIODS else 30
    until = care.utcnow()
    since = until - timedelta(days=days)
    async with sessions() as session:
        resident = await visible_resident(
            session,
            viewer.identity,
            resident_id,
            action="console.resident",
            context=f"resident page, {days} days",
        )
        charts = await _charts(
            sessions, session, resident_id, since=since, until=until, time_zone=viewer.time_zone
        )
        events = (
            await session.exec(
                select(devices.Event)
                .where(devices.Event.resident_id == resident_id)
                .order_by(col(devices.Event.received_at).desc())
                .limit(15)
            )
        ).all()
        open_alerts = (
            await session.exec(
                select(alerts.Alert)
                .where(
                    alerts.Alert.resident_id == resident_id,
                    alerts.Alert.status != alerts.AlertStatus.RESOLVED,
                )
                .order_by(col(alerts.Alert.last_seen_at).desc())
            )
        ).all()
        recent_alerts = (
            await session.exec(
                select(alerts.Alert)
                .where(
                    alerts.Alert.resident_id == resident_id,
                    alerts.Alert.status == alerts.AlertStatus.RESOLVED,
                )
                .order_by(col(alerts.Alert.resolved_at).desc())
                .limit(5)
            )
        ).all()
        adherence = [await alerts.adherence(session, resident_id, until, d) for d in (7, 30)]
        plans = (
            await session.exec(
                select(alerts.CheckinPlan)
                .where(alerts.CheckinPlan.resident_id == resident_id)
                .order_by(col(alerts.CheckinPlan.id))
            )
        ).all()
        contacts = (
            await session.exec(
                select(care.Contact)
                .where(care.Contact.resident_id == resident_id)
                .order_by(col(care.Contact.is_emergency_contact).desc(), col(care.Contact.name))
            )
        ).all()
        owned = (
            await session.exec(
                select(devices.Device)
                .where(
                    devices.Device.resident_id == resident_id,
                    col(devices.Device.revoked_at).is_(None),
                )
                .order_by(col(devices.Device.kind))
            )
        ).all()
        waiting = await video.waiting_calls(session, {resident_id})
        await session.commit()
    return console_page(
        request,
        viewer,
        "console_resident.html",
        section="residents",
        resident=resident,
        days=days,
        periods=PERIODS,
        charts=charts,
        events=events,
        open_alerts=open_alerts,
        recent_alerts=recent_alerts,
        adherence=adherence,
        plans=plans,
        contacts=contacts,
        devices=owned,
        waiting=waiting,
        notice=request.query_params.get("notice"),
    )


RESIDENT_ROUTES: list[ControllerRouterHandler] = [residents_list, resident_page]
