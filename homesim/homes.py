"""Simulated homes: a name, a time zone, the devices in it and the scenarios it plays."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from homesim.contract import KINDS

SCENARIOS = frozenset({"fall_at_night", "device_goes_silent", "hypertensive_crisis", "panic"})


@dataclass(frozen=True)
class SimulatedDevice:
    """A provisioned device of a simulated home: its id, kind and password."""

    device_id: str
    kind: str
    password: str

    def __post_init__(self) -> None:
        """Refuse a kind Vaki does not know."""
        if self.kind not in KINDS:
            raise ValueError(f"unknown device kind {self.kind!r}")


@dataclass(frozen=True)
class SimulatedHome:
    """A home: a name, the time zone its day runs in, its devices and its scenarios."""

    name: str
    time_zone: str
    devices: tuple[SimulatedDevice, ...]
    scenarios: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Refuse unknown scenarios and time zones."""
        unknown = self.scenarios - SCENARIOS
        if unknown:
            raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {sorted(SCENARIOS)}")
        ZoneInfo(self.time_zone)  # fail now, not at the first plan
