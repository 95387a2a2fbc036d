"""The service indicators as JSON, CSV and a FHIR MeasureReport bundle, for coordinators:
parse the period and team, call the indicator service once, render."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.response import Response
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import indicators
import interop
from web.auth import StaffIdentity, identify

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first instant of a "2026-11" month and of the next (UTC)."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError as err:
        raise ValidationException("month is written like 2026-11") from err
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (datetime.combine(first, time(0), UTC), datetime.combine(following, time(0), UTC))


def _instant(value: str, name: str) -> datetime:
    """A date (midnight UTC) or a dateTime from a query parameter."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), UTC)
        return care.as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError as err:
        raise ValidationException(f"{name} is written like 2026-11-01") from err


def period_of(request: Request[Any, Any, Any]) -> tuple[datetime, datetime]:
    """The period asked for: ``month``, or ``from`` (inclusive) and ``to`` (exclusive);
    this month by default."""
    params = request.query_params
    if params.get("month"):
        return month_bounds(params["month"])
    now = care.utcnow()
    since, until = month_bounds(now.strftime("%Y-%m"))
    if params.get("from"):
        since = _instant(params["from"], "from")
        until = max(until, since + timedelta(days=1))
    if params.get("to"):
        until = _instant(params["to"], "to")
    if until <= since:
        raise ValidationException("'to' must come after 'from'")
    return since, until


def team_of(request: Request[Any, Any, Any]) -> int | None:
    """The asked-for care team, or None for all the caller's."""
    value = request.query_params.get("team")
    if not value:
        return None
    if not value.isdigit():
        raise ValidationException("team is a care team's number")
    return int(value)


async def figures_for(
    request: Request[Any, Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> tuple[StaffIdentity, indicators.Indicators]:
    """The caller and the indicators they asked for."""
    identity = await identify(request, sessions)
    since, until = period_of(request)
    figures = await indicators.IndicatorService(sessions).figures(
        role=identity.role,
        team_ids=identity.team_ids,
        team=team_of(request),
        since=since,
        until=until,
    )
    return identity, figures


def _file_name(figures: indicators.Indicators, extension: str) -> str:
    """A download's name: vaki-indicators-2026-11-01-2026-12-01.csv."""
    return f"vaki-indicators-{figures.since.date()}-{figures.until.date()}.{extension}"


@get("/", include_in_schema=True, summary="Service indicators as JSON or CSV (?format=csv)")
async def indicators_data(request: Request[Any, Any, Any], sessions: Sessions) -> Response[bytes]:
    """The indicators of the caller's teams (or ``team``) over the period."""
    _, figures = await figures_for(request, sessions)
    if request.query_params.get("format") == "csv":
        return Response(
            indicators.as_csv(figures).encode(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{_file_name(figures, "csv")}"',
                "Cache-Control": "no-store",
            },
        )
    return Response(
        json.dumps(indicators.as_json(figures), ensure_ascii=False).encode(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@get("/measure-report", include_in_schema=True, summary="Service indicators as FHIR MeasureReports")
async def indicators_measure_report(
    request: Request[Any, Any, Any], sessions: Sessions
) -> Response[bytes]:
    """The indicators as a FHIR Bundle of MeasureReports."""
    _, figures = await figures_for(request, sessions)
    return Response(
        json.dumps(interop.measure_report_bundle(figures), ensure_ascii=False).encode(),
        media_type="application/fhir+json",
        headers={
            "Content-Disposition": f'attachment; filename="{_file_name(figures, "json")}"',
            "Cache-Control": "no-store",
        },
    )


INDICATORS_ROUTER = Router(
    path="/api/indicators",
    route_handlers=[indicators_data, indicators_measure_report],
    tags=["indicators"],
)
