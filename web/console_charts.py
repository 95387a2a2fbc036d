"""Vital-sign charts drawn on the server as SVG geometry: lines, the normal range as a band,
the alert limits as dashed lines; the template only places what is computed here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton

from web import i18n

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 48, 14, 30


@dataclass(frozen=True)
class Dot:
    """One reading on the chart; readings outside the limits are drawn red."""

    x: float
    y: float
    outside: bool
    label: str


@dataclass(frozen=True)
class Line:
    """One field's readings (e.g. systolic), as an SVG polyline and its dots."""

    name: str
    points: str
    dots: list[Dot]


@dataclass(frozen=True)
class Limit:
    """A threshold of an alert rule, as a dashed horizontal line."""

    y: float
    label: str


@dataclass(frozen=True)
class Tick:
    """An axis label at a position."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Everything the template needs to draw one vital sign over a period."""

    key: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    lines: list[Line]
    # The normal range of each field that has limits (systolic and diastolic each their own).
    bands: list[Band]
    limits: list[Limit]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    readings: int
    latest: str


Bounds = tuple[float | None, float | None]


@dataclass(frozen=True)
class Band:
    """One field's normal range on the chart, from ``top`` to ``bottom`` (SVG y)."""

    name: str
    top: float
    bottom: float


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values spanning ``low``..``high`` for the y axis."""
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 0.1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = (low // step + 1) * step
    ticks = []
    value = first
    while value < high:
        ticks.append(round(value, 2))
        value += step
    return ticks


def vital_chart(
    key: str,
    lines: dict[str, list[tuple[datetime, float]]],
    limits: dict[str, Bounds],
    *,
    since: datetime,
    until: datetime,
    unit: str,
    time_zone: str,
) -> Chart:
    """A chart of ``lines`` (field → readings) between ``since`` and ``until``, with each
    field's alert limits; each field with limits has its normal range drawn as a band."""
    values = [v for points in lines.values() for _, v in points]
    bounds = [b for pair in limits.values() for b in pair if b is not None]
    low, high = min(values + bounds), max(values + bounds)
    pad = max((high - low) * 0.08, 1.0)
    low, high = low - pad, high + pad
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    span_s = max((until - since).total_seconds(), 1.0)

    def x_of(moment: datetime) -> float:
        return round(LEFT + (moment - since).total_seconds() / span_s * plot_w, 1)

    def y_of(value: float) -> float:
        return round(TOP + (high - value) / (high - low) * plot_h, 1)

    drawn = []
    for name, points in lines.items():
        field_low, field_high = limits.get(name, (None, None))
        dots = [
            Dot(
                x_of(at),
                y_of(value),
                (field_low is not None and value < field_low)
                or (field_high is not None and value > field_high),
                f"{i18n.local_datetime(at, 'short')}: {i18n.number(value)} {unit}",
            )
            for at, value in sorted(points)
        ]
        drawn.append(Line(name, " ".join(f"{d.x},{d.y}" for d in dots), dots))
    bands = [
        Band(
            name,
            y_of(band_high) if band_high is not None else float(TOP),
            y_of(band_low) if band_low is not None else float(TOP + plot_h),
        )
        for name in lines
        for band_low, band_high in [limits.get(name, (None, None))]
        if (band_low, band_high) != (None, None)
    ]
    shown_limits = [
        Limit(y_of(bound), i18n.number(bound))
        for pair in limits.values()
        for bound in pair
        if bound is not None
    ]
    zone = ZoneInfo(time_zone)
    locale = i18n.LOCALES[i18n.current_language()]
    days = (until - since).days
    step = timedelta(days=1 if days <= 7 else 7 if days <= 30 else 14)
    x_ticks = []
    moment = since.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    moment += timedelta(days=1)
    while moment < until:
        x_ticks.append(Tick(x_of(moment), format_skeleton("MMMd", moment, locale=locale)))
        moment += step
    latest = " / ".join(i18n.number(points[-1][1]) for points in lines.values() if points)
    return Chart(
        key=key,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=RIGHT,
        top=TOP,
        bottom=BOTTOM,
        lines=drawn,
        bands=bands,
        limits=shown_limits,
        y_ticks=[Tick(y_of(v), i18n.number(v)) for v in _nice_ticks(low, high)],
        x_ticks=x_ticks,
        readings=sum(len(points) for points in lines.values()),
        latest=f"{latest} {unit}" if latest else "",
    )
