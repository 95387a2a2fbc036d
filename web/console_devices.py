"""Devices of the caller's teams' residents: their health (offline, silent, battery,
firmware), the technical problems the rules found, provisioning with credentials shown once,
and revoking (confirmed first, and undone within a while)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from web.auth import visible_resident
from web.console_alerts import team_resident_ids
from web.console_view import back_to, console_page, viewer_of
from web.console_words import DeviceWords

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]

# Who may add and revoke devices; everyone on the team may see them.
DEVICE_MANAGERS = frozenset({care.StaffRole.COORDINATOR.value, care.StaffRole.TECHNICIAN.value})
LOW_BATTERY_PCT = 20
# A device not heard from in this many of its reporting intervals is silent.
SILENT_AFTER_INTERVALS = 3
# A revoke can be undone this long (a panic button cut off by mistake is let back in).
UNDO_REVOKE = timedelta(minutes=15)


@dataclass(frozen=True)
class DeviceHealth:
    """One device and what is wrong with it, if anything."""

    device: devices.Device
    resident_name: str | None
    silent: bool
    low_battery: bool

    @property
    def needs_attention(self) -> bool:
        """Offline, silent or low on battery."""
        return not self.device.online or self.silent or self.low_battery


async def _team_devices(
    session: AsyncSession, resident_ids: set[int], *, unassigned: bool
) -> list[devices.Device]:
    """Active devices of these residents (and, for managers, those of nobody yet)."""
    mine = col(devices.Device.resident_id).in_(sorted(resident_ids))
    owner = or_(mine, col(devices.Device.resident_id).is_(None)) if unassigned else mine
    rows = await session.exec(
        select(devices.Device)
        .where(owner, col(devices.Device.revoked_at).is_(None))
        .order_by(col(devices.Device.resident_id), col(devices.Device.kind))
    )
    return list(rows.all())


@get("/console/devices", include_in_schema=False)
async def devices_page(request: Request[Any, Any, Any], sessions: Sessions) -> Template:
    """Device health, the form to add one, and revoking."""
    viewer = await viewer_of(request, sessions)
    identity = viewer.identity
    manager = identity.role in DEVICE_MANAGERS
    now = care.utcnow()
    async with sessions() as session:
        resident_ids = await team_resident_ids(session, identity.team_ids)
        found = await _team_devices(session, resident_ids, unassigned=manager)
        # What the rules found wrong with the devices: the technicians' queue.
        problems = await alerts.queue_alerts(
            session, identity.team_ids, identity.staff_id, alerts.QueueFilter(severity="technical")
        )
        machines = await alerts.devices_of(session, problems)
        undo = await _undoable(session, request.query_params.get("device"), resident_ids, now)
        residents = {}
        for resident_id in sorted(resident_ids):
            residents[resident_id] = await visible_resident(
                session, identity, resident_id, action="console.devices", context="device list"
            )
        await session.commit()
    health = [
        DeviceHealth(
            device=d,
            resident_name=residents[d.resident_id].full_name
            if d.resident_id in residents
            else None,
            silent=d.last_seen_at is None
            or now - d.last_seen_at
            > timedelta(seconds=d.expected_interval_s * SILENT_AFTER_INTERVALS),
            low_battery=d.battery_pct is not None and d.battery_pct < LOW_BATTERY_PCT,
        )
        for d in found
    ]
    health.sort(key=lambda h: (not h.needs_attention, h.resident_name or "", h.device.kind))
    return console_page(
        request,
        viewer,
        "console_devices.html",
        section="devices",
        health=health,
        manager=manager,
        kinds=[k.value for k in devices.DeviceKind],
        residents=sorted(residents.values(), key=lambda r: r.full_name),
        notice=request.query_params.get("notice"),
        technical=[
            (
                alert,
                DeviceWords(machines[alert.device_id].label, machines[alert.device_id].kind)
                if alert.device_id in machines
                else None,
            )
            for alert in problems
        ],
        undo=undo if manager else None,
        offline=sum(1 for h in health if not h.device.online),
        silent=sum(1 for h in health if h.silent),
        low=sum(1 for h in health if h.low_battery),
    )


@post("/console/devices", include_in_schema=False)
async def add_device(request: Request[Any, Any, Any], sessions: Sessions) -> Template | Redirect:
    """Register a device; its password (and a tablet's address) are shown this once."""
    viewer = await viewer_of(request, sessions)
    if viewer.identity.role not in DEVICE_MANAGERS:
        raise PermissionDeniedException("only a coordinator or a technician may add devices")
    form = await request.form()
    try:
        kind = devices.DeviceKind(str(form.get("kind", "")))
    except ValueError:
        return back_to("/console/devices")
    raw_resident = str(form.get("resident_id", ""))
    resident_id = int(raw_resident) if raw_resident.isdigit() else None
    async with sessions() as session:
        if resident_id is not None:
            await visible_resident(
                session, viewer.identity, resident_id, action="console.device_add"
            )
        provisioned = await devices.provision_device(
            session,
            kind=kind,
            resident_id=resident_id,
            label=str(form.get("label", "")).strip()[:200],
        )
        await session.commit()
    tablet_url = None
    if kind == devices.DeviceKind.TABLET:
        key = devices.tablet_key(provisioned.device.id, provisioned.secret)
        tablet_url = f"{str(request.base_url).rstrip('/')}/tablet/#key={key}"
    return console_page(
        request,
        viewer,
        "console_device_added.html",
        section="devices",
        device=provisioned.device,
        secret=provisioned.secret,
        tablet_url=tablet_url,
        topic=devices.device_topic(provisioned.device.id, "event").rsplit("/", 1)[0],
    )


@post("/console/devices/{device_id:str}/revoke", include_in_schema=False)
async def revoke_device(
    request: Request[Any, Any, Any], device_id: FromPath[str], sessions: Sessions
) -> Redirect:
    """Shut a device out: its password no longer opens the broker or the tablet API."""
    viewer = await viewer_of(request, sessions)
    if viewer.identity.role not in DEVICE_MANAGERS:
        raise PermissionDeniedException("only a coordinator or a technician may revoke devices")
    async with sessions() as session:
        device = await session.get(devices.Device, device_id)
        mine = await team_resident_ids(session, viewer.identity.team_ids)
        if device is None or (device.resident_id is not None and device.resident_id not in mine):
            raise NotFoundException(f"no device {device_id}")
        await devices.revoke_device(session, device_id)
        await session.commit()
    return Redirect(f"/console/devices?notice=revoked&device={device_id}", status_code=303)


async def _undoable(
    session: AsyncSession, device_id: str | None, resident_ids: set[int], now: datetime
) -> devices.Device | None:
    """A device of the caller's residents revoked so recently that it may be let back in."""
    device = await session.get(devices.Device, device_id) if device_id else None
    if (
        device is None
        or device.revoked_at is None
        or now - device.revoked_at > UNDO_REVOKE
        or (device.resident_id is not None and device.resident_id not in resident_ids)
    ):
        return None
    return device


@post("/console/devices/{device_id:str}/restore", include_in_schema=False)
async def restore_device(
    request: Request[Any, Any, Any], device_id: FromPath[str], sessions: Sessions
) -> Redirect:
    """Undo a revoke made a moment ago: the device's secret opens the broker again."""
    viewer = await viewer_of(request, sessions)
    if viewer.identity.role not in DEVICE_MANAGERS:
        raise PermissionDeniedException("only a coordinator or a technician may restore devices")
    async with sessions() as session:
        mine = await team_resident_ids(session, viewer.identity.team_ids)
        device = await _undoable(session, device_id, mine, care.utcnow())
        if device is None:
            return Redirect("/console/devices?notice=too_late_to_undo", status_code=303)
        device.revoked_at = None
        session.add(device)
        await session.commit()
    return Redirect("/console/devices?notice=restored", status_code=303)


DEVICE_ROUTES: list[ControllerRouterHandler] = [
    devices_page,
    add_device,
    revoke_device,
    restore_device,
]
