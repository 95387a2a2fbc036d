"""Where each FHIR resource type's rows come from: one query per type, filtered to the
residents the caller's teams look after, read in key order so that paging is exact."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.resource import Resource
from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import video
from interop import resources
from interop.codes import reading_types_for_code


@dataclass(frozen=True)
class Found:
    """One resource a row yields, with what searches match it by."""

    key: str
    resident_id: int | None
    resource: Resource
    date: datetime | None
    last_updated: datetime | None
    codes: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Scope:
    """What the caller may see: the residents and the care teams."""

    residents: frozenset[int]
    teams: frozenset[int]
    patients: frozenset[int] | None = None

    @property
    def residents_asked(self) -> list[int]:
        """The visible residents, narrowed to the ones the search names."""
        wanted = self.residents if self.patients is None else self.residents & self.patients
        return sorted(wanted)


Rows = Callable[
    [AsyncSession, Scope, str | None, int, frozenset[str] | None], Awaitable[Sequence[Any]]
]
Expand = Callable[[AsyncSession, Any], Awaitable[list[Found]]]


@dataclass(frozen=True)
class Source:
    """One resource type: its rows in key order and how a row becomes resources."""

    type: str
    rows: Rows
    expand: Expand
    key_of: Callable[[Any], str]
    parameters: tuple[str, ...]
    per_patient: bool = True


def _tokens(*codings: tuple[str, str]) -> frozenset[str]:
    """A coding as search tokens: ``code`` and ``system|code``."""
    return frozenset(t for system, code in codings for t in (code, f"{system}|{code}"))


def _codings(concepts: Sequence[Any] | None) -> frozenset[str]:
    """The tokens of CodeableConcepts."""
    if not concepts:
        return frozenset()
    return _tokens(
        *((c.system or "", c.code or "") for concept in concepts for c in concept.coding or [])
    )


async def _residents(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Residents of the caller's teams."""
    query = select(care.Resident).where(col(care.Resident.id).in_(scope.residents_asked))
    if after is not None:
        query = query.where(col(care.Resident.id) >= int(after))
    return (await session.exec(query.order_by(col(care.Resident.id)).limit(limit))).all()


async def _patient(session: AsyncSession, row: care.Resident) -> list[Found]:
    """A resident as a Patient."""
    return [Found("0", row.id, resources.patient(row), None, row.created_at)]


