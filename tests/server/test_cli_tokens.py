"""``vaki token list/revoke`` and ``vaki user deactivate``: an administrator ends access
from the command line, and the token's secret is never printed again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import care
from server.db import create_engine, session_factory
from tests.server.test_cli import run_vaki
from tests.web.conftest import PASSWORD


def _staff_for(tmp_path: Path, token: str) -> str | None:
    """Who the token acts for now, as the app would decide (None: refused)."""

    async def look_up() -> str | None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'vaki.db'}")
        try:
            async with session_factory(engine)() as session:
                staff = await care.staff_for_token(session, token)
                return staff.username if staff is not None else None
        finally:
            await engine.dispose()

    return asyncio.run(look_up())


def test_tokens_are_listed_revoked_and_end_with_their_staff_member(tmp_path: Path) -> None:
    for username in ("helga", "olafur"):
        added = run_vaki(
            tmp_path,
            *["user", "add", "--username", username, "--full-name", username.title()],
            *["--role", "nurse", "--organisation", "Fjallabyggð", "--password", PASSWORD],
        )
        assert added.returncode == 0, added.stderr
    tokens = {}
    for username, label in (("helga", "wall display"), ("helga", "phone"), ("olafur", "tv")):
        made = run_vaki(tmp_path, "token", "create", "--username", username, "--label", label)
        assert made.returncode == 0, made.stderr
        tokens[label] = made.stdout.strip().splitlines()[-1]
    assert all(_staff_for(tmp_path, token) for token in tokens.values())

    listed = run_vaki(tmp_path, "token", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["username"], r["label"], r["state"]) for r in rows] == [
        ("helga", "wall display", "active"),
        ("helga", "phone", "active"),
        ("olafur", "tv", "active"),
    ]
    assert all(r["expires_at"] for r in rows)  # 90 days unless configured
    for token in tokens.values():
        assert token.rsplit("_", 1)[1] not in listed.stdout
    only_helga = run_vaki(tmp_path, "token", "list", "--username", "helga")
    assert len(only_helga.stdout.splitlines()) == 2

    revoked = run_vaki(tmp_path, "token", "revoke", str(rows[1]["id"]))
    assert revoked.returncode == 0, revoked.stderr
    assert _staff_for(tmp_path, tokens["phone"]) is None
    assert _staff_for(tmp_path, tokens["wall display"]) == "helga"
    missing = run_vaki(tmp_path, "token", "revoke", "999")
    assert missing.returncode != 0
    assert "999" in missing.stderr

    left = run_vaki(tmp_path, "user", "deactivate", "olafur")
    assert left.returncode == 0, left.stderr
    assert _staff_for(tmp_path, tokens["tv"]) is None
    states = [
        json.loads(line)["state"]
        for line in run_vaki(tmp_path, "token", "list", "--json").stdout.splitlines()
    ]
    assert states == ["active", "revoked", "revoked"]
