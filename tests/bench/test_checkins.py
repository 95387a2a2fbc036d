"""``vaki bench checkins`` end to end on a small world: every prompt out once, every miss raised."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

REQUIRED = {
    "residents",
    "slot_sent_p50_s",
    "slot_sent_p99_s",
    "slot_sent_max_s",
    "duplicates",
    "missed_detection_lateness_p99_s",
}


@pytest.fixture
def mosquitto_binary() -> None:
    """The benchmark starts a private Mosquitto; without the binary there is nothing to run."""
    if shutil.which("mosquitto") is None:
        if IN_CI:
            pytest.fail("the mosquitto binary is required in CI")
        pytest.skip("the mosquitto binary is not installed")


@pytest.mark.usefixtures("mosquitto_binary")
def test_quick_benchmark_sends_every_prompt_once_and_raises_every_miss() -> None:
    command = ["bench", "checkins", "--quick", "--json", "--residents", "200"]
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])

    assert figures.keys() >= REQUIRED
    assert figures["residents"] == 200
    assert figures["quick"] is True
    assert figures["duplicates"] == 0
    # Slot B: one prompt per resident, each on the tablet, in order of its time.
    assert figures["slot_prompts"] == figures["residents"]
    assert figures["slot_received"] == figures["slot_prompts"]
    assert 0 < figures["slot_sent_p50_s"] <= figures["slot_sent_p99_s"]
    assert figures["slot_sent_p99_s"] <= figures["slot_sent_max_s"]
    assert figures["slot_db_sent_max_s"] > 0
    # Slot A went out late at start to everyone; what was not answered is missed, and
    # every missed check-in became an alert after its window closed.
    assert figures["late_slot_received"] == figures["late_slot_prompts"] == figures["residents"]
    assert figures["late_slot_answered"] > 0
    assert figures["missed"] == figures["late_slot_prompts"] - figures["late_slot_answered"]
    assert figures["missed"] > 0
    assert figures["missed_detected"] == figures["missed"]
    assert figures["missed_detection_lateness_p99_s"] >= 0
    # The baseline ran through the same broker to the same tablets.
    assert figures["bare_publisher_per_s"] > 0
    assert figures["ratio"] > 0
