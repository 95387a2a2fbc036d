"""The benchmarks behind ``vaki bench`` and the world they build.

``ingest`` measures readings committed per second against a bare subscriber; ``alerts`` the
time from a panic press to the console and how late escalation fires; ``checkins`` a whole
slot of check-ins due at once; ``soak`` minutes of readings and panics on the embedded
default; ``video`` how many relayed calls one instance carries.
``world`` builds the care team on call that the runs (and the browser tests) start from.

Only the CLI imports this package, and only when a benchmark runs; it is not in the wheel,
so ``vaki bench`` needs a source checkout. Each name is imported on first use: a benchmark
pulls in much of Vaki, and its helper processes import only the module they run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.alerts import AlertBenchConfig, run_alert_bench
    from bench.checkins import CheckinBenchConfig, run_checkin_bench
    from bench.ingest import BenchConfig, bench_settings, run_ingest_bench, tuned_mosquitto
    from bench.soak import SoakConfig, run_soak_bench
    from bench.video import VideoBenchConfig, run_video_bench
    from bench.world import OnCallTeam, StaffMember, Tier, add_on_call_team

_MODULE_OF = {
    "AlertBenchConfig": "bench.alerts",
    "run_alert_bench": "bench.alerts",
    "CheckinBenchConfig": "bench.checkins",
    "run_checkin_bench": "bench.checkins",
    "BenchConfig": "bench.ingest",
    "bench_settings": "bench.ingest",
    "run_ingest_bench": "bench.ingest",
    "tuned_mosquitto": "bench.ingest",
    "SoakConfig": "bench.soak",
    "run_soak_bench": "bench.soak",
    "VideoBenchConfig": "bench.video",
    "run_video_bench": "bench.video",
    "OnCallTeam": "bench.world",
    "StaffMember": "bench.world",
    "Tier": "bench.world",
    "add_on_call_team": "bench.world",
}

__all__ = [
    "AlertBenchConfig",
    "BenchConfig",
    "CheckinBenchConfig",
    "OnCallTeam",
    "SoakConfig",
    "StaffMember",
    "Tier",
    "VideoBenchConfig",
    "add_on_call_team",
    "bench_settings",
    "run_alert_bench",
    "run_checkin_bench",
    "run_ingest_bench",
    "run_soak_bench",
    "run_video_bench",
    "tuned_mosquitto",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` the first time it is asked for."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
