"""``vaki bench soak``: minutes of readings plus panics on the embedded default.

The alert benchmark's run (the real app under uvicorn, a background publisher, pendants, a
console on the stream, an SMS gateway) stretched out: a steady trickle of readings and a
panic every few seconds, on whatever the settings give (SQLite and the embedded broker by
default). It prints panic → console latency, panics lost (pressed and never on the console)
and how much the service's memory grew (resident set of this process and its children, the
embedded broker among them) between the load settling and the last panic.
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


def tree_rss_mb(pid: int | None = None) -> float:
    """The resident set of a process and all its descendants, in MB."""
    pending = [pid or os.getpid()]
    total = 0
    while pending:
        current = pending.pop()
        total += _rss_kb(current)
        pending.extend(_children(current))
    return total / 1024


async def run_soak_bench(settings: Settings, config: SoakConfig) -> dict[str, Any]:
    """Run the soak; return the alert run's figures with memory and losses added."""
    samples: list[float] = []
    marks: dict[str, int] = {}

    async def sample() -> None:
        while True:
            samples.append(await asyncio.to_thread(tree_rss_mb))
            await asyncio.sleep(_SAMPLE_S)

    def on_phase(phase: str) -> None:
        samples.append(tree_rss_mb())
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
    return {
        "seconds": config.seconds,
        **figures,
        "panics_lost": figures["panics"] - figures["panics_seen_on_console"],
        "rss_loaded_mb": round(loaded, 1),
        "rss_end_mb": round(pressed, 1),
        "rss_growth_mb": round(pressed - loaded, 1),
        "rss_peak_mb": round(max(samples), 1),
    }
