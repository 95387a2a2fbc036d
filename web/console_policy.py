"""A care team's escalation policy and on-call rota in the console, for its coordinators.

The policy is saved only when every tier reaches somebody (the domain says which tier does
not, and the page says it in the coordinator's language). The rota is weekly shifts plus
overrides; after each change the page shows the hours of the week nobody covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_400_BAD_REQUEST
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
from web.console_view import Viewer, back_to, console_page, viewer_of
from web.console_words import channel_name, in_words, span_in_words, weekday_names
from web.i18n import gettext as _

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
Alerts = NamedDependency[alerts.AlertService]

RECIPIENT_KINDS = ("on_call", "team", "relatives")
CHANNELS = ("console", "email", "sms", "push")
MAX_TIERS = 10
CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


@dataclass
class TierForm:
    """One tier as shown and as typed."""

    timeout_s: str = "120"
    recipients: list[str] = field(default_factory=list)
    staff_id: str = ""
    channels: list[str] = field(default_factory=lambda: ["console"])

    @property
    def blank(self) -> bool:
        """Nobody and no channel chosen: the row is left unused."""
        return not self.recipients and not self.staff_id


@dataclass
class PolicyForm:
    """The policy form as shown and as typed."""

    name: str = ""
    last_tier_repeats: str = "3"
    retrigger_after_min: str = "30"
    tiers: list[TierForm] = field(default_factory=list)

    @classmethod
    def of_policy(
        cls, policy: alerts.EscalationPolicy | None, tiers: list[alerts.EscalationTier]
    ) -> PolicyForm:
        """The form filled in from the stored policy (or a new one's defaults)."""
        if policy is None:
            return cls(name=_("Day and night"), tiers=[TierForm(recipients=["on_call"])])
        shown = []
        for tier in tiers:
            staff = next((r for r in tier.recipients if r.get("kind") == "staff"), None)
            shown.append(
                TierForm(
                    timeout_s=str(tier.timeout_s),
                    recipients=[
                        str(r.get("kind")) for r in tier.recipients if r.get("kind") != "staff"
                    ],
                    staff_id=str(staff.get("id", "")) if staff else "",
                    channels=list(tier.channels),
                )
            )
        return cls(
            name=policy.name,
            last_tier_repeats=str(policy.last_tier_repeats),
            retrigger_after_min=str(policy.retrigger_after_min),
            tiers=shown,
        )

    @classmethod
    def of_post(cls, form: FormMultiDict) -> PolicyForm:
        """The form as the coordinator sent it."""
        tiers = []
        for number in range(1, MAX_TIERS + 1):
            if f"tier{number}_timeout" not in form:
                break
            tiers.append(
                TierForm(
                    timeout_s=str(form.get(f"tier{number}_timeout", "")).strip(),
                    recipients=[
                        r
                        for r in RECIPIENT_KINDS
                        if r in form.getall(f"tier{number}_recipient", [])
                    ],
                    staff_id=str(form.get(f"tier{number}_staff", "")).strip(),
                    channels=[c for c in CHANNELS if c in form.getall(f"tier{number}_channel", [])],
                )
            )
        return cls(
            name=str(form.get("name", "")).strip(),
            last_tier_repeats=str(form.get("last_tier_repeats", "")).strip(),
            retrigger_after_min=str(form.get("retrigger_after_min", "")).strip(),
            tiers=tiers,
        )

    def with_blank_tier(self) -> PolicyForm:
        """The form with one empty row to add a tier in."""
        if len(self.tiers) >= MAX_TIERS or (self.tiers and self.tiers[-1].blank):
            return self
        return PolicyForm(
            self.name,
            self.last_tier_repeats,
            self.retrigger_after_min,
            [*self.tiers, TierForm(channels=[])],
        )

    def spec(self) -> tuple[alerts.PolicySpec | None, list[str]]:
        """The policy for the domain, or the form's own problems (numbers that are not)."""
        problems = []
        repeats = _whole(self.last_tier_repeats, 1, 20)
        if repeats is None:
            problems.append(_("Write how often the last tier is tried: 1 to 20 times."))
        retrigger = _whole(self.retrigger_after_min, 0, 1440)
        if retrigger is None:
            problems.append(_("Write the minutes before it rings again: 0 to 1440."))
        tiers: list[alerts.TierSpec] = []
        for tier in (t for t in self.tiers if not t.blank):
            position = len(tiers) + 1
            timeout = _whole(tier.timeout_s, 1, 86400)
            if timeout is None:
                problems.append(
                    _(
                        "Tier %(n)s: write the time to answer in seconds (at most a day).",
                        n=position,
                    )
                )
                timeout = 0
            recipients: list[dict[str, Any]] = [{"kind": kind} for kind in tier.recipients]
            if tier.staff_id:
                recipients.append({"kind": "staff", "id": _whole(tier.staff_id, 1, 2**31)})
            tiers.append(alerts.TierSpec(timeout, recipients, list(tier.channels)))
        if problems or repeats is None or retrigger is None:
            return None, problems
        spec = alerts.PolicySpec(
            name=self.name,
            tiers=tiers,
            last_tier_repeats=repeats,
            retrigger_after_min=retrigger,
        )
        return spec, []


def _whole(value: str, low: int, high: int) -> int | None:
    """A whole number from ``low`` to ``high``, or None."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if low <= number <= high else None


def _zone(team: care.CareTeam) -> ZoneInfo:
    """The team's clock, in which shifts and overrides are written."""
    try:
        return ZoneInfo(team.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Atlantic/Reykjavik")


async def _team_for_coordinator(
    session: AsyncSession, viewer: Viewer, team_id: int
) -> care.CareTeam:
    """The team, when the caller coordinates it: 404 for other teams, 403 for other roles."""
    team = await session.get(care.CareTeam, team_id)
    if team is None or team_id not in viewer.identity.team_ids:
        raise NotFoundException(f"no team {team_id}")
    if not care.may(viewer.identity.role, care.Permission.EDIT_POLICY):
        raise PermissionDeniedException(_("Only the team's coordinators change its on-call rota."))
    return team


async def _members(session: AsyncSession, team_id: int) -> list[care.StaffUser]:
    """The team's active staff, by name."""
    rows = await session.exec(
        select(care.StaffUser)
        .join(care.TeamMembership, col(care.TeamMembership.staff_id) == col(care.StaffUser.id))
        .where(care.TeamMembership.team_id == team_id, col(care.StaffUser.is_active))
        .order_by(col(care.StaffUser.full_name))
    )
    return list(rows.all())


async def _policy(
    session: AsyncSession, team_id: int
) -> tuple[alerts.EscalationPolicy | None, list[alerts.EscalationTier]]:
    """The team's policy (the one the escalation uses) and its tiers in order."""
    policy = (
        await session.exec(
            select(alerts.EscalationPolicy)
            .where(alerts.EscalationPolicy.team_id == team_id)
            .order_by(col(alerts.EscalationPolicy.id))
        )
    ).first()
    if policy is None:
        return None, []
    tiers = await session.exec(
        select(alerts.EscalationTier)
        .where(alerts.EscalationTier.policy_id == policy.id)
        .order_by(col(alerts.EscalationTier.position))
    )
    return policy, list(tiers.all())


async def _page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    session: AsyncSession,
    team: care.CareTeam,
    *,
    policy_form: PolicyForm | None = None,
    policy_problems: list[str] | None = None,
    rota_problems: list[str] | None = None,
) -> Template:
    """The policy and rota page, with the problems of the last try when there were any."""
    assert team.id is not None
    policy, tiers = await _policy(session, team.id)
    shifts = list(
        (
            await session.exec(
                select(alerts.OnCallShift)
                .where(alerts.OnCallShift.team_id == team.id)
                .order_by(col(alerts.OnCallShift.weekday), col(alerts.OnCallShift.starts))
            )
        ).all()
    )
    overrides = (
        await session.exec(
            select(alerts.OnCallOverride)
            .where(
                alerts.OnCallOverride.team_id == team.id,
                col(alerts.OnCallOverride.ends_at) > care.utcnow(),
            )
            .order_by(col(alerts.OnCallOverride.starts_at))
        )
    ).all()
    members = await _members(session, team.id)
    teams = (
        await session.exec(
            select(care.CareTeam)
            .where(col(care.CareTeam.id).in_(sorted(viewer.identity.team_ids)))
            .order_by(col(care.CareTeam.name))
        )
    ).all()
    saved_gaps = await alerts.policy_gaps(session, team.id, tiers) if policy else []
    form = policy_form or PolicyForm.of_policy(policy, tiers)
    problems = (policy_problems or []) + (rota_problems or [])
    return console_page(
        request,
        viewer,
        "console_policy.html",
        section="teams",
        team=team,
        teams=teams,
        form=form.with_blank_tier(),
        policy=policy,
        policy_problems=policy_problems or [],
        rota_problems=rota_problems or [],
        saved_gaps=[in_words(gap) for gap in saved_gaps],
        coverage=[span_in_words(span) for span in alerts.coverage_gaps(shifts)],
        shifts=shifts,
        overrides=overrides,
        members=members,
        names={m.id: m.full_name for m in members},
        weekdays=list(enumerate(weekday_names(), start=1)),
        recipient_kinds=RECIPIENT_KINDS,
        channels=[(c, channel_name(c)) for c in CHANNELS],
        notice=request.query_params.get("notice"),
        status_code=HTTP_400_BAD_REQUEST if problems else 200,
    )


def _here(team_id: int, notice: str) -> Redirect:
    """Back to the team's page with a notice."""
    return back_to(f"/console/teams/{team_id}/policy?notice={notice}")


@get("/console/teams", include_in_schema=False)
async def my_teams(request: Request[Any, Any, Any], sessions: Sessions) -> Redirect:
    """A coordinator's first team's policy and rota."""
    viewer = await viewer_of(request, sessions)
    if (
        not care.may(viewer.identity.role, care.Permission.EDIT_POLICY)
        or not viewer.identity.team_ids
    ):
        raise PermissionDeniedException(_("Only the team's coordinators change its on-call rota."))
    async with sessions() as session:
        first = (
            await session.exec(
                select(care.CareTeam.id)
                .where(col(care.CareTeam.id).in_(sorted(viewer.identity.team_ids)))
                .order_by(col(care.CareTeam.name))
            )
        ).first()
    return back_to(f"/console/teams/{first}/policy")


@get("/console/teams/{team_id:int}/policy", include_in_schema=False)
async def policy_page(
    request: Request[Any, Any, Any], team_id: FromPath[int], sessions: Sessions
) -> Template:
    """The team's escalation policy, on-call shifts and overrides, and what is uncovered."""
    viewer = await viewer_of(request, sessions)
    async with sessions() as session:
        team = await _team_for_coordinator(session, viewer, team_id)
        return await _page(request, viewer, session, team)


@post("/console/teams/{team_id:int}/policy", include_in_schema=False)
async def save_policy(
    request: Request[Any, Any, Any], team_id: FromPath[int], sessions: Sessions
) -> Template | Redirect:
    """Replace the team's policy, or show it again with every gap in words."""
    viewer = await viewer_of(request, sessions)
    form = PolicyForm.of_post(await request.form())
    async with sessions() as session:
        team = await _team_for_coordinator(session, viewer, team_id)
        spec, problems = form.spec()
        if spec is not None:
            try:
                await alerts.save_policy(session, team_id, spec)
            except alerts.PolicyGapError as err:
                problems = [in_words(gap) for gap in err.gaps]
        if problems:  # the domain refused before writing anything
            return await _page(
                request, viewer, session, team, policy_form=form, policy_problems=problems
            )
        await session.commit()
    return _here(team_id, "policy_saved")


def _shift_problems(form: FormMultiDict, member_ids: set[int]) -> list[str]:
    """What is wrong with a posted shift, in words."""
    problems = []
    if _whole(str(form.get("staff_id", "")), 1, 2**31) not in member_ids:
        problems.append(_("Choose who is on call."))
    if _whole(str(form.get("weekday", "")), 1, 7) is None:
        problems.append(_("Choose the weekday the shift starts on."))
    for name in ("starts", "ends"):
        if not CLOCK.fullmatch(str(form.get(name, "")).strip()):
            said = _("“%(value)s” is not a time of day; write it like 08:30.", value=form.get(name))
            problems.append(said)
    return problems


@post("/console/teams/{team_id:int}/shifts", include_in_schema=False)
async def add_shift(
    request: Request[Any, Any, Any],
    team_id: FromPath[int],
    sessions: Sessions,
    alert_service: Alerts,
) -> Template | Redirect:
    """A weekly shift; one ending before it starts runs overnight."""
    viewer = await viewer_of(request, sessions)
    form = await request.form()
    async with sessions() as session:
        team = await _team_for_coordinator(session, viewer, team_id)
        members = {m.id for m in await _members(session, team_id) if m.id is not None}
        problems = _shift_problems(form, members)
        if problems:
            return await _page(request, viewer, session, team, rota_problems=problems)
    await alert_service.add_shift(
        viewer.identity.actor,
        team_id,
        staff_id=int(str(form.get("staff_id"))),
        weekday=int(str(form.get("weekday"))),
        starts=str(form.get("starts")).strip(),
        ends=str(form.get("ends")).strip(),
    )
    return _here(team_id, "shift_added")


@post("/console/teams/{team_id:int}/shifts/{shift_id:int}/remove", include_in_schema=False)
async def remove_shift(
    request: Request[Any, Any, Any],
    team_id: FromPath[int],
    shift_id: FromPath[int],
    sessions: Sessions,
    alert_service: Alerts,
) -> Redirect:
    """Take a weekly shift off the rota."""
    viewer = await viewer_of(request, sessions)
    await alert_service.remove_shift(viewer.identity.actor, team_id, shift_id)
    return _here(team_id, "shift_removed")


def _local_moment(value: str, zone: ZoneInfo) -> datetime | None:
    """A "2026-11-23T08:00" of the team's clock as a UTC moment, or None."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


@post("/console/teams/{team_id:int}/overrides", include_in_schema=False)
async def add_override(
    request: Request[Any, Any, Any],
    team_id: FromPath[int],
    sessions: Sessions,
    alert_service: Alerts,
) -> Template | Redirect:
    """Someone else on call for a while: it wins over the weekly shifts."""
    viewer = await viewer_of(request, sessions)
    form = await request.form()
    async with sessions() as session:
        team = await _team_for_coordinator(session, viewer, team_id)
        members = {m.id for m in await _members(session, team_id) if m.id is not None}
        staff_id = _whole(str(form.get("staff_id", "")), 1, 2**31)
        starts = _local_moment(str(form.get("starts_at", "")), _zone(team))
        ends = _local_moment(str(form.get("ends_at", "")), _zone(team))
        note = str(form.get("note", "")).strip()
        problems = []
        if staff_id not in members:
            problems.append(_("Choose who is on call."))
        if starts is None or ends is None:
            problems.append(_("Give the start and the end as a date and a time."))
        elif ends <= starts:
            problems.append(_("The end must come after the start."))
        if len(note) > 300:
            problems.append(_("The note is too long (300 characters at most)."))
        if problems or staff_id is None or starts is None or ends is None:
            return await _page(request, viewer, session, team, rota_problems=problems)
    await alert_service.add_override(
        viewer.identity.actor, team_id, staff_id=staff_id, starts_at=starts, ends_at=ends, note=note
    )
    return _here(team_id, "override_added")


@post("/console/teams/{team_id:int}/overrides/{override_id:int}/remove", include_in_schema=False)
async def remove_override(
    request: Request[Any, Any, Any],
    team_id: FromPath[int],
    override_id: FromPath[int],
    sessions: Sessions,
    alert_service: Alerts,
) -> Redirect:
    """Take an override off the rota."""
    viewer = await viewer_of(request, sessions)
    await alert_service.remove_override(viewer.identity.actor, team_id, override_id)
    return _here(team_id, "override_removed")


POLICY_ROUTES: list[ControllerRouterHandler] = [
    my_teams,
    policy_page,
    save_policy,
    add_shift,
    remove_shift,
    add_override,
    remove_override,
]
