"""Console sessions kept in the database, sign-in with rate limits and a second factor.

The browser holds a random session id in an HttpOnly cookie; the database holds only its
SHA-256, so every instance knows every session and a copy of the table signs nobody in.
A session ends on sign-out, when unused for the idle timeout, and at its absolute end.
Its CSRF token is derived from the session id, so it changes with every sign-in.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from litestar.exceptions import ServiceUnavailableException
from sqlalchemy import delete, func, or_
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care

log = logging.getLogger(__name__)

SESSION_COOKIE = "vaki_session"
# Over https the cookie takes the __Host- prefix: browsers then accept it only when Secure,
# for path / and without a Domain, so a sibling host cannot plant or widen it.
SECURE_SESSION_COOKIE = "__Host-vaki_session"
LOGIN_FORM_COOKIE = "vaki_login_form"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Writing last-seen on every request would make each page view a write; a minute's
# precision is plenty for an idle timeout counted in tens of minutes.
_TOUCH_EVERY = timedelta(minutes=1)
# Old sign-in attempts are forgotten after this, whatever the lockout window.
_KEEP_ATTEMPTS = timedelta(days=1)


@dataclass(frozen=True)
class AccessPolicy:
    """How long sessions last, how many failed sign-ins shut a door and for how long, and the
    clock."""

    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_timeout: timedelta = timedelta(hours=12)
    max_failures: int = 5
    max_failures_per_address: int = 50
    lockout_window: timedelta = timedelta(minutes=15)
    # The longest a (username, address) pair waits however often it fails.
    max_lockout: timedelta = timedelta(hours=24)
    # How often a live stream checks that its session or token still holds.
    stream_recheck: timedelta = timedelta(seconds=5)
    secure_cookies: bool = False
    clock: Callable[[], datetime] = field(default=care.utcnow)

    @property
    def session_cookie(self) -> str:
        """The session cookie's name."""
        return SECURE_SESSION_COOKIE if self.secure_cookies else SESSION_COOKIE


@dataclass
class StaffAccess:
    """What the web layer needs to sign staff in: the policy and the database."""

    policy: AccessPolicy
    database: Callable[[], async_sessionmaker[AsyncSession] | None]

    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The database sessions; 503 while the database is not open."""
        database = self.database()
        if database is None:
            raise ServiceUnavailableException("the database is not open")
        return database


def _digest(session_id: str) -> str:
    """What the database stores of a session id (it has 256 random bits: no salt needed)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token_for(session_id: str) -> str:
    """The CSRF token of a session: forms and scripts send it back with every change."""
    return hmac.new(session_id.encode(), b"vaki csrf token", hashlib.sha256).hexdigest()


def csrf_token_matches(session_id: str, token: str | None) -> bool:
    """True when ``token`` is the session's CSRF token."""
    return token is not None and hmac.compare_digest(csrf_token_for(session_id), token)


