"""What the web asks of devices, as one service: tablets by key, pairing, and tablet events
taken in through the same ingestion path as MQTT.

A tablet's "I need help" is an event like a panic button's: it is committed as ingestion
commits events (idempotent on the device and the tablet's own id of the press, with the
alarm path's "not handled yet" mark) and the committed batch goes to the same subscribers
an MQTT batch goes to (the alarm path first), so an alert that cannot be raised at once is
raised by the alarm sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care import Actor, Permission, Resident, residents_of_teams, utcnow, visible_resident
from devices.contract import ALARM_EVENT_TYPES, EVENT_TYPES
from devices.errors import UnknownDeviceError
from devices.ingest import BatchSubscriber, CommittedEvent, IngestedBatch
from devices.ingest.storing import store_events
from devices.models import Device, DeviceKind
from devices.pairing import (
    PairingCode,
    create_pairing_code,
    redeem_pairing_code,
    resident_tablets,
)
from devices.registry import (
    ProvisionedDevice,
    authenticate_device,
    provision_device,
    revoke_device,
    tablet_key,
)

log = logging.getLogger(__name__)

HELP_REQUEST = "help_request"


@dataclass(frozen=True)
class PairedTablet:
    """A tablet just paired: its key (shown once) and its resident's language."""

    key: str
    language: str


@dataclass(frozen=True)
class ResidentTablets:
    """A resident's tablets with access, and the pairing code just made (if one was)."""

    resident: Resident
    tablets: list[Device]
    code: PairingCode | None = None


@dataclass(frozen=True)
class TeamDevices:
    """The devices a staff member looks after, their residents, and whether they manage them."""

    devices: list[Device]
    residents: dict[int, Resident]
    manager: bool


