"""The FHIR R4 API under /fhir: parse the request, call one interop service method, answer
in application/fhir+json; every error is an OperationOutcome."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from litestar import Request, Router, delete, get
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.params import FromPath
from litestar.response import Response
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import interop
from web.auth import identify
from web.error_responses import DOMAIN_ERRORS

Sessions = NamedDependency[async_sessionmaker[AsyncSession]]
FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
# The app keeps its export worker in its state under this key (server puts it there).
EXPORT_STATE_KEY = "fhir_export"
_OUTPUT_FORMATS = frozenset({NDJSON, "application/ndjson", "ndjson"})
_EXPORT_PARAMETERS = frozenset({"_type", "_since", "_outputFormat"})


def fhir_response(body: dict[str, Any], status_code: int = 200, **headers: str) -> Response[bytes]:
    """A FHIR JSON answer."""
    return Response(
        json.dumps(body, ensure_ascii=False).encode(),
        status_code=status_code,
        media_type=FHIR_JSON,
        headers={"Cache-Control": "no-store", **headers},
    )


def outcome(status_code: int, code: str, text: str) -> Response[bytes]:
    """An OperationOutcome with one issue."""
    return fhir_response(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}],
        },
        status_code,
    )


_OUTCOMES: tuple[tuple[type[Exception], int, str], ...] = (
    (interop.InvalidError, 400, "invalid"),
    (interop.NotFoundError, 404, "not-found"),
    (care.NotAllowedError, 403, "forbidden"),
)


def _on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Every failure under /fhir as an OperationOutcome with the status it stands for."""
    for kind, status_code, code in _OUTCOMES:
        if isinstance(exc, kind):
            return outcome(status_code, code, str(exc))
    if isinstance(exc, NotAuthorizedException):
        return outcome(401, "login", str(exc.detail))
    if isinstance(exc, PermissionDeniedException):
        return outcome(403, "forbidden", str(exc.detail))
    if isinstance(exc, HTTPException):
        return outcome(exc.status_code, "processing", str(exc.detail))
    return outcome(500, "exception", "the server failed to answer")


async def caller_of(
    request: ASGIConnection[Any, Any, Any, Any], sessions: async_sessionmaker[AsyncSession]
) -> interop.FhirCaller:
    """The staff member or integration behind a FHIR request."""
    identity = await identify(request, sessions)
    return interop.FhirCaller(
        staff_id=identity.staff_id,
        organisation_id=identity.organisation_id,
        role=identity.role,
        team_ids=identity.team_ids,
    )


def base_of(request: Request[Any, Any, Any]) -> str:
    """This server's FHIR base URL as the client reached it."""
    return str(request.base_url).rstrip("/") + "/fhir"


def _context(request: Request[Any, Any, Any]) -> str:
    """What was asked, for the access log."""
    query = request.url.query
    return f"FHIR GET {request.url.path}" + (f"?{query}" if query else "")


