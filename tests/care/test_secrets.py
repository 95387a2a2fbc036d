"""Machine secrets are verified with argon2 once, then by a remembered digest; a wrong or
replaced secret is still refused."""

from __future__ import annotations

import pytest

import care
from care import secrets


def test_a_verified_machine_secret_is_remembered_and_a_wrong_one_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argon2_runs: list[str] = []
    real = secrets.verify_secret

    def counted(secret_hash: str, secret: str) -> bool:
        argon2_runs.append(secret_hash)
        return real(secret_hash, secret)

    monkeypatch.setattr(secrets, "verify_secret", counted)
    secret = care.new_secret()
    stored = care.hash_machine_secret(secret)
    for _ in range(100):
        assert care.verify_machine_secret(stored, secret)
    assert len(argon2_runs) == 1  # a tablet polling all day costs one argon2 run
    assert not care.verify_machine_secret(stored, secret + "x")
    assert not care.verify_machine_secret(stored, care.new_secret())
    # A reset secret has a new hash: the old secret does not open it.
    renewed = care.hash_machine_secret(care.new_secret())
    assert not care.verify_machine_secret(renewed, secret)
    assert not care.verify_machine_secret("not a hash", secret)
    assert len(argon2_runs) == 5
