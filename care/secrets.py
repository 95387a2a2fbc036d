"""Passwords and device secrets: generated at random, stored only as argon2 hashes."""

from __future__ import annotations

import secrets

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


def new_secret(nbytes: int = 24) -> str:
    """A random secret safe to type into a device's configuration (URL-safe text)."""
    return secrets.token_urlsafe(nbytes)