class DeviceService:
    """Tablets and their events, for the web side."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        subscribers: Sequence[BatchSubscriber] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Work through ``sessions``; hand committed events to ``subscribers`` (the same the
        MQTT ingestion hands its batches to)."""
        self._sessions = sessions
        self._subscribers = subscribers
        self._clock = clock

    async def tablet_for_key(self, key: str) -> Device | None:
        """The active, resident-bound device a tablet key belongs to; None when not valid."""
        if not key:
            return None
        async with self._sessions() as session:
            return await authenticate_device(session, key)

    async def pair_tablet(self, code: str, *, client_address: str) -> PairedTablet:
        """Pair a tablet with a code from the care team; a wrong code is counted even so.

        Raises PairingRefusedError for a wrong, used or expired code and
        TooManyPairingAttemptsError while the address must wait.
        """
        async with self._sessions() as session:
            try:
                paired = await redeem_pairing_code(session, code, client_address=client_address)
            except Exception:
                await session.commit()  # the wrong code is counted
                raise
            resident = await session.get(Resident, paired.device.resident_id)
            await session.commit()
        assert resident is not None
        return PairedTablet(
            key=tablet_key(paired.device.id, paired.secret), language=resident.language
        )

    async def record_event(
        self,
        device: Device,
        *,
        message_id: str,
        type: str,
        data: dict[str, Any],
    ) -> CommittedEvent | None:
        """Commit one event from ``device`` as ingestion does and hand it on as a batch;
        None when this (device, message id) was committed before (a resend)."""
        received_at = self._clock()
        # An event type this version does not know waits for the alarm path too.
        is_alarm = type in ALARM_EVENT_TYPES or type not in EVENT_TYPES
        row = {
            "device_id": device.id,
            "message_id": message_id[:64],
            "resident_id": device.resident_id,
            "type": type,
            "data": data,
            "device_ts": None,
            "received_at": received_at,
            "clock_skewed": False,
            "alarm_handled_at": None if is_alarm else received_at,
        }
        async with self._sessions() as session, session.begin():
            connection = await session.connection()
            stored = await store_events(connection, [row])
        if not stored:
            return None
        batch = IngestedBatch(readings=(), events=tuple(stored))
        for subscriber in self._subscribers:
            try:
                await subscriber(batch)
            except Exception:
                # Stored and unhandled: the alarm sweep raises it within seconds.
                log.exception("a subscriber failed on tablet event %s", stored[0].id)
        return stored[0]

    async def ask_for_help(self, device: Device, request_id: str) -> bool:
        """ "I need help" from the tablet page: an alarm, as a panic button's; False for a
        resend of the same press (``request_id`` is the tablet's own id of it)."""
        committed = await self.record_event(
            device, message_id=f"help-{request_id}", type=HELP_REQUEST, data={"via": "tablet page"}
        )
        if committed is None:
            log.info("help request %s from %s was already recorded", request_id, device.id)
            return False
        log.warning("resident %s asked for help on tablet %s", device.resident_id, device.id)
        return True

    async def resident_tablets(
        self, actor: Actor, resident_id: int, *, new_code: bool = False
    ) -> ResidentTablets:
        """The resident's tablets for staff who pair them; with ``new_code``, a fresh one-time
        pairing code too (the resident's previous unused code stops working)."""
        actor.require(Permission.PAIR_TABLET)
        action = "tablet.pairing.create" if new_code else "tablet.pairing.read"
        async with self._sessions() as session, session.begin():
            resident = await visible_resident(session, actor, resident_id, action=action)
            code = (
                await create_pairing_code(session, resident_id, staff_id=actor.staff_id)
                if new_code
                else None
            )
            tablets = await resident_tablets(session, resident_id)
        return ResidentTablets(resident=resident, tablets=tablets, code=code)

    async def revoke_tablet(self, actor: Actor, resident_id: int, device_id: str) -> None:
        """End a tablet's access (lost, broken, handed on): its key stops working at once."""
        actor.require(Permission.PAIR_TABLET)
        async with self._sessions() as session, session.begin():
            await visible_resident(
                session, actor, resident_id, action="tablet.revoke", context=device_id
            )
            device = await session.get(Device, device_id)
            if device is None or device.resident_id != resident_id:
                raise UnknownDeviceError(f"no tablet {device_id} for this resident")
            await revoke_device(session, device_id)

    async def team_devices(self, actor: Actor) -> TeamDevices:
        """Active devices of the caller's teams' residents (and, for those who manage devices,
        the ones of nobody yet); looking at the list is logged per resident."""
        actor.require(Permission.READ_DEVICES)
        manager = actor.may(Permission.MANAGE_DEVICES)
        async with self._sessions() as session, session.begin():
            resident_ids = await residents_of_teams(session, actor.team_ids)
            mine = col(Device.resident_id).in_(sorted(resident_ids))
            owner = or_(mine, col(Device.resident_id).is_(None)) if manager else mine
            rows = await session.exec(
                select(Device)
                .where(owner, col(Device.revoked_at).is_(None))
                .order_by(col(Device.resident_id), col(Device.kind))
            )
            found = list(rows.all())
            residents = {
                resident_id: await visible_resident(
                    session, actor, resident_id, action="console.devices", context="device list"
                )
                for resident_id in sorted(resident_ids)
            }
        return TeamDevices(devices=found, residents=residents, manager=manager)

    async def add_device(
        self, actor: Actor, *, kind: DeviceKind, resident_id: int | None, label: str = ""
    ) -> ProvisionedDevice:
        """Register a device (for a resident of the caller's teams, or nobody yet); its
        secret is in the answer, once."""
        actor.require(Permission.MANAGE_DEVICES)
        async with self._sessions() as session, session.begin():
            if resident_id is not None:
                await visible_resident(session, actor, resident_id, action="console.device_add")
            return await provision_device(
                session, kind=kind, resident_id=resident_id, label=label[:200]
            )

    async def revoke(self, actor: Actor, device_id: str) -> None:
        """Shut a device out: its secret no longer opens the broker or the tablet API."""
        actor.require(Permission.MANAGE_DEVICES)
        async with self._sessions() as session, session.begin():
            device = await session.get(Device, device_id)
            mine = await residents_of_teams(session, actor.team_ids)
            if device is None or (
                device.resident_id is not None and device.resident_id not in mine
            ):
                raise UnknownDeviceError(f"no device {device_id}")
            await revoke_device(session, device_id)
