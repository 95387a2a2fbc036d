"""The ``vaki`` command as people run it: in a subprocess, from an empty directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MqttProbe

VAKI = str(Path(sys.executable).parent / "vaki")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAKI_")}
    env.update(extra)
    return env


def run_vaki(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 (callers check the code)
        [VAKI, *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=120
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int, subprocess.Popen[str]]]:
    """``vaki serve --demo`` from an empty directory, on a free port, until ready."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [VAKI, "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    ready = False
    while time.monotonic() < deadline and process.poll() is None:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready:
            break
        time.sleep(0.3)
    try:
        assert ready, (tmp_path / "serve.log").read_text()
        yield tmp_path, port, process
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.mark.slow
def test_serve_demo_is_ready_and_devices_get_the_broker_port(
    served: tuple[Path, int, subprocess.Popen[str]],
) -> None:
    cwd, port, process = served
    output = (cwd / "serve.log").read_text()
    assert "sigrun" in output  # the demo logins are printed
    # A second instance on the same port fails with one clear line.
    second = run_vaki(cwd, "serve", "--port", str(port))
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"vaki: port {port} on 127.0.0.1 is already in use by another program (set VAKI_HTTP_PORT)"
    ]
    # device add reports the port the running embedded broker really uses...
    added = run_vaki(cwd, "device", "add", "--resident", "1", "--kind", "scale", "--json")
    assert added.returncode == 0, added.stderr
    credentials = json.loads(added.stdout)
    assert set(credentials) == {"device_id", "username", "password", "mqtt_host", "mqtt_port"}
    # ...and a device configured with exactly that can log in and publish.
    probe = MqttProbe(
        credentials["mqtt_host"],
        credentials["mqtt_port"],
        client_id=credentials["device_id"],
        username=credentials["username"],
        password=credentials["password"],
    )
    assert not probe.connect().is_failure
    probe.close()
    assert process.poll() is None


def test_bad_database_url_is_one_clear_line(tmp_path: Path) -> None:
    result = run_vaki(
        tmp_path,
        "serve",
        "--port",
        str(_free_port()),
        VAKI_DATABASE_URL="postgresql://vaki@127.0.0.1:1/nowhere",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vaki: cannot reach the database at postgresql+psycopg://vaki@")
    assert lines[0].endswith("(set VAKI_DATABASE_URL)")
    assert "Traceback" not in result.stderr


def test_demo_json_and_rerun_gives_the_same_world(tmp_path: Path) -> None:
    first = run_vaki(tmp_path, "demo", "--json")
    assert first.returncode == 0, first.stderr
    world = json.loads(first.stdout)
    assert {s["organisation"] for s in world["staff"]} == {
        "Fjallabyggð",
        "Heilbrigðisstofnun Norðurlands",
    }
    assert set(world["staff"][0]) == {"username", "password", "role", "organisation"}
    assert len(world["residents"]) == 25
    assert all(r["devices"] for r in world["residents"])
    again = json.loads(run_vaki(tmp_path, "demo", "--json").stdout)
    assert [r["id"] for r in again["residents"]] == [r["id"] for r in world["residents"]]
    # The same logins and device keys every time (kept in the data directory)...
    assert again == world
    # ...until the demo starts over.
    reset = run_vaki(tmp_path, "demo", "--reset", "--json")
    assert reset.returncode == 0, reset.stderr
    anew = json.loads(reset.stdout)
    old = {s["username"]: s["password"] for s in world["staff"]}
    new = {s["username"]: s["password"] for s in anew["staff"]}
    assert old.keys() == new.keys()
    assert all(old[name] != new[name] for name in old)
    assert len(anew["residents"]) == 25


def test_user_add_and_db_commands(tmp_path: Path) -> None:
    upgraded = run_vaki(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at revision" in upgraded.stdout
    checked = run_vaki(tmp_path, "db", "check")
    assert checked.returncode == 0, checked.stderr
    added = run_vaki(
        tmp_path,
        "user",
        "add",
        "--username",
        "helga",
        "--full-name",
        "Helga B.",
        "--role",
        "nurse",
        "--organisation",
        "HSN",
        "--organisation-kind",
        "health_institution",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[1].startswith("password: ")
    duplicate = run_vaki(
        tmp_path,
        "user",
        "add",
        "--username",
        "helga",
        "--full-name",
        "X",
        "--role",
        "nurse",
        "--organisation",
        "HSN",
    )
    assert duplicate.returncode == 2
    assert duplicate.stderr.strip() == "vaki: the username 'helga' is already taken"
    unknown = run_vaki(tmp_path, "device", "add", "--resident", "77", "--kind", "scale")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "vaki: no resident has id 77"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["serve"],
        ["db"],
        ["db", "upgrade"],
        ["user", "add"],
        ["device", "add"],
        ["device", "revoke"],
        ["demo"],
    ],
)
def test_help_everywhere(tmp_path: Path, args: list[str]) -> None:
    result = run_vaki(tmp_path, *args, "--help")
    assert result.returncode == 0
    assert "Usage: vaki" in result.stdout
