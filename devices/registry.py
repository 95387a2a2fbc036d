"""Provisioning and revoking devices."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care import check_machine_secret, get_resident, hash_machine_secret, new_secret, utcnow
from devices.errors import UnknownDeviceError
from devices.models import EXPECTED_INTERVAL_S, Device, DeviceKind, Event
from devices.mosquitto_auth import mosquitto_hash


@dataclass(frozen=True)
class ProvisionedDevice:
    """A new device and its secret, which is shown once and stored only hashed."""

    device: Device
    secret: str


def new_device_id(kind: DeviceKind) -> str:
    """A random, readable device id such as ``scale-3f9a1c2b7d``."""
    short = kind.value.split("_")[0]
    return f"{short}-{secrets.token_hex(5)}"


async def provision_device(
    session: AsyncSession,
    *,
    kind: DeviceKind,
    resident_id: int | None,
    label: str = "",
    device_id: str | None = None,
) -> ProvisionedDevice:
    """Register a device for a resident with a fresh random secret."""
    if resident_id is not None:
        await get_resident(session, resident_id)
    secret = new_secret()
    device = Device(
        id=device_id or new_device_id(kind),
        kind=kind,
        resident_id=resident_id,
        label=label,
        secret_hash=hash_machine_secret(secret),
        broker_password_hash=mosquitto_hash(secret),
        expected_interval_s=EXPECTED_INTERVAL_S[kind],
    )
    session.add(device)
    await session.flush()
    return ProvisionedDevice(device=device, secret=secret)


async def reset_device_secret(session: AsyncSession, device: Device) -> str:
    """Give a device a new secret (the old one stops working) and return it."""
    secret = new_secret()
    device.secret_hash = hash_machine_secret(secret)
    device.broker_password_hash = mosquitto_hash(secret)
    session.add(device)
    return secret


async def active_broker_logins(session: AsyncSession) -> list[tuple[str, str]]:
    """(device id, Mosquitto hash) of every device that is not revoked."""
    rows = await session.exec(
        select(Device.id, Device.broker_password_hash)
        .where(col(Device.revoked_at).is_(None), col(Device.broker_password_hash).is_not(None))
        .order_by(col(Device.id))
    )
    return [(device_id, password_hash) for device_id, password_hash in rows if password_hash]


async def revoke_device(session: AsyncSession, device_id: str) -> Device:
    """End a device's access: its secret no longer opens the broker."""
    device = await session.get(Device, device_id)
    if device is None:
        raise UnknownDeviceError(f"no device has id {device_id!r}")
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        device.online = False
        session.add(device)
    return device


# A tablet on the web is heard on every request; its row is written at most this often.
SEEN_EVERY = timedelta(seconds=30)


async def note_seen(session: AsyncSession, device_id: str, now: datetime) -> None:
    """A device that spoke over the web (a tablet polling or holding its socket) is online and
    seen now, like one whose status came over MQTT; the row is written at most every 30 s."""
    await session.exec(
        update(Device)
        .where(
            col(Device.id) == device_id,
            col(Device.revoked_at).is_(None),
            or_(col(Device.last_seen_at).is_(None), col(Device.last_seen_at) < now - SEEN_EVERY),
        )
        .values(online=True, last_seen_at=now)
    )


async def mark_alarms_handled(session: AsyncSession, event_ids: list[int], at: datetime) -> None:
    """Record that the alarm path has dealt with these events."""
    if event_ids:
        await session.exec(
            update(Event)
            .where(col(Event.id).in_(event_ids), col(Event.alarm_handled_at).is_(None))
            .values(alarm_handled_at=at)
        )


async def unhandled_alarm_events(session: AsyncSession, older_than: datetime) -> list[Event]:
    """Alarm events received before ``older_than`` that the alarm path has not seen."""
    found = await session.exec(
        select(Event)
        .where(col(Event.alarm_handled_at).is_(None), col(Event.received_at) < older_than)
        .order_by(col(Event.id))
        .limit(500)
    )
    return list(found.all())


# Devices that show prompts and reminders to the resident.
COMMAND_KINDS = (DeviceKind.TABLET, DeviceKind.HOME_HUB)


async def command_targets(session: AsyncSession, resident_ids: list[int]) -> dict[int, list[str]]:
    """The active devices of each resident that take prompts (tablets and home hubs)."""
    targets: dict[int, list[str]] = {}
    for start in range(0, len(resident_ids), 1000):
        chunk = resident_ids[start : start + 1000]
        rows = await session.exec(
            select(Device.resident_id, Device.id).where(
                col(Device.resident_id).in_(chunk),
                col(Device.kind).in_(list(COMMAND_KINDS)),
                col(Device.revoked_at).is_(None),
            )
        )
        for resident_id, device_id in rows.all():
            if resident_id is not None:
                targets.setdefault(resident_id, []).append(device_id)
    return targets


# A tablet's web credential: its device id and secret, the same pair it uses on MQTT. Only
# devices of the tablet kind have one.
TABLET_KEY_PREFIX = "vakid."


def tablet_key(device_id: str, secret: str) -> str:
    """The bearer key a tablet shows the web API (``vakid.<device id>.<secret>``)."""
    return f"{TABLET_KEY_PREFIX}{device_id}.{secret}"


async def authenticate_device(session: AsyncSession, key: str) -> Device | None:
    """The active, resident-bound tablet a tablet key belongs to; None when it is not valid.

    Only a tablet's key opens the tablet API: a cuff's or a pendant's secret, right as it is
    on MQTT, is no tablet key. argon2, when needed, runs off the event loop.
    """
    if not key.startswith(TABLET_KEY_PREFIX):
        return None
    device_id, _, secret = key.removeprefix(TABLET_KEY_PREFIX).partition(".")
    if not device_id or not secret:
        return None
    device = await session.get(Device, device_id)
    if (
        device is None
        or device.kind != DeviceKind.TABLET
        or device.revoked_at is not None
        or device.resident_id is None
    ):
        return None
    return device if await check_machine_secret(device.secret_hash, secret) else None
