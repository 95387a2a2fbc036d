"""A second factor for staff: time-based one-time codes from an authenticator app (RFC 6238)."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.errors import NotFoundError
from care.models import StaffUser

TOTP_ISSUER = "Vaki"
# A code from the step before or after the current one is taken too: phones' clocks drift.
_DRIFT_STEPS = 1


async def enrol_totp(session: AsyncSession, username: str, issuer: str = TOTP_ISSUER) -> str:
    """Give ``username`` a new TOTP secret; return the otpauth:// URI to show once."""
    staff = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if staff is None:
        raise NotFoundError(f"no staff member has the username {username!r}")
    staff.totp_secret = pyotp.random_base32()
    staff.totp_last_step = None
    session.add(staff)
    await session.flush()
    return pyotp.TOTP(staff.totp_secret).provisioning_uri(name=username, issuer_name=issuer)


def accept_totp(staff: StaffUser, code: str, at: datetime) -> bool:
    """True, and the code used up, when ``code`` is the staff member's current code.

    A code is taken once only (RFC 6238 section 5.2): a step at or before the last one
    accepted is refused. The caller commits the change to ``staff``.
    """
    if staff.totp_secret is None:
        return False
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(staff.totp_secret)
    now = totp.timecode(at)
    for step in range(now - _DRIFT_STEPS, now + _DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if staff.totp_last_step is not None and step <= staff.totp_last_step:
                return False
            staff.totp_last_step = step
            return True
    return False
