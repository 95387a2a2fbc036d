"""The FHIR R4 read API's service: reads, searches with paging, ``$everything`` and the
CapabilityStatement; it owns the queries, the role rule and the access log of every read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from interop import resources
from interop.errors import InvalidSearchError, ResourceNotFoundError
from interop.search import SearchQuery, parse_search
from interop.sources import SOURCES, Found, Scope, Source

FHIR_VERSION = "4.0.1"
BATCH = 200
# What each resource type asks of the caller's role.
PERMISSION: dict[str, care.Permission] = {
    "Device": care.Permission.READ_DEVICES,
    "AuditEvent": care.Permission.READ_ACCESS_LOG,
} | {
    name: care.Permission.READ_CLINICAL for name in SOURCES if name not in ("Device", "AuditEvent")
}


@dataclass(frozen=True)
class FhirCaller:
    """The staff member behind a FHIR request and the care teams they belong to."""

    staff_id: int
    organisation_id: int
    role: str
    team_ids: frozenset[int]


@dataclass(frozen=True)
class Page:
    """One page of a search: what was found and where the next page starts."""

    found: list[Found]
    next_cursor: str | None


def may_read(caller: FhirCaller, resource_type: str) -> bool:
    """Whether the caller's role may read resources of this type."""
    return resource_type in PERMISSION and care.may(caller.role, PERMISSION[resource_type])


def readable_types(caller: FhirCaller) -> list[str]:
    """The resource types the caller's role may read."""
    return [name for name in SOURCES if may_read(caller, name)]


def _source(caller: FhirCaller, resource_type: str) -> Source:
    """The source of a type the caller may read."""
    if resource_type not in SOURCES:
        raise InvalidSearchError(f"Vaki does not serve {resource_type} resources")
    care.require(caller.role, PERMISSION[resource_type])
    return SOURCES[resource_type]


def _matches(found: Found, query: SearchQuery) -> bool:
    """Whether one resource meets the search's conditions."""
    if query.codes is not None and not query.codes & found.codes:
        return False
    if query.categories is not None and not query.categories & found.categories:
        return False
    if not all(interval.holds(found.date) for interval in query.dates):
        return False
    return all(interval.holds(found.last_updated) for interval in query.last_updated)


async def scope_of(
    session: AsyncSession, caller: FhirCaller, patients: frozenset[int] | None = None
) -> Scope:
    """The residents and teams the caller may see (a member of another municipality's team
    sees none of ours)."""
    residents = await care.residents_of_teams(session, caller.team_ids)
    return Scope(frozenset(residents), caller.team_ids, patients)


async def collect(
    session: AsyncSession,
    source: Source,
    scope: Scope,
    query: SearchQuery,
    *,
    limit: int | None,
) -> Page:
    """Resources of one type in key order from the query's cursor, at most ``limit``."""
    found: list[Found] = []
    after, skip = query.cursor if query.cursor is not None else (None, 0)
    start = after
    while True:
        rows = await source.rows(session, scope, start, BATCH, query.codes)
        for row in rows:
            key = source.key_of(row)
            matching = [f for f in await source.expand(session, row) if _matches(f, query)]
            first = skip if key == after else 0
            for index in range(first, len(matching)):
                if limit is not None and len(found) == limit:
                    return Page(found, f"{key}.{index}")
                found.append(matching[index])
        if len(rows) < BATCH:
            return Page(found, None)
        last = source.key_of(rows[-1])
        start = str(int(last) + 1) if last.isdigit() else last + "\x00"


