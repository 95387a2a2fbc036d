"""The indicators as JSON and as CSV rows (one figure a row, for a spreadsheet)."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from typing import Any

from indicators.service import Indicators


def as_json(figures: Indicators) -> dict[str, Any]:
    """The indicators as JSON."""
    body = asdict(figures)
    body["from"] = figures.since.isoformat()
    body["to"] = figures.until.isoformat()
    del body["since"], body["until"]
    return body


def rows(figures: Indicators) -> list[tuple[str, str, str, str, object]]:
    """(section, team or scope, period or group, figure, value) for every figure."""
    scope = ", ".join(figures.teams)
    period = f"{figures.since.date()}..{figures.until.date()}"
    found: list[tuple[str, str, str, str, object]] = []
    for alarm in figures.alarms:
        for name in ("raised", "acknowledged", "median_s", "p90_s", "within_60s", "within_180s"):
            found.append(("alarms", scope, alarm.severity, name, getattr(alarm, name)))
    found.append(("escalations", scope, period, "reached_tier_2", figures.escalated_tier_2))
    found.append(("escalations", scope, period, "exhausted", figures.escalations_exhausted))
    for month in figures.checkins:
        for name in ("due", "answered", "late", "missed", "not_sent", "adherence"):
            found.append(("checkins", month.team, month.month, name, getattr(month, name)))
    for name, value in asdict(figures.devices).items():
        found.append(("devices", scope, period, name, value))
    for name, value in asdict(figures.video).items():
        found.append(("video", scope, period, name, value))
    for served in figures.served:
        found.append(("residents_served", served.name, served.kind, "residents", served.residents))
    return found


def as_csv(figures: Indicators) -> str:
    """The indicators as CSV with a header row; empty cells where a figure has no value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", "scope", "group", "figure", "value"])
    for section, scope, group, name, value in rows(figures):
        shown = "" if value is None else round(value, 4) if isinstance(value, float) else value
        writer.writerow([section, scope, group, name, shown])
    return out.getvalue()