def _params(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    """The query parameters, each with all its values."""
    return {name: request.query_params.getall(name) for name in request.query_params}


def _worker(request: Request[Any, Any, Any]) -> interop.ExportWorker:
    """The app's export worker."""
    worker = request.app.state.get(EXPORT_STATE_KEY)
    if not isinstance(worker, interop.ExportWorker):
        raise HTTPException(status_code=503, detail="bulk export is not running")
    return worker


@get("/metadata", opt={"public": True}, include_in_schema=False)
async def metadata(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The CapabilityStatement: exactly what this server supports."""
    return fhir_response(
        interop.capability_statement(base_of(request), care.utcnow().date().isoformat())
    )


@get("/{resource_type:str}", include_in_schema=False)
async def search(
    request: Request[Any, Any, Any], resource_type: FromPath[str], sessions: Sessions
) -> Response[bytes]:
    """A search of one resource type, one page at a time."""
    return await _search(request, resource_type, sessions)


async def _search(
    request: Request[Any, Any, Any], resource_type: str, sessions: async_sessionmaker[AsyncSession]
) -> Response[bytes]:
    """One page of a search."""
    caller = await caller_of(request, sessions)
    bundle = await interop.FhirService(sessions).search(
        caller, resource_type, _params(request), base=base_of(request), context=_context(request)
    )
    return fhir_response(bundle)


@get("/{resource_type:str}/{resource_id:str}", include_in_schema=False)
async def read(
    request: Request[Any, Any, Any],
    resource_type: FromPath[str],
    resource_id: FromPath[str],
    sessions: Sessions,
) -> Response[bytes]:
    """One resource by id."""
    return await _read(request, resource_type, resource_id, sessions)


async def _read(
    request: Request[Any, Any, Any],
    resource_type: str,
    resource_id: str,
    sessions: async_sessionmaker[AsyncSession],
) -> Response[bytes]:
    """One resource, answered."""
    caller = await caller_of(request, sessions)
    resource = await interop.FhirService(sessions).read(
        caller, resource_type, resource_id, context=_context(request)
    )
    return fhir_response(resource)


@get("/Patient", include_in_schema=False)
async def search_patients(request: Request[Any, Any, Any], sessions: Sessions) -> Response[bytes]:
    """A search of residents (its own route: /fhir/Patient also leads to the operations)."""
    return await _search(request, "Patient", sessions)


@get("/Patient/{resource_id:str}", include_in_schema=False)
async def read_patient(
    request: Request[Any, Any, Any], resource_id: FromPath[str], sessions: Sessions
) -> Response[bytes]:
    """One resident as a Patient."""
    return await _read(request, "Patient", resource_id, sessions)


@get("/Patient/{resident_id:int}/$everything", include_in_schema=False)
async def everything(
    request: Request[Any, Any, Any], resident_id: FromPath[int], sessions: Sessions
) -> Response[bytes]:
    """Everything about one resident the caller may read."""
    caller = await caller_of(request, sessions)
    bundle = await interop.FhirService(sessions).everything(
        caller, resident_id, base=base_of(request), context=_context(request)
    )
    return fhir_response(bundle)


async def _kick_off(
    request: Request[Any, Any, Any], sessions: async_sessionmaker[AsyncSession], level: str
) -> Response[bytes]:
    """Accept a bulk export: 202 with where to ask for its status."""
    params = _params(request)
    unknown = sorted(set(params) - _EXPORT_PARAMETERS)
    if unknown:
        raise interop.InvalidSearchError(f"$export does not take {', '.join(unknown)}")
    output = params.get("_outputFormat", [NDJSON])[-1]
    if output not in _OUTPUT_FORMATS:
        raise interop.InvalidSearchError(f"$export writes NDJSON only, not {output}")
    since = None
    if params.get("_since"):
        try:
            since = care.as_utc(datetime.fromisoformat(params["_since"][-1].replace("Z", "+00:00")))
        except ValueError as err:
            raise interop.InvalidSearchError("_since must be a FHIR instant") from err
    types = [t for value in params.get("_type", []) for t in value.split(",") if t] or None
    caller = await caller_of(request, sessions)
    worker = _worker(request)
    job_id = await worker.service.kick_off(
        caller, level=level, types=types, since=since, request_url=str(request.url)
    )
    worker.wake()
    return Response(
        b"",
        status_code=202,
        headers={"Content-Location": f"{base_of(request)}/$export-status/{job_id}"},
    )


@get("/$export", include_in_schema=False)
async def export_system(request: Request[Any, Any, Any], sessions: Sessions) -> Response[bytes]:
    """Kick off an export of everything the caller's teams may see."""
    return await _kick_off(request, sessions, "system")


@get("/Patient/$export", include_in_schema=False)
async def export_patients(request: Request[Any, Any, Any], sessions: Sessions) -> Response[bytes]:
    """Kick off an export of the caller's residents' data."""
    return await _kick_off(request, sessions, "patient")


@get("/$export-status/{job_id:str}", include_in_schema=False)
async def export_status(
    request: Request[Any, Any, Any], job_id: FromPath[str], sessions: Sessions
) -> Response[bytes]:
    """202 while the job runs (come back after Retry-After), 200 with the manifest when done."""
    caller = await caller_of(request, sessions)
    state = await _worker(request).service.state(caller, job_id)
    if state.status == interop.ExportStatus.FAILED:
        return outcome(500, "exception", state.job.error or "the export failed")
    if state.status != interop.ExportStatus.COMPLETED:
        return Response(
            b"",
            status_code=202,
            headers={
                "Retry-After": str(interop.RETRY_AFTER_S),
                "X-Progress": state.status.value,
                "Cache-Control": "no-store",
            },
        )
    base = base_of(request)
    body = interop.manifest(state, lambda name: f"{base}/$export-file/{job_id}/{name}.ndjson")
    return Response(
        json.dumps(body).encode(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@delete("/$export-status/{job_id:str}", status_code=202, include_in_schema=False)
async def export_cancel(
    request: Request[Any, Any, Any], job_id: FromPath[str], sessions: Sessions
) -> None:
    """Cancel a job, or forget a finished one and its files."""
    caller = await caller_of(request, sessions)
    await _worker(request).service.cancel(caller, job_id)


@get("/$export-file/{job_id:str}/{file_name:str}", include_in_schema=False)
async def export_file(
    request: Request[Any, Any, Any],
    job_id: FromPath[str],
    file_name: FromPath[str],
    sessions: Sessions,
) -> Response[bytes]:
    """One NDJSON file of a finished export."""
    caller = await caller_of(request, sessions)
    body = await _worker(request).service.file(caller, job_id, file_name.removesuffix(".ndjson"))
    return Response(body.encode(), media_type=NDJSON, headers={"Cache-Control": "no-store"})


FHIR_ROUTER = Router(
    path="/fhir",
    route_handlers=[
        metadata,
        export_system,
        export_patients,
        export_status,
        export_cancel,
        export_file,
        everything,
        search_patients,
        read_patient,
        search,
        read,
    ],
    # Every error under /fhir is an OperationOutcome: these override the app's handlers
    # for the same classes (the most specific class's handler wins).
    exception_handlers=dict.fromkeys(
        (Exception, HTTPException, NotAuthorizedException, *DOMAIN_ERRORS), _on_error
    ),
    tags=["fhir"],
)
