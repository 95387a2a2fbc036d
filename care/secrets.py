"""Passwords and device secrets: generated at random, stored only as argon2 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict

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
# lookup instead of an argon2 run on the event loop each time. A new secret has a new hash,
# so resetting one forgets the old; revocation is checked on the row by the caller.
_verified: OrderedDict[str, bytes] = OrderedDict()
_VERIFIED_MAX = 65_536


def verify_machine_secret(secret_hash: str, secret: str) -> bool:
    """``verify_secret`` for machine secrets (device keys, API tokens), remembering matches."""
    digest = hashlib.sha256(secret.encode()).digest()
    known = _verified.get(secret_hash)
    if known is not None and hmac.compare_digest(known, digest):
        _verified.move_to_end(secret_hash)
        return True
    if not verify_secret(secret_hash, secret):
        return False
    _verified[secret_hash] = digest
    if len(_verified) > _VERIFIED_MAX:
        _verified.popitem(last=False)
    return True


def new_secret(nbytes: int = 24) -> str:
    """A random secret safe to type into a device's configuration (URL-safe text)."""
    return secrets.token_urlsafe(nbytes)
