"""Passwords and device secrets: generated at random, stored only as argon2 hashes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# People choose guessable passwords: argon2-cffi's default, RFC 9106's low-memory profile.
_password_hasher = PasswordHasher()
# Machine secrets carry 192 random bits and cannot be guessed however cheap a try is, so a
# light argon2id keeps provisioning and broker reconnect storms fast without losing safety.
_machine_secret_hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


def hash_secret(secret: str) -> str:
    """Hash a password a person chose or was given, with argon2id."""
    return _password_hasher.hash(secret)


def hash_machine_secret(secret: str) -> str:
    """Hash a random secret made by ``new_secret`` (device credentials, tokens), argon2id."""
    return _machine_secret_hasher.hash(secret)


def verify_secret(secret_hash: str, secret: str) -> bool:
    """True when ``secret`` matches ``secret_hash``; a malformed hash never matches."""
    try:
        # The parameters live in the hash itself, so one verifier checks both kinds.
        return _password_hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


# Machine secrets already verified: stored hash → SHA-256 of the secret that matched it. A
# tablet polling every few seconds, or an integration calling the API, then costs a hash
# lookup instead of an argon2 run each time. A new secret has a new hash, so resetting one
# forgets the old; revocation is checked on the row by the caller.
_verified: OrderedDict[str, bytes] = OrderedDict()
_VERIFIED_MAX = 65_536
# Wrong secrets seen lately: (stored hash, SHA-256 of the wrong secret) → when to forget it.
# A client retrying a stale key, or a flood of one wrong key, then costs a lookup too. Short,
# so a secret that becomes right (it cannot, short of a reset, which changes the hash) or a
# cache filled on purpose forgets soon.
_refused: OrderedDict[tuple[str, bytes], float] = OrderedDict()
_REFUSED_MAX = 65_536
REFUSED_FOR_S = 60.0
# argon2 runs for machine secrets on these threads, never on the event loop that carries
# alarms; two threads bound what a flood of wrong keys can take from the machine.
_argon2_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vaki-argon2")


@dataclass
class MachineSecretStats:
    """How machine-secret checks went since start (for the benchmark and the tests)."""

    argon2_runs: int = 0
    # argon2 runs on a thread that runs an event loop: a mistake that stalls it.
    argon2_runs_on_a_loop: int = 0
    remembered_matches: int = 0
    remembered_refusals: int = 0


machine_secret_stats = MachineSecretStats()


def _remembered(secret_hash: str, digest: bytes, now: float) -> bool | None:
    """True or False when this secret was checked against this hash lately; None otherwise."""
    known = _verified.get(secret_hash)
    if known is not None and hmac.compare_digest(known, digest):
        _verified.move_to_end(secret_hash)
        machine_secret_stats.remembered_matches += 1
        return True
    until = _refused.get((secret_hash, digest))
    if until is not None:
        if until > now:
            machine_secret_stats.remembered_refusals += 1
            return False
        del _refused[(secret_hash, digest)]
    return None


def _remember(secret_hash: str, digest: bytes, matched: bool, now: float) -> None:
    """Keep the outcome of an argon2 run for the next check of the same pair."""
    if matched:
        _verified[secret_hash] = digest
        if len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
        return
    _refused[(secret_hash, digest)] = now + REFUSED_FOR_S
    if len(_refused) > _REFUSED_MAX:
        _refused.popitem(last=False)


def _loop_running() -> bool:
    """True on a thread that is running an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def verify_machine_secret(secret_hash: str, secret: str) -> bool:
    """``verify_secret`` for machine secrets (device keys, API tokens), remembering outcomes.

    Runs argon2 on the calling thread: async code uses ``check_machine_secret``.
    """
    digest = hashlib.sha256(secret.encode()).digest()
    now = time.monotonic()
    known = _remembered(secret_hash, digest, now)
    if known is not None:
        return known
    machine_secret_stats.argon2_runs += 1
    if _loop_running():
        machine_secret_stats.argon2_runs_on_a_loop += 1
    matched = verify_secret(secret_hash, secret)
    _remember(secret_hash, digest, matched, now)
    return matched


# Checks under way: concurrent requests with the same secret wait for one argon2 run.
_checking: dict[tuple[str, bytes], asyncio.Future[bool]] = {}


async def check_machine_secret(secret_hash: str, secret: str) -> bool:
    """``verify_machine_secret`` for the event loop: argon2, when needed, on its own threads,
    once for any number of concurrent checks of the same secret."""
    digest = hashlib.sha256(secret.encode()).digest()
    known = _remembered(secret_hash, digest, time.monotonic())
    if known is not None:
        return known
    pending = _checking.get((secret_hash, digest))
    if pending is not None:
        return await asyncio.shield(pending)
    machine_secret_stats.argon2_runs += 1
    loop = asyncio.get_running_loop()
    check = loop.run_in_executor(_argon2_threads, verify_secret, secret_hash, secret)
    _checking[(secret_hash, digest)] = check
    try:
        matched = await asyncio.shield(check)
    finally:
        _checking.pop((secret_hash, digest), None)
    _remember(secret_hash, digest, matched, time.monotonic())
    return matched


def new_secret(nbytes: int = 24) -> str:
    """A random secret safe to type into a device's configuration (URL-safe text)."""
    return secrets.token_urlsafe(nbytes)
