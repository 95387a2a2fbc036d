"""Service indicators for the municipality and the care team.

Owns the figures of how the service performs: alarm handling per severity (median, 90th
percentile, share acknowledged within 60 s and 180 s), escalations, check-in adherence
per team and month, device uptime and silences, video calls, and residents served with
counts under five suppressed. Reads the other domains through their public surfaces;
never writes their rows, never speaks HTTP.
"""

from indicators.errors import IndicatorError, NotFoundError, UnknownTeamError
from indicators.figures import SUPPRESSED, median, percentile, suppressed
from indicators.formats import as_csv, as_json, rows
from indicators.service import (
    AlarmHandling,
    CheckinMonth,
    DeviceFigures,
    Indicators,
    IndicatorService,
    Served,
    VideoFigures,
)

__all__ = [
    "SUPPRESSED",
    "AlarmHandling",
    "CheckinMonth",
    "DeviceFigures",
    "IndicatorError",
    "IndicatorService",
    "Indicators",
    "NotFoundError",
    "Served",
    "UnknownTeamError",
    "VideoFigures",
    "as_csv",
    "as_json",
    "median",
    "percentile",
    "rows",
    "suppressed",
]
