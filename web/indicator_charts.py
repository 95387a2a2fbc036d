"""Bar charts of the service indicators, drawn on the server as SVG geometry like the vital
signs (web/console_charts.py); the template only places what is computed here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from web.console_charts import Limit, Tick, _nice_ticks

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 56, 14, 34


@dataclass(frozen=True)
class Bar:
    """One bar: where it stands, its series (for the colour) and its value in words."""

    x: float
    y: float
    width: float
    height: float
    series: int
    label: str


@dataclass(frozen=True)
class BarChart:
    """Everything the template needs to draw one bar chart."""

    key: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    bars: list[Bar]
    limits: list[Limit]
    y_ticks: list[Tick]
    x_ticks: list[Tick]


def bar_chart(
    key: str,
    groups: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: str,
    limits: Sequence[tuple[float, str]] = (),
    top: float | None = None,
) -> BarChart:
    """Grouped bars: one group per label, one bar per series; a missing value draws nothing."""
    values = [v for _, series in groups for v in series if v is not None]
    ceiling = top if top is not None else max([*values, *(limit for limit, _ in limits), 1.0])
    ticks = [0.0, *(t for t in _nice_ticks(0, ceiling * 1.1) if t > 0)]
    high = max([ceiling, *ticks]) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y_of(value: float) -> float:
        return round(TOP + plot_h * (1 - value / high), 1)

    bars: list[Bar] = []
    x_ticks: list[Tick] = []
    slot = plot_w / max(len(groups), 1)
    for index, (label, series) in enumerate(groups):
        bar_w = slot * 0.7 / max(len(series), 1)
        start = LEFT + index * slot + slot * 0.15
        x_ticks.append(Tick(round(LEFT + (index + 0.5) * slot, 1), label))
        for position, value in enumerate(series):
            if value is None:
                continue
            y = y_of(value)
            bars.append(
                Bar(
                    x=round(start + position * bar_w, 1),
                    y=y,
                    width=round(bar_w - 2, 1),
                    height=round(TOP + plot_h - y, 1),
                    series=position,
                    label=f"{label}: {value:g} {unit}",
                )
            )
    return BarChart(
        key=key,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=RIGHT,
        top=TOP,
        bottom=BOTTOM,
        bars=bars,
        limits=[Limit(y_of(value), text) for value, text in limits if value <= high],
        y_ticks=[Tick(y_of(t), f"{t:g}") for t in ticks if t <= high],
        x_ticks=x_ticks,
    )
