"""Devices of the caller's teams' residents: their health (offline, silent, battery,
firmware), provisioning with credentials shown once, and revoking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
from web.console_view import back_to, console_page, viewer_of

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]

# Who may add and revoke devices; everyone on the team may see them.
LOW_BATTERY_PCT = 20
# A device not heard from in this many of its reporting intervals is silent.
SILENT_AFTER_INTERVALS = 3


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


@get("/console/devices", include_in_schema=False)
async def devices_page(request: Request[Any, Any, Any], sessions: Sessions) -> Template:
    """Device health, the form to add one, and revoking."""
    viewer = await viewer_of(request, sessions)
    now = care.utcnow()
    team = await devices.DeviceService(sessions).team_devices(viewer.identity.actor)
    residents, manager = team.residents, team.manager
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
        for d in team.devices
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
        offline=sum(1 for h in health if not h.device.online),
        silent=sum(1 for h in health if h.silent),
        low=sum(1 for h in health if h.low_battery),
    )


@post("/console/devices", include_in_schema=False)
async def add_device(request: Request[Any, Any, Any], sessions: Sessions) -> Template | Redirect:
    """Register a device; its password (and a tablet's address) are shown this once."""
    viewer = await viewer_of(request, sessions)
    viewer.identity.actor.require(care.Permission.MANAGE_DEVICES)
    form = await request.form()
    try:
        kind = devices.DeviceKind(str(form.get("kind", "")))
    except ValueError:
        return back_to("/console/devices")
    raw_resident = str(form.get("resident_id", ""))
    resident_id = int(raw_resident) if raw_resident.isdigit() else None
    provisioned = await devices.DeviceService(sessions).add_device(
        viewer.identity.actor,
        kind=kind,
        resident_id=resident_id,
        label=str(form.get("label", "")).strip(),
    )
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
    await devices.DeviceService(sessions).revoke(viewer.identity.actor, device_id)
    return Redirect("/console/devices?notice=revoked", status_code=303)


DEVICE_ROUTES: list[ControllerRouterHandler] = [devices_page, add_device, revoke_device]