async def _devices(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Devices in the homes of the caller's residents."""
    query = select(devices.Device).where(col(devices.Device.resident_id).in_(scope.residents_asked))
    if after is not None:
        query = query.where(col(devices.Device.id) >= after)
    return (await session.exec(query.order_by(col(devices.Device.id)).limit(limit))).all()


async def _device(session: AsyncSession, row: devices.Device) -> list[Found]:
    """A device as a Device."""
    found = resources.device(row)
    return [
        Found(
            "0",
            row.resident_id,
            found,
            None,
            row.last_seen_at or row.created_at,
            codes=_codings([found.type] if found.type else None),
        )
    ]


async def _readings(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Readings of the caller's residents, only of the types the asked codes can match."""
    query = select(devices.Reading).where(
        col(devices.Reading.resident_id).in_(scope.residents_asked)
    )
    if codes is not None:
        types = set().union(*(reading_types_for_code(code) for code in codes))
        query = query.where(col(devices.Reading.type).in_(sorted(types)))
    if after is not None:
        query = query.where(col(devices.Reading.id) >= int(after))
    return (await session.exec(query.order_by(col(devices.Reading.id)).limit(limit))).all()


async def _observations(session: AsyncSession, row: devices.Reading) -> list[Found]:
    """A reading as its Observations."""
    taken = resources.effective_time(row)
    return [
        Found(
            suffix,
            row.resident_id,
            observation,
            taken,
            row.received_at,
            codes=_codings([observation.code]),
            categories=_codings(observation.category),
        )
        for suffix, observation in resources.observations(row)
    ]


async def _alerts(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Alerts about the caller's residents, and their teams' alerts about no resident."""
    about: ColumnElement[bool] = col(alerts.Alert.resident_id).in_(scope.residents_asked)
    if scope.patients is None:
        about = or_(
            about,
            and_(
                col(alerts.Alert.resident_id).is_(None),
                col(alerts.Alert.team_id).in_(sorted(scope.teams)),
            ),
        )
    query = select(alerts.Alert).where(about)
    if after is not None:
        query = query.where(col(alerts.Alert.id) >= int(after))
    return (await session.exec(query.order_by(col(alerts.Alert.id)).limit(limit))).all()


async def _flag(session: AsyncSession, row: alerts.Alert) -> list[Found]:
    """An alert as a Flag."""
    found = resources.flag(row)
    return [
        Found(
            "0",
            row.resident_id,
            found,
            row.first_seen_at,
            row.resolved_at or row.acknowledged_at or row.last_seen_at,
            codes=_codings([found.code]),
            categories=_codings(found.category),
        )
    ]


async def _answers(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Answered check-ins of the caller's residents."""
    query = select(alerts.CheckinPrompt).where(
        col(alerts.CheckinPrompt.resident_id).in_(scope.residents_asked),
        col(alerts.CheckinPrompt.status) == alerts.PromptStatus.ANSWERED,
    )
    if after is not None:
        query = query.where(col(alerts.CheckinPrompt.id) >= int(after))
    return (await session.exec(query.order_by(col(alerts.CheckinPrompt.id)).limit(limit))).all()


async def _response(session: AsyncSession, row: alerts.CheckinPrompt) -> list[Found]:
    """An answered check-in as a QuestionnaireResponse."""
    return [
        Found(
            "0",
            row.resident_id,
            resources.questionnaire_response(row),
            row.answered_at,
            row.answered_at or row.slot_at,
        )
    ]


async def _plans(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Check-in plans of the caller's residents."""
    query = select(alerts.CheckinPlan).where(
        col(alerts.CheckinPlan.resident_id).in_(scope.residents_asked)
    )
    if after is not None:
        query = query.where(col(alerts.CheckinPlan.id) >= int(after))
    return (await session.exec(query.order_by(col(alerts.CheckinPlan.id)).limit(limit))).all()


async def _questionnaire(session: AsyncSession, row: alerts.CheckinPlan) -> list[Found]:
    """A check-in plan as a Questionnaire."""
    return [Found("0", row.resident_id, resources.questionnaire(row), None, row.updated_at)]


async def _consultations(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Video consultations with the caller's residents."""
    query = select(video.Consultation).where(
        col(video.Consultation.resident_id).in_(scope.residents_asked)
    )
    if after is not None:
        query = query.where(col(video.Consultation.id) >= int(after))
    return (await session.exec(query.order_by(col(video.Consultation.id)).limit(limit))).all()


async def _encounter(session: AsyncSession, row: video.Consultation) -> list[Found]:
    """A consultation as a virtual Encounter."""
    return [
        Found(
            "0",
            row.resident_id,
            resources.encounter(row),
            row.started_at or row.scheduled_at,
            row.ended_at or row.started_at or row.created_at,
        )
    ]


async def _contacts(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Contacts of the caller's residents."""
    query = select(care.Contact).where(col(care.Contact.resident_id).in_(scope.residents_asked))
    if after is not None:
        query = query.where(col(care.Contact.id) >= int(after))
    return (await session.exec(query.order_by(col(care.Contact.id)).limit(limit))).all()


async def _related(session: AsyncSession, row: care.Contact) -> list[Found]:
    """A contact as a RelatedPerson."""
    return [Found("0", row.resident_id, resources.related_person(row), None, None)]


async def _teams(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """The caller's own care teams."""
    query = select(care.CareTeam).where(col(care.CareTeam.id).in_(sorted(scope.teams)))
    if after is not None:
        query = query.where(col(care.CareTeam.id) >= int(after))
    return (await session.exec(query.order_by(col(care.CareTeam.id)).limit(limit))).all()


async def _care_team(session: AsyncSession, row: care.CareTeam) -> list[Found]:
    """A care team with its members."""
    members = (
        await session.exec(
            select(care.StaffUser)
            .join(care.TeamMembership, col(care.TeamMembership.staff_id) == care.StaffUser.id)
            .where(care.TeamMembership.team_id == row.id, col(care.StaffUser.is_active))
            .order_by(col(care.StaffUser.id))
        )
    ).all()
    return [Found("0", None, resources.care_team(row, list(members)), None, row.created_at)]


async def _log(
    session: AsyncSession, scope: Scope, after: str | None, limit: int, codes: frozenset[str] | None
) -> Sequence[Any]:
    """Access-log entries of the caller's residents."""
    query = select(care.AccessLogEntry).where(
        col(care.AccessLogEntry.resident_id).in_(scope.residents_asked)
    )
    if after is not None:
        query = query.where(col(care.AccessLogEntry.id) >= int(after))
    return (await session.exec(query.order_by(col(care.AccessLogEntry.id)).limit(limit))).all()


async def _audit(session: AsyncSession, row: care.AccessLogEntry) -> list[Found]:
    """An access-log entry as an AuditEvent."""
    staff = await session.get(care.StaffUser, row.staff_id) if row.staff_id else None
    org = await session.get(care.Organisation, row.organisation_id) if row.organisation_id else None
    return [
        Found(
            "0",
            row.resident_id,
            resources.audit_event(
                row, staff.full_name if staff else None, org.name if org else None
            ),
            row.at,
            row.at,
        )
    ]


_DATED = ("patient", "date")
SOURCES: dict[str, Source] = {
    source.type: source
    for source in (
        Source("Patient", _residents, _patient, lambda r: str(r.id), ()),
        Source("Device", _devices, _device, lambda r: str(r.id), ("patient",)),
        Source(
            "Observation",
            _readings,
            _observations,
            lambda r: str(r.id),
            ("patient", "code", "category", "date"),
        ),
        Source("Flag", _alerts, _flag, lambda r: str(r.id), _DATED),
        Source("QuestionnaireResponse", _answers, _response, lambda r: str(r.id), _DATED),
        Source("Questionnaire", _plans, _questionnaire, lambda r: str(r.id), ()),
        Source("Encounter", _consultations, _encounter, lambda r: str(r.id), _DATED),
        Source("RelatedPerson", _contacts, _related, lambda r: str(r.id), ("patient",)),
        Source("CareTeam", _teams, _care_team, lambda r: str(r.id), (), per_patient=False),
        Source("AuditEvent", _log, _audit, lambda r: str(r.id), _DATED),
    )
}
