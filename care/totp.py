"""A second factor for staff: time-based one-time codes from an authenticator app (RFC 6238).

The shared secret is stored encrypted (Fernet) under a key derived from the instance
secret, so a copy of the staff table alone does not yield anyone's codes.
"""

from __future__ import annotations

import base64
import hmac
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.errors import NotFoundError
from care.instance_secret import derive_key, instance_key
from care.models import StaffUser

TOTP_ISSUER = "Vaki"
TOTP_KEY_PURPOSE = "totp secrets"
# Marks a stored secret as encrypted; rows from before encryption are plain base32.
ENCRYPTED_PREFIX = "fernet:"
# A code from the step before or after the current one is taken too: phones' clocks drift.
_DRIFT_STEPS = 1


def _fernet(key: bytes) -> Fernet:
    """Fernet with a 32-byte derived key."""
    return Fernet(base64.urlsafe_b64encode(key))


def totp_key(master: bytes) -> bytes:
    """The key stored TOTP secrets are encrypted with, from the instance secret."""
    return derive_key(master, TOTP_KEY_PURPOSE)


def seal_totp_secret(key: bytes, secret: str) -> str:
    """The stored form of a TOTP secret, encrypted under ``key``."""
    return ENCRYPTED_PREFIX + _fernet(key).encrypt(secret.encode()).decode()


def open_totp_secret(key: bytes, stored: str) -> str | None:
    """The TOTP secret from its stored form; None when it cannot be decrypted."""
    if not stored.startswith(ENCRYPTED_PREFIX):
        return stored  # written before encryption (the migration encrypts such rows)
    try:
        return _fernet(key).decrypt(stored.removeprefix(ENCRYPTED_PREFIX).encode()).decode()
    except InvalidToken:
        return None


async def enrol_totp(session: AsyncSession, username: str, issuer: str = TOTP_ISSUER) -> str:
    """Give ``username`` a new TOTP secret; return the otpauth:// URI to show once."""
    staff = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if staff is None:
        raise NotFoundError(f"no staff member has the username {username!r}")
    secret = pyotp.random_base32()
    key = await instance_key(session, TOTP_KEY_PURPOSE)
    staff.totp_secret = seal_totp_secret(key, secret)
    staff.totp_last_step = None
    session.add(staff)
    await session.flush()
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


async def totp_secret_of(session: AsyncSession, staff: StaffUser) -> str | None:
    """The staff member's TOTP secret in clear (for checking a code); None when not enrolled."""
    if staff.totp_secret is None:
        return None
    return open_totp_secret(await instance_key(session, TOTP_KEY_PURPOSE), staff.totp_secret)


async def accept_totp(session: AsyncSession, staff: StaffUser, code: str, at: datetime) -> bool:
    """True, and the code used up, when ``code`` is the staff member's current code.

    A code is taken once only (RFC 6238 section 5.2): the step is claimed with a conditional
    update, so of concurrent sign-ins with one code only one gets it. The caller commits.
    """
    secret = await totp_secret_of(session, staff)
    code = "".join(code.split())
    if secret is None or staff.id is None or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    now = totp.timecode(at)
    for step in range(now - _DRIFT_STEPS, now + _DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            claimed = await session.exec(
                update(StaffUser)
                .where(
                    col(StaffUser.id) == staff.id,
                    or_(
                        col(StaffUser.totp_last_step).is_(None),
                        col(StaffUser.totp_last_step) < step,
                    ),
                )
                .values(totp_last_step=step)
            )
            return claimed.rowcount == 1
    return False
