"""FHIR search parameters read into a typed query: patient, code, category, date and
_lastUpdated (with ge/gt/le/lt/eq prefixes), _count and the paging cursor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from interop.errors import InvalidSearchError

DEFAULT_COUNT = 50
MAX_COUNT = 500
CURSOR = "_cursor"
# Parameters every search takes; each resource type adds its own (see SEARCH_PARAMETERS).
COMMON = ("_count", "_lastUpdated", CURSOR, "_format")
_PREFIXES = ("ge", "gt", "le", "lt", "eq")


@dataclass(frozen=True)
class Interval:
    """Instants from ``start`` (inclusive) to ``end`` (exclusive); either may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def holds(self, value: datetime | None) -> bool:
        """Whether ``value`` lies in the interval (an unknown time never does)."""
        if value is None:
            return False
        if self.start is not None and value < self.start:
            return False
        return self.end is None or value < self.end


@dataclass(frozen=True)
class SearchQuery:
    """What a search asks for, read from its parameters."""

    patients: frozenset[int] | None = None
    codes: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    dates: tuple[Interval, ...] = ()
    last_updated: tuple[Interval, ...] = ()
    count: int = DEFAULT_COUNT
    cursor: tuple[str, int] | None = None
    raw: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _moment(text: str) -> tuple[datetime, datetime]:
    """The span a FHIR date/dateTime value stands for: a day, a month, a year or an instant."""
    try:
        if len(text) == 4:
            first = date(int(text), 1, 1)
            return _day(first), _day(date(first.year + 1, 1, 1))
        if len(text) == 7:
            first = date(int(text[:4]), int(text[5:7]), 1)
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return _day(first), _day(following)
        if len(text) == 10:
            day = date.fromisoformat(text)
            return _day(day), _day(day + timedelta(days=1))
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidSearchError(f"{text!r} is not a FHIR date or dateTime") from err
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant, instant + timedelta(seconds=1)


def _day(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def interval(value: str) -> Interval:
    """A date search value with its prefix as the interval it admits."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    start, end = _moment(value[2:] if value[:2] in _PREFIXES else value)
    return {
        "ge": Interval(start=start),
        "gt": Interval(start=end),
        "le": Interval(end=end),
        "lt": Interval(end=start),
        "eq": Interval(start=start, end=end),
    }[prefix]


def _tokens(values: Sequence[str]) -> frozenset[str]:
    """Token values (``system|code`` or ``code``), OR-ed with commas."""
    return frozenset(part for value in values for part in value.split(",") if part)


def _patients(values: Sequence[str]) -> frozenset[int]:
    """Patient ids from ``123`` or ``Patient/123``."""
    ids = set()
    for part in _tokens(values):
        try:
            ids.add(int(part.removeprefix("Patient/")))
        except ValueError as err:
            raise InvalidSearchError(f"patient={part!r} is not a Patient id") from err
    return frozenset(ids)


def parse_search(params: Mapping[str, Sequence[str]], allowed: Sequence[str]) -> SearchQuery:
    """A SearchQuery from the request's parameters; an unknown one is an error, not ignored,
    so an integrator never gets everything when they asked for a part."""
    for name in params:
        if name not in allowed and name not in COMMON:
            raise InvalidSearchError(f"the search parameter {name!r} is not supported here")
    count = DEFAULT_COUNT
    if params.get("_count"):
        try:
            count = int(params["_count"][-1])
        except ValueError as err:
            raise InvalidSearchError("_count must be a whole number") from err
        if count < 1:
            raise InvalidSearchError("_count must be at least 1")
        count = min(count, MAX_COUNT)
    cursor = None
    if params.get(CURSOR):
        key, _, index = params[CURSOR][-1].rpartition(".")
        if not key or not index.isdigit():
            raise InvalidSearchError("the paging link was damaged")
        cursor = (key, int(index))
    return SearchQuery(
        patients=_patients(params["patient"]) if params.get("patient") else None,
        codes=_tokens(params["code"]) if params.get("code") else None,
        categories=_tokens(params["category"]) if params.get("category") else None,
        dates=tuple(interval(v) for v in params.get("date", ())),
        last_updated=tuple(interval(v) for v in params.get("_lastUpdated", ())),
        count=count,
        cursor=cursor,
        raw=tuple(
            (name, value)
            for name, values in params.items()
            if name not in (CURSOR, "_format")
            for value in values
        ),
    )