class SessionService:
    """Console sessions in the database: start, look up (with timeouts) and end."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: AccessPolicy) -> None:
        self._sessions = sessions
        self._policy = policy

    async def start(
        self, staff_id: int, client_address: str = "", *, replacing: str | None = None
    ) -> str:
        """A new session for ``staff_id``; the one the browser had before ends (fixation)."""
        now = self._policy.clock()
        session_id = secrets.token_urlsafe(32)
        async with self._sessions() as session:
            if replacing:
                await session.exec(
                    delete(care.StaffSession).where(
                        col(care.StaffSession.id_hash) == _digest(replacing)
                    )
                )
            await self._forget_ended(session, now)
            session.add(
                care.StaffSession(
                    id_hash=_digest(session_id),
                    staff_id=staff_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self._policy.absolute_timeout,
                    client_address=client_address[:64],
                )
            )
            await session.commit()
        return session_id

    async def resolve(self, session_id: str) -> care.StaffUser | None:
        """The active staff member of a live session; None (and the session gone) otherwise."""
        now = self._policy.clock()
        async with self._sessions() as session:
            row = (
                await session.exec(
                    select(care.StaffSession).where(
                        care.StaffSession.id_hash == _digest(session_id)
                    )
                )
            ).first()
            if row is None:
                return None
            staff = await session.get(care.StaffUser, row.staff_id)
            ended = now >= row.expires_at or now - row.last_seen_at >= self._policy.idle_timeout
            if ended or staff is None or not staff.is_active:
                await session.delete(row)
                await session.commit()
                return None
            if now - row.last_seen_at >= _TOUCH_EVERY:
                row.last_seen_at = now
                session.add(row)
                await session.commit()
            return staff

    async def end(self, session_id: str) -> None:
        """Sign out: the session is gone from the database, for every instance."""
        async with self._sessions() as session:
            await session.exec(
                delete(care.StaffSession).where(
                    col(care.StaffSession.id_hash) == _digest(session_id)
                )
            )
            await session.commit()

    async def _forget_ended(self, session: AsyncSession, now: datetime) -> None:
        """Delete sessions past their end or idle too long (anyone's: housekeeping)."""
        await session.exec(
            delete(care.StaffSession).where(
                or_(
                    col(care.StaffSession.expires_at) <= now,
                    col(care.StaffSession.last_seen_at) <= now - self._policy.idle_timeout,
                )
            )
        )


class SignInOutcome(StrEnum):
    """How a sign-in went."""

    SIGNED_IN = "signed_in"
    REFUSED = "refused"
    LOCKED_OUT = "locked_out"


@dataclass(frozen=True)
class SignIn:
    """The result of a sign-in: the new session id when it worked, the wait when locked."""

    outcome: SignInOutcome
    session_id: str | None = None
    retry_after: timedelta | None = None


@dataclass(frozen=True)
class LockState:
    """How a staff member's sign-ins stand: failures lately and until when a door is shut."""

    failures: int
    locked_until: datetime | None


@functools.cache
def _decoy_hash() -> str:
    """A hash to check unknown usernames against, so they take as long as known ones."""
    return care.hash_secret(secrets.token_urlsafe(16))


def lockout_delay(policy: AccessPolicy, failures: int) -> timedelta:
    """How long a (username, address) pair waits after ``failures`` failures in a row:
    nothing below the limit, then the lockout window, doubling with every further failure,
    up to ``max_lockout``."""
    if failures < policy.max_failures:
        return timedelta(0)
    doublings = min(failures - policy.max_failures, 20)
    grown: timedelta = policy.lockout_window * (2**doublings)
    return min(grown, policy.max_lockout)


class SignInService:
    """Username, password and (when enrolled) a one-time code, with failures rate limited.

    Every try is written to the database before the password is looked at, so the limits
    hold across instances and against a burst of concurrent tries: each try counts the
    others. Failures are limited per (username, client address), with a wait that grows with
    every failure beyond the limit, so someone who knows a nurse's username cannot lock her
    out from elsewhere; an address is limited over all usernames as well. A coordinator can
    clear a staff member's failures (``unlock``).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: AccessPolicy) -> None:
        self._sessions = sessions
        self._policy = policy

    async def sign_in(
        self,
        username: str,
        password: str,
        code: str = "",
        *,
        client_address: str = "",
        replacing: str | None = None,
    ) -> SignIn:
        """Check the credentials; on success start a session replacing the browser's old one."""
        now = self._policy.clock()
        username = username.strip()[:64]
        client_address = client_address[:64]
        async with self._sessions() as session:
            attempt = care.LoginAttempt(
                at=now, username=username, client_address=client_address, succeeded=False
            )
            session.add(attempt)
            await session.exec(
                delete(care.LoginAttempt).where(col(care.LoginAttempt.at) < now - _KEEP_ATTEMPTS)
            )
            await session.commit()  # counted before the password is checked
            wait = await self._wait(session, attempt, now)
            if wait is not None:
                await session.delete(attempt)  # a try refused unchecked is not held against them
                await session.commit()
                log.warning("sign-in locked out: %r from %s", username, client_address)
                return SignIn(SignInOutcome.LOCKED_OUT, retry_after=wait)
            staff = (
                await session.exec(
                    select(care.StaffUser).where(care.StaffUser.username == username)
                )
            ).first()
            # argon2 is deliberately slow: keep it off the event loop.
            password_hash = (
                staff.password_hash if staff is not None else await asyncio.to_thread(_decoy_hash)
            )
            matches = await asyncio.to_thread(care.verify_secret, password_hash, password)
            accepted = (
                matches
                and staff is not None
                and staff.is_active
                and (staff.totp_secret is None or await care.accept_totp(session, staff, code, now))
            )
            if not accepted or staff is None or staff.id is None:
                await session.commit()
                log.info("sign-in refused: %r from %s", username, client_address)
                return SignIn(SignInOutcome.REFUSED)
            attempt.succeeded = True
            session.add(attempt)
            staff.last_login_at = now
            session.add(staff)
            await session.commit()
            staff_id = staff.id
        session_id = await SessionService(self._sessions, self._policy).start(
            staff_id, client_address, replacing=replacing
        )
        log.info("signed in: %r from %s", username, client_address)
        return SignIn(SignInOutcome.SIGNED_IN, session_id)

    async def _wait(
        self, session: AsyncSession, attempt: care.LoginAttempt, now: datetime
    ) -> timedelta | None:
        """How long this try must wait (None: it may be checked), counting every try
        written so far, its own and concurrent ones included."""
        policy = self._policy
        row = care.LoginAttempt
        others = await self._pair_failures(
            session, attempt.username, attempt.client_address, now, but=attempt.id
        )
        if len(others) >= policy.max_failures:
            wait = max(others) + lockout_delay(policy, len(others)) - now
            if wait > timedelta(0):
                return wait
        by_address = (
            await session.exec(
                select(func.count()).where(
                    row.client_address == attempt.client_address,
                    col(row.succeeded).is_(False),
                    col(row.at) >= now - policy.lockout_window,
                )
            )
        ).one()
        if by_address > policy.max_failures_per_address:
            return policy.lockout_window
        return None

    async def _pair_failures(
        self,
        session: AsyncSession,
        username: str,
        client_address: str,
        now: datetime,
        *,
        but: int | None = None,
    ) -> list[datetime]:
        """When the pair's failures since its last success (within a day) happened."""
        row = care.LoginAttempt
        last_success = (
            await session.exec(
                select(func.max(row.at)).where(
                    row.username == username,
                    row.client_address == client_address,
                    col(row.succeeded).is_(True),
                )
            )
        ).one()
        since = now - _KEEP_ATTEMPTS
        if last_success is not None and care.as_utc(last_success) > since:
            since = care.as_utc(last_success)
        query = select(row.at).where(
            row.username == username,
            row.client_address == client_address,
            col(row.succeeded).is_(False),
            col(row.at) >= since,
        )
        if but is not None:
            query = query.where(col(row.id) != but)
        return [care.as_utc(at) for at in (await session.exec(query)).all()]

    async def lock_state(self, username: str) -> LockState:
        """Failures of ``username`` lately (all addresses) and, when one of their doors is
        shut, until when."""
        now = self._policy.clock()
        row = care.LoginAttempt
        async with self._sessions() as session:
            addresses = (
                await session.exec(
                    select(row.client_address)
                    .where(row.username == username, col(row.succeeded).is_(False))
                    .distinct()
                )
            ).all()
            failures, until = 0, None
            for address in addresses:
                times = await self._pair_failures(session, username, address, now)
                failures += len(times)
                if len(times) >= self._policy.max_failures:
                    ends = max(times) + lockout_delay(self._policy, len(times))
                    if ends > now and (until is None or ends > until):
                        until = ends
        return LockState(failures=failures, locked_until=until)

    async def unlock(self, username: str) -> int:
        """Forget the failed sign-ins of ``username`` from every address; how many there were."""
        async with self._sessions() as session:
            result = await session.exec(
                delete(care.LoginAttempt).where(
                    col(care.LoginAttempt.username) == username,
                    col(care.LoginAttempt.succeeded).is_(False),
                )
            )
            await session.commit()
        return int(result.rowcount)
