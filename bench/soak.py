"""``vaki bench soak``: minutes of readings plus panics on the embedded default.

The alert benchmark's run (the real app under uvicorn, a background publisher, pendants, a
console on the stream, an SMS gateway) stretched out: a steady trickle of readings and a
panic every few seconds, on whatever the settings give (SQLite and the embedded broker by
default). It prints panic → console latency, panics lost (pressed and never on the console)
and how much memory grew between the load settling and the last panic: the resident set of
this process (the service) and of each child (the embedded broker, and the benchmark's own
publisher, which is not the service), in total and by process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.alerts import AlertBenchConfig, run_alert_bench
from server.settings import Settings

_SAMPLE_S = 1.0


@dataclass(frozen=True)
class SoakConfig:
    """What one soak does."""

    seconds: float
    readings_per_s: int
    panic_every_s: float


def _rss_kb(pid: int) -> int:
    """The resident set of one process, in kB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def _children(pid: int) -> list[int]:
    """The direct children of a process (Linux /proc)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _name(pid: int) -> str:
    """What a child process of the soak is: the embedded broker, the load generator, ..."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"gone ({pid})"
    if "broker_process" in command:
        return "embedded broker"
    if "resource_tracker" in command:
        return "multiprocessing resource tracker"
    if "spawn_main" in command:
        return "load generator (benchmark)"
    return command[:40]


def tree_rss_kb(pid: int | None = None) -> dict[str, int]:
    """The resident set of a process and each of its descendants, in kB, by a short name."""
    pending = [pid or os.getpid()]
    found: dict[str, int] = {}
    while pending:
        current = pending.pop()
        key = "service" if current == (pid or os.getpid()) else _name(current)
        found[key] = _rss_kb(current)
        pending.extend(_children(current))
    return found


async def run_soak_bench(settings: Settings, config: SoakConfig) -> dict[str, Any]:
    """Run the soak; return the alert run's figures with memory and losses added."""
    samples: list[dict[str, int]] = []
    marks: dict[str, int] = {}

    async def sample() -> None:
        while True:
            samples.append(await asyncio.to_thread(tree_rss_kb))
            await asyncio.sleep(_SAMPLE_S)

    def on_phase(phase: str) -> None:
        samples.append(tree_rss_kb())
        marks[phase] = len(samples) - 1

    sampler = asyncio.create_task(sample())
    try:
        figures = await run_alert_bench(
            settings,
            AlertBenchConfig(
                seconds=config.seconds,
                background_per_s=config.readings_per_s,
                panics=max(1, int(config.seconds / config.panic_every_s)),
                tier_timeout_s=2,
            ),
            on_phase=on_phase,
        )
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    loaded = samples[marks["loaded"]]
    pressed = samples[marks["pressed"]]
    growth = {
        name: round((kb - loaded.get(name, 0)) / 1024, 1)
        for name, kb in pressed.items()
        if name in loaded
    }
    return {
        "seconds": config.seconds,
        **figures,
        "panics_lost": figures["panics"] - figures["panics_seen_on_console"],
        "rss_loaded_mb": round(sum(loaded.values()) / 1024, 1),
        "rss_end_mb": round(sum(pressed.values()) / 1024, 1),
        "rss_growth_mb": round((sum(pressed.values()) - sum(loaded.values())) / 1024, 1),
        "rss_peak_mb": round(max(sum(s.values()) for s in samples) / 1024, 1),
        # By process (the service, the embedded broker, the benchmark's own publisher).
        "rss_growth_by_process_mb": growth,
    }
