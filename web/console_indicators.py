"""The service indicators page for coordinators: the month's figures for their teams as
tables and server-drawn charts, with the month to download as CSV or FHIR MeasureReports."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.response import Template
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import indicators
from web.console_view import console_page, viewer_of
from web.i18n import gettext as _
from web.indicator_charts import bar_chart
from web.indicators_api import month_bounds

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]


def severity_words() -> dict[str, str]:
    """Alert severities in words."""
    return {
        "critical": _("Critical"),
        "high": _("High"),
        "normal": _("Normal"),
        "technical": _("Technical"),
    }


def _percent(value: float | None) -> float | None:
    """A share as a percentage."""
    return None if value is None else round(value * 100, 1)


@get("/console/indicators", include_in_schema=False)
async def indicators_page(request: Request[Any, Any, Any], sessions: Sessions) -> Template:
    """The month's figures for one of the coordinator's teams, or all of them."""
    viewer = await viewer_of(request, sessions)
    if not care.may(viewer.identity.role, care.Permission.READ_INDICATORS):
        raise PermissionDeniedException(_("Only a coordinator may see the service figures."))
    month = request.query_params.get("month") or care.utcnow().strftime("%Y-%m")
    problems = []
    try:
        since, until = month_bounds(month)
    except ValidationException:  # an unreadable month falls back to this one
        problems.append(_("Write the month like 2026-11."))
        month = care.utcnow().strftime("%Y-%m")
        since, until = month_bounds(month)
    team_value = request.query_params.get("team") or ""
    team = int(team_value) if team_value.isdigit() else None
    figures = await indicators.IndicatorService(sessions).figures(
        role=viewer.identity.role,
        team_ids=viewer.identity.team_ids,
        team=team,
        since=since,
        until=until,
    )
    words = severity_words()
    alarm_chart = bar_chart(
        "alarms",
        [(words[a.severity], (a.median_s, a.p90_s)) for a in figures.alarms],
        unit="s",
        limits=[(60, "60 s"), (180, "180 s")],
    )
    checkin_chart = bar_chart(
        "checkins",
        [(f"{c.team} {c.month}", (_percent(c.adherence),)) for c in figures.checkins],
        unit="%",
        top=100,
    )
    query = urlencode({"month": month, **({"team": team} if team else {})})
    return console_page(
        request,
        viewer,
        "console_indicators.html",
        section="indicators",
        figures=figures,
        teams=figures.choices,
        team=team,
        month=month,
        problems=problems,
        words=words,
        alarm_chart=alarm_chart,
        checkin_chart=checkin_chart,
        percent=_percent,
        csv_url=f"/api/indicators?{query}&format=csv",
        json_url=f"/api/indicators?{query}",
        fhir_url=f"/api/indicators/measure-report?{query}",
    )


INDICATOR_ROUTES: list[ControllerRouterHandler] = [indicators_page]