class FhirService:
    """Reads Vaki's records as FHIR R4 resources for a staff member or an integration."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _log(
        self, session: AsyncSession, caller: FhirCaller, found: Sequence[Found], context: str
    ) -> None:
        """One access-log entry per resident whose data was read."""
        for resident_id in sorted({f.resident_id for f in found if f.resident_id is not None}):
            await care.log_access(
                session,
                staff_id=caller.staff_id,
                organisation_id=caller.organisation_id,
                resident_id=resident_id,
                action="fhir.read",
                context=context,
            )

    async def read(
        self, caller: FhirCaller, resource_type: str, resource_id: str, *, context: str
    ) -> dict[str, Any]:
        """One resource by id, when the caller's teams may see it."""
        source = _source(caller, resource_type)
        key = resource_id if resource_type == "Device" else resource_id.partition("-")[0]
        if resource_type == "Questionnaire":
            key = resource_id.removeprefix("checkin-")
        if resource_type != "Device" and not key.isdigit():
            raise ResourceNotFoundError(f"{resource_type}/{resource_id} is not known")
        async with self._sessions() as session:
            scope = await scope_of(session, caller)
            rows = await source.rows(session, scope, key, 1, None)
            for row in rows:
                if source.key_of(row) != key and resources.device_id(source.key_of(row)) != key:
                    continue
                for found in await source.expand(session, row):
                    if found.resource.id == resource_id:
                        await self._log(session, caller, [found], context)
                        await session.commit()
                        return resources.as_json(found.resource)
        raise ResourceNotFoundError(f"{resource_type}/{resource_id} is not known")

    async def search(
        self,
        caller: FhirCaller,
        resource_type: str,
        params: Mapping[str, Sequence[str]],
        *,
        base: str,
        context: str,
    ) -> dict[str, Any]:
        """A searchset Bundle of one page, with self and next links."""
        source = _source(caller, resource_type)
        query = parse_search(params, source.parameters)
        async with self._sessions() as session:
            scope = await scope_of(session, caller, query.patients)
            page = await collect(session, source, scope, query, limit=query.count)
            await self._log(session, caller, page.found, context)
            await session.commit()
        links = [{"relation": "self", "url": _url(base, resource_type, query.raw, query.cursor)}]
        if page.next_cursor is not None:
            cursor = tuple(page.next_cursor.rsplit(".", 1))
            links.append(
                {
                    "relation": "next",
                    "url": _url(base, resource_type, query.raw, (cursor[0], int(cursor[1]))),
                }
            )
        return _bundle(base, page.found, links)

    async def everything(
        self, caller: FhirCaller, patient_id: int, *, base: str, context: str
    ) -> dict[str, Any]:
        """Everything about one resident the caller's role may read, as one Bundle."""
        _source(caller, "Patient")
        found: list[Found] = []
        async with self._sessions() as session:
            scope = await scope_of(session, caller, frozenset({patient_id}))
            if patient_id not in scope.residents:
                raise ResourceNotFoundError(f"Patient/{patient_id} is not known")
            for name in readable_types(caller):
                source = SOURCES[name]
                if not source.per_patient:
                    continue
                page = await collect(session, source, scope, SearchQuery(), limit=None)
                found.extend(page.found)
            await self._log(session, caller, found, context)
            await session.commit()
        links = [{"relation": "self", "url": f"{base}/Patient/{patient_id}/$everything"}]
        return _bundle(base, found, links)


def _url(
    base: str, resource_type: str, raw: Sequence[tuple[str, str]], cursor: tuple[str, int] | None
) -> str:
    """A search's URL, with the cursor of its page."""
    params = list(raw)
    if cursor is not None:
        params.append(("_cursor", f"{cursor[0]}.{cursor[1]}"))
    return f"{base}/{resource_type}" + (f"?{urlencode(params)}" if params else "")


def _bundle(base: str, found: Sequence[Found], links: list[dict[str, str]]) -> dict[str, Any]:
    """A searchset Bundle, validated as a whole."""
    bundle = Bundle.model_validate(
        {
            "type": "searchset",
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/{f.resource.get_resource_type()}/{f.resource.id}",
                    "resource": f.resource,
                    "search": {"mode": "match"},
                }
                for f in found
            ],
        }
    )
    return resources.as_json(bundle)


def capability_statement(base: str, published: str) -> dict[str, Any]:
    """What this server supports, exactly: the types, their reads and search parameters,
    ``$everything`` and the bulk export."""
    types = {
        "date": "date",
        "patient": "reference",
        "code": "token",
        "category": "token",
        "_lastUpdated": "date",
        "_count": "number",
    }
    rest_resources = []
    for name, source in SOURCES.items():
        params = [*source.parameters, "_lastUpdated", "_count"]
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": p, "type": types[p]} for p in params],
        }
        if name == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                },
            ]
        rest_resources.append(entry)
    statement = CapabilityStatement.model_validate(
        {
            "status": "active",
            "date": published,
            "kind": "instance",
            "software": {"name": "Vaki"},
            "implementation": {"description": "Vaki FHIR R4 read API", "url": base},
            "fhirVersion": FHIR_VERSION,
            "format": ["application/fhir+json", "json"],
            "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": (
                            "A bearer API token (vaki api-token) or a console session; "
                            "only residents of the caller's care teams are served."
                        )
                    },
                    "resource": rest_resources,
                    "operation": [
                        {
                            "name": "export",
                            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                        }
                    ],
                }
            ],
        }
    )
    return resources.as_json(statement)
