"""Pairing a resident's tablet with a one-time code instead of a password.

A coordinator asks for a short code (eight digits, valid a quarter of an hour, good for
one tablet); typing it on the tablet provisions a tablet device for the resident and hands
the tablet its long-lived device key. Only a hash of the code is stored, a new code
replaces the resident's unused one, and tries are counted per address (each recorded
before it is checked) so guessing stops long before it could succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, func, update
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care import BigIntId, UTCDateTime, get_resident, utcnow
from devices.errors import PairingRefusedError, TooManyPairingAttemptsError
from devices.models import Device, DeviceKind
from devices.registry import ProvisionedDevice, provision_device

CODE_DIGITS = 8
CODE_LIFETIME = timedelta(minutes=15)
# Wrong codes one address may try within the window before it has to wait.
MAX_WRONG_CODES = 5
WRONG_CODE_WINDOW = timedelta(minutes=15)


class TabletPairing(SQLModel, table=True):
    """A one-time code that pairs one tablet with a resident."""

    __tablename__ = "tablet_pairing"

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True, ondelete="CASCADE")
    # SHA-256 of the digits: the code itself is shown once and never stored.
    code_hash: str = Field(sa_type=String(64), index=True)
    created_by: int | None = Field(default=None, foreign_key="staff_user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    device_id: str | None = Field(
        default=None, foreign_key="device.id", max_length=64, ondelete="SET NULL"
    )


class PairingAttempt(SQLModel, table=True):
    """One code typed on a tablet, right or wrong, for the per-address limit."""

    __tablename__ = "tablet_pairing_attempt"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    client_address: str = Field(max_length=64, index=True)
    succeeded: bool = Field(default=False)


@dataclass(frozen=True)
class PairingCode:
    """A fresh code as staff see it once: the digits and until when they work."""

    code: str
    expires_at: datetime

    @property
    def grouped(self) -> str:
        """The digits in two groups of four, easier to read out and type: "4821 0937"."""
        half = len(self.code) // 2
        return f"{self.code[:half]} {self.code[half:]}"


def _digits(code: str) -> str:
    """Only the digits of what was typed (spaces and dashes are how people write codes)."""
    return "".join(ch for ch in code if ch.isdigit())


def _hash(digits: str) -> str:
    """The stored form of a code."""
    return hashlib.sha256(digits.encode()).hexdigest()


async def create_pairing_code(
    session: AsyncSession, resident_id: int, *, staff_id: int | None, now: datetime | None = None
) -> PairingCode:
    """A new code for the resident; any unused code of theirs stops working."""
    now = now or utcnow()
    await get_resident(session, resident_id)
    await session.exec(
        update(TabletPairing)
        .where(
            col(TabletPairing.resident_id) == resident_id,
            col(TabletPairing.used_at).is_(None),
            col(TabletPairing.expires_at) > now,
        )
        .values(expires_at=now)
    )
    while True:
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        clash = await session.exec(
            select(TabletPairing.id).where(
                col(TabletPairing.code_hash) == _hash(code),
                col(TabletPairing.used_at).is_(None),
                col(TabletPairing.expires_at) > now,
            )
        )
        if clash.first() is None:
            break
    session.add(
        TabletPairing(
            resident_id=resident_id,
            code_hash=_hash(code),
            created_by=staff_id,
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    )
    await session.flush()
    return PairingCode(code=code, expires_at=now + CODE_LIFETIME)


async def _unsuccessful_tries(session: AsyncSession, client_address: str, now: datetime) -> int:
    """Codes typed from one address within the window that did not pair (yet): wrong ones
    and those being checked right now."""
    found = await session.exec(
        select(func.count())
        .select_from(PairingAttempt)
        .where(
            col(PairingAttempt.client_address) == client_address,
            col(PairingAttempt.succeeded).is_(False),
            col(PairingAttempt.at) > now - WRONG_CODE_WINDOW,
        )
    )
    return int(found.one())


async def redeem_pairing_code(
    session: AsyncSession, code: str, *, client_address: str, now: datetime | None = None
) -> ProvisionedDevice:
    """Pair a tablet: a valid code provisions a tablet device for its resident, once.

    The try is recorded and committed before the code is looked at, so a burst of
    concurrent tries from one address counts every one of them and at most
    ``MAX_WRONG_CODES`` are checked. Raises TooManyPairingAttemptsError while the address has
    too many tries in the window (that try is not counted), and PairingRefusedError for a
    code that is wrong, used or expired (one answer for all three, so the reply tells a
    guesser nothing). On success the caller commits the new device.
    """
    now = now or utcnow()
    address = client_address[:64]
    attempt = PairingAttempt(at=now, client_address=address, succeeded=False)
    session.add(attempt)
    await session.commit()
    if await _unsuccessful_tries(session, address, now) > MAX_WRONG_CODES:
        await session.delete(attempt)
        await session.commit()
        raise TooManyPairingAttemptsError(WRONG_CODE_WINDOW)
    digits = _digits(code)
    pairing = None
    if len(digits) == CODE_DIGITS:
        pairing = (
            await session.exec(
                select(TabletPairing).where(
                    col(TabletPairing.code_hash) == _hash(digits),
                    col(TabletPairing.used_at).is_(None),
                    col(TabletPairing.expires_at) > now,
                )
            )
        ).first()
    if pairing is not None:
        # Claimed with a conditional update: two tablets typing one code pair only one.
        claimed = await session.exec(
            update(TabletPairing)
            .where(col(TabletPairing.id) == pairing.id, col(TabletPairing.used_at).is_(None))
            .values(used_at=now)
        )
        if claimed.rowcount != 1:
            pairing = None
    if pairing is None:
        raise PairingRefusedError("the code is not valid: it may be mistyped, used or expired")
    attempt.succeeded = True
    session.add(attempt)
    provisioned = await provision_device(
        session, kind=DeviceKind.TABLET, resident_id=pairing.resident_id, label="paired tablet"
    )
    await session.exec(
        update(TabletPairing)
        .where(col(TabletPairing.id) == pairing.id)
        .values(device_id=provisioned.device.id)
    )
    return provisioned


async def resident_tablets(session: AsyncSession, resident_id: int) -> list[Device]:
    """The resident's tablets that still have access, newest first."""
    found = await session.exec(
        select(Device)
        .where(
            col(Device.resident_id) == resident_id,
            col(Device.kind) == DeviceKind.TABLET,
            col(Device.revoked_at).is_(None),
        )
        .order_by(col(Device.created_at).desc())
    )
    return list(found.all())
