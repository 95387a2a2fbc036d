"""The instance secret: random bytes kept in the database, from which purpose keys derive.

Every instance reading the same database derives the same keys, and a restart changes
nothing, so a room token signed by one instance opens a room on another and an encrypted
second factor stays readable. The migration that introduced it writes it; a database made
otherwise gets one on first use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlmodel.ext.asyncio.session import AsyncSession

from care.models import InstanceSecret

MASTER = "master"


def derive_key(master: bytes, purpose: str) -> bytes:
    """The 32-byte key for one purpose (HMAC-SHA256 of the purpose under the master)."""
    return hmac.new(master, f"vaki key: {purpose}".encode(), hashlib.sha256).digest()


def new_master_value() -> str:
    """A fresh master secret as stored (URL-safe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


async def instance_key(session: AsyncSession, purpose: str) -> bytes:
    """The key for ``purpose`` derived from the stored instance secret (made when absent;
    the caller commits)."""
    row = await session.get(InstanceSecret, MASTER)
    if row is None:
        row = InstanceSecret(name=MASTER, value=new_master_value())
        session.add(row)
        await session.flush()
    return derive_key(base64.urlsafe_b64decode(row.value), purpose)
