"""Settings come from VAKI_ variables or a .env file, with embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings


def test_defaults_are_the_embedded_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert settings.http_host == "127.0.0.1"
    assert settings.http_port == 8000
    assert settings.uses_embedded_broker
    assert settings.mqtt_embedded_port == 1883
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'vaki.db'}"


def test_environment_and_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "VAKI_HTTP_PORT=9001\nVAKI_MQTT_URL=mqtt://vaki:pw@broker.example:1884\n"
    )
    monkeypatch.setenv("VAKI_DATABASE_URL", "postgresql://vaki@db.example/vaki")
    settings = Settings()
    assert settings.http_port == 9001
    assert not settings.uses_embedded_broker
    # Plain URLs get the async driver Vaki uses.
    assert settings.effective_database_url == "postgresql+psycopg://vaki@db.example/vaki"


def test_invalid_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAKI_HTTP_PORT", "seventy")
    with pytest.raises(ValueError, match="http_port"):
        Settings(_env_file=None)
