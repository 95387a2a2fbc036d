"""The arithmetic of the indicators, on plain numbers: median, 90th percentile, shares, and
the suppression of small counts so that nobody can be recognised in a figure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

SMALL_COUNT = 5
SUPPRESSED = "<5"


def median(values: Sequence[float]) -> float | None:
    """The median; None for no values."""
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (the smallest value with ``share`` of values at or below
    it), as telecare reports compute it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return float(ordered[rank - 1])


def share_within(values: Sequence[float], limit: float, total: int) -> float | None:
    """The share (0..1) of ``total`` whose value is at most ``limit``; None when total is 0."""
    if total == 0:
        return None
    return sum(1 for value in values if value <= limit) / total


def ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when there is no whole."""
    return part / whole if whole else None


def suppressed(count: int) -> int | str:
    """A count of people as it may be shown: under five is "<5"."""
    return SUPPRESSED if count < SMALL_COUNT else count
