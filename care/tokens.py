"""API tokens: a bearer secret that acts for one staff member, stored only hashed.

A token works until it expires or is revoked, and only while its staff member is active;
deactivating a staff member ends their console sessions and revokes their tokens.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from care.errors import NotFoundError
from care.models import ApiToken, StaffSession, StaffUser, TeamMembership
from care.secrets import check_machine_secret, hash_machine_secret
from care.storage import as_utc, utcnow

TOKEN_PREFIX = "vaki_"  # noqa: S105 (a marker, not a secret)
DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
_PREFIX_LENGTH = 12


@dataclass(frozen=True)
class TokenInfo:
    """A token as an administrator sees it: never the secret."""

    id: int
    prefix: str
    username: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and as_utc(self.expires_at) <= now:
            return "expired"
        return "active"


async def _staff_named(session: AsyncSession, username: str) -> StaffUser:
    """The staff member with this username; NotFoundError otherwise."""
    staff = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if staff is None or staff.id is None:
        raise NotFoundError(f"no staff member has the username {username!r}")
    return staff


async def create_api_token(
    session: AsyncSession,
    username: str,
    label: str = "",
    *,
    lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    now: datetime | None = None,
) -> str:
    """A new token for ``username`` valid for ``lifetime``; the whole token is shown once and
    stored hashed."""
    staff = await _staff_named(session, username)
    assert staff.id is not None
    now = now or utcnow()
    prefix = secrets.token_hex(_PREFIX_LENGTH // 2)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            staff_id=staff.id,
            prefix=prefix,
            token_hash=hash_machine_secret(secret),
            label=label,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    await session.flush()
    return f"{TOKEN_PREFIX}{prefix}_{secret}"


def token_prefix(token: str) -> str | None:
    """The prefix that finds a token's row (not secret); None for what is not a token."""
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        return None
    return token.removeprefix(TOKEN_PREFIX).partition("_")[0]


async def token_for(
    session: AsyncSession, token: str, *, now: datetime | None = None
) -> tuple[ApiToken, StaffUser] | None:
    """The live token row and the active staff member it acts for; None otherwise.

    argon2, when the token has not been seen lately, runs off the event loop.
    """
    prefix = token_prefix(token)
    if prefix is None:
        return None
    secret = token.removeprefix(TOKEN_PREFIX).partition("_")[2]
    now = now or utcnow()
    row = (
        await session.exec(
            select(ApiToken).where(ApiToken.prefix == prefix, col(ApiToken.revoked_at).is_(None))
        )
    ).first()
    if row is None or (row.expires_at is not None and as_utc(row.expires_at) <= now):
        return None
    if not await check_machine_secret(row.token_hash, secret):
        return None
    staff = await session.get(StaffUser, row.staff_id)
    return (row, staff) if staff is not None and staff.is_active else None


async def staff_for_token(
    session: AsyncSession, token: str, *, now: datetime | None = None
) -> StaffUser | None:
    """The active staff member a valid, unexpired, unrevoked token acts for; None otherwise."""
    found = await token_for(session, token, now=now)
    return found[1] if found is not None else None


async def list_api_tokens(session: AsyncSession, username: str | None = None) -> list[TokenInfo]:
    """Every token (or one staff member's), oldest first."""
    query = select(ApiToken, StaffUser.username).join(
        StaffUser, col(StaffUser.id) == col(ApiToken.staff_id)
    )
    if username is not None:
        await _staff_named(session, username)
        query = query.where(StaffUser.username == username)
    rows = await session.exec(query.order_by(col(ApiToken.id)))
    return [
        TokenInfo(
            id=token.id or 0,
            prefix=token.prefix,
            username=name,
            label=token.label,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )
        for token, name in rows.all()
    ]


async def revoke_api_token(
    session: AsyncSession, token: int | str, *, now: datetime | None = None
) -> ApiToken:
    """Stop a token from working, named by its id or its prefix (the caller commits)."""
    # A prefix is 12 hex digits; anything shorter made of digits is an id.
    by_id = isinstance(token, int) or (token.isdigit() and len(token) < _PREFIX_LENGTH)
    query = select(ApiToken).where(
        col(ApiToken.id) == int(token) if by_id else col(ApiToken.prefix) == str(token)
    )
    row = (await session.exec(query)).first()
    if row is None:
        raise NotFoundError(f"no token {token!r}")
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        session.add(row)
    return row


async def deactivate_staff(
    session: AsyncSession, username: str, *, now: datetime | None = None
) -> StaffUser:
    """A staff member who has left: no sign-in, sessions ended, tokens revoked (the caller
    commits). Their name stays on what they did."""
    staff = await _staff_named(session, username)
    now = now or utcnow()
    staff.is_active = False
    session.add(staff)
    await session.exec(delete(StaffSession).where(col(StaffSession.staff_id) == staff.id))
    await session.exec(
        update(ApiToken)
        .where(col(ApiToken.staff_id) == staff.id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return staff


async def team_ids_of(session: AsyncSession, staff_id: int) -> set[int]:
    """The care teams a staff member belongs to: what they may see."""
    rows = await session.exec(
        select(TeamMembership.team_id).where(TeamMembership.staff_id == staff_id)
    )
    return set(rows.all())
