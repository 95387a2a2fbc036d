"""Readiness of the alarm path's timing and live feed, for /readyz.

The escalation sweep must have run recently: a stuck or stopped sweep means due steps are
not fired, which no other check would notice. On PostgreSQL the live feed must be
listening: otherwise this instance's consoles miss other instances' alerts.
"""

from __future__ import annotations

from typing import Any

from server.runtime import Runtime

# The sweep counts as stopped after this many of its intervals (and at least this long).
STALE_SWEEPS = 3
STALE_FLOOR_S = 15.0


def alarm_path_checks(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """The "escalation" and "live_feed" checks (absent for parts this instance lacks)."""
    checks: dict[str, dict[str, Any]] = {}
    alarms = runtime.alarms
    if alarms is not None:
        wake = alarms.escalation_wake
        age = wake.age_s()
        limit = max(STALE_SWEEPS * wake.interval_s, STALE_FLOOR_S)
        escalation: dict[str, Any] = {
            "ok": age is not None and age <= limit,
            "last_sweep_s_ago": None if age is None else round(age, 1),
        }
        if age is None or age > limit:
            escalation["detail"] = f"no escalation sweep in the last {limit:g} s"
        checks["escalation"] = escalation
    feed = runtime.live_feed
    if feed is not None:
        checks["live_feed"] = {"ok": feed.connected}
        if feed.last_error:
            checks["live_feed"]["detail"] = feed.last_error
    return checks
