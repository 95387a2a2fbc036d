"""API tokens: a bearer secret that acts for one staff member, stored only hashed."""

from __future__ import annotations

import secrets

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.errors import NotFoundError
from care.models import ApiToken, StaffUser, TeamMembership
from care.secrets import hash_machine_secret, verify_machine_secret
from care.storage import utcnow

TOKEN_PREFIX = "vaki_"  # noqa: S105 (a marker, not a secret)


async def create_api_token(session: AsyncSession, username: str, label: str = "") -> str:
    """A new token for ``username``; the whole token is shown once and stored hashed."""
    staff = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if staff is None or staff.id is None:
        raise NotFoundError(f"no staff member has the username {username!r}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            staff_id=staff.id, prefix=prefix, token_hash=hash_machine_secret(secret), label=label
        )
    )
    await session.flush()
    return f"{TOKEN_PREFIX}{prefix}_{secret}"


async def staff_for_token(session: AsyncSession, token: str) -> StaffUser | None:
    """The active staff member a valid, unrevoked token acts for; None otherwise."""
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        return None
    prefix, _, secret = token.removeprefix(TOKEN_PREFIX).partition("_")
    row = (
        await session.exec(
            select(ApiToken).where(ApiToken.prefix == prefix, col(ApiToken.revoked_at).is_(None))
        )
    ).first()
    if row is None or not verify_machine_secret(row.token_hash, secret):
        return None
    staff = await session.get(StaffUser, row.staff_id)
    return staff if staff is not None and staff.is_active else None


async def revoke_api_token(session: AsyncSession, prefix: str) -> None:
    """Stop a token from working."""
    row = (await session.exec(select(ApiToken).where(ApiToken.prefix == prefix))).first()
    if row is None:
        raise NotFoundError(f"no token starts with {prefix!r}")
    row.revoked_at = utcnow()
    session.add(row)


async def team_ids_of(session: AsyncSession, staff_id: int) -> set[int]:
    """The care teams a staff member belongs to: what they may see."""
    rows = await session.exec(
        select(TeamMembership.team_id).where(TeamMembership.staff_id == staff_id)
    )
    return set(rows.all())
