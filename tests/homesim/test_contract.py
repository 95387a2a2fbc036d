"""The simulated firmware's copy of the contract agrees with docs/mqtt.md and the server.

homesim may not import the server, so it keeps its own tables; these tests are what stops
the copy and the original from drifting apart.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import devices
from homesim import contract

DOC = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text()


def _rows(header: str) -> list[list[str]]:
    """The cells of the docs table whose header row starts with ``header``, without backticks."""
    lines = DOC.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_topics_are_the_documented_ones_and_the_servers() -> None:
    topics = {row[0] for row in _rows("topic")}
    for channel in ("reading", "event", "status", "ack", "cmd"):
        assert f"{contract.TOPIC_PREFIX}/{{device_id}}/{channel}" in topics
        assert f"{contract.TOPIC_PREFIX}/hub-1/{channel}" == devices.device_topic("hub-1", channel)


def test_limits_are_the_documented_ones() -> None:
    limits = dict(_rows("limit"))
    assert f"({contract.MAX_PAYLOAD_BYTES:,} bytes)" in limits["payload size"]
    assert limits["items in one batch"] == str(contract.MAX_BATCH_ITEMS)
    assert contract.compact_json({"batch": []}) == contract.BATCH_HEAD + b"]}"


def test_device_kinds_and_intervals_are_the_documented_ones_and_the_servers() -> None:
    documented = {kind: int(every.split()[0]) * 60 for kind, every in _rows("device kind")}
    assert dict(contract.EXPECTED_INTERVAL_S) == documented
    assert {kind.value for kind in devices.DeviceKind} == contract.KINDS
    server = {kind.value: seconds for kind, seconds in devices.EXPECTED_INTERVAL_S.items()}
    assert dict(contract.EXPECTED_INTERVAL_S) == server


def test_value_ranges_are_the_documented_ones() -> None:
    documented: dict[str, tuple[float, float]] = {}
    for _type, field, _unit, documented_range, _required in _rows("type | field"):
        low, high = re.split("–", documented_range)
        documented[field] = (float(low), float(high))
    assert contract.RANGES
    for name, span in contract.RANGES.items():
        assert span == documented[name], name


def test_the_last_will_is_the_documented_offline_status() -> None:
    assert json.loads(contract.OFFLINE_STATUS) == {"online": False}
    assert '`{"online": false}`' in DOC


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"", "e3b0c44298fc1c149afbf4c8996fb924"), (b"\x06\x00\x01", None)],
)
def test_raw_ids_are_the_servers(payload: bytes, expected: str | None) -> None:
    assert contract.raw_id(payload) == devices.raw_message_id(payload)
    if expected is not None:
        assert contract.raw_id(payload) == expected
