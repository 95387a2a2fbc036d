"""``vaki bench soak`` end to end on the embedded default, briefly: its figures, no panic lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import devices

REQUIRED = {
    "panics",
    "panics_seen_on_console",
    "panics_lost",
    "panic_to_console_p50_ms",
    "panic_to_console_p99_ms",
    "rss_loaded_mb",
    "rss_end_mb",
    "rss_growth_mb",
    "background_readings_per_s",
}


def test_a_short_soak_prints_its_figures_and_loses_no_panic() -> None:
    command = ["bench", "soak", "--quick", "--seconds", "10", "--broker", "embedded", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", *command],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])

    assert figures.keys() >= REQUIRED
    assert figures["database"] == "sqlite"
    # The embedded default: a private Mosquitto where it is installed, amqtt otherwise.
    expected = "private Mosquitto" if devices.mosquitto_binary() else "embedded (amqtt)"
    assert figures["broker"] == expected
    assert figures["panics"] >= 3
    assert figures["panics_lost"] == 0
    assert figures["panics_seen_on_console"] == figures["panics"]
    assert 0 < figures["panic_to_console_p50_ms"] <= figures["panic_to_console_p99_ms"]
    assert figures["rss_loaded_mb"] > 0
    assert figures["rss_end_mb"] > 0
    assert figures["background_readings_per_s"] > 0
