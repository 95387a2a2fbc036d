"""The FHIR Bulk Data export: a kick-off writes a job to the database, a worker turns it
into NDJSON files, status polls read the job. Jobs survive restarts: a job whose worker
died is taken up again when its hold runs out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
from interop.errors import ExportNotFoundError, InvalidSearchError
from interop.models import ExportFile, ExportJob, ExportStatus
from interop.search import Interval, SearchQuery
from interop.service import FhirCaller, collect, readable_types, scope_of
from interop.sources import SOURCES

log = logging.getLogger(__name__)
HOLD = timedelta(minutes=5)
RETRY_AFTER_S = 2


@dataclass(frozen=True)
class ExportState:
    """What a status poll answers: still working, done (with the files) or failed."""

    status: ExportStatus
    job: ExportJob
    files: list[tuple[str, int]]


class ExportService:
    """Bulk exports: kick-off, status, files, cancel, and running the next due job."""

    def __init__(
        self,
        sessions: Callable[[], async_sessionmaker[AsyncSession] | None],
        clock: Callable[[], datetime] = care.utcnow,
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    def _open(self) -> AsyncSession:
        """A database session."""
        sessions = self._sessions()
        if sessions is None:
            raise RuntimeError("the database is not open")
        return sessions()

    async def kick_off(
        self,
        caller: FhirCaller,
        *,
        level: str,
        types: list[str] | None,
        since: datetime | None,
        request_url: str,
    ) -> str:
        """Accept an export of the given types (all the caller may read when None)."""
        care.require(caller.role, care.Permission.READ_CLINICAL)
        allowed = readable_types(caller)
        asked = types or [name for name in allowed if name != "AuditEvent"]
        for name in asked:
            if name not in SOURCES:
                raise InvalidSearchError(f"Vaki does not export {name} resources")
            if name not in allowed:
                raise care.NotAllowedError(f"a {caller.role} may not export {name}")
        if level == "patient":
            asked = [name for name in asked if SOURCES[name].per_patient]
        job = ExportJob(
            id=uuid.uuid4().hex,
            staff_id=caller.staff_id,
            organisation_id=caller.organisation_id,
            role=caller.role,
            team_ids=sorted(caller.team_ids),
            level=level,
            types=asked,
            since=since,
            request_url=request_url[:2000],
            created_at=self._clock(),
        )
        async with self._open() as session:
            session.add(job)
            await session.commit()
        return job.id

    async def _job(self, session: AsyncSession, caller: FhirCaller, job_id: str) -> ExportJob:
        """The caller's own job."""
        job = await session.get(ExportJob, job_id)
        if job is None or job.staff_id != caller.staff_id:
            raise ExportNotFoundError(f"no export {job_id}")
        return job

    async def state(self, caller: FhirCaller, job_id: str) -> ExportState:
        """Where the caller's job is, with its files once it has finished."""
        async with self._open() as session:
            job = await self._job(session, caller, job_id)
            files = (
                await session.exec(
                    select(ExportFile.resource_type, ExportFile.count)
                    .where(ExportFile.job_id == job_id)
                    .order_by(col(ExportFile.id))
                )
            ).all()
        return ExportState(ExportStatus(job.status), job, [(t, n) for t, n in files])

    async def file(self, caller: FhirCaller, job_id: str, resource_type: str) -> str:
        """One NDJSON file of the caller's finished job."""
        async with self._open() as session:
            await self._job(session, caller, job_id)
            body = (
                await session.exec(
                    select(ExportFile.body).where(
                        ExportFile.job_id == job_id, ExportFile.resource_type == resource_type
                    )
                )
            ).first()
        if body is None:
            raise ExportNotFoundError(f"export {job_id} has no {resource_type} file")
        return body

    async def cancel(self, caller: FhirCaller, job_id: str) -> None:
        """Forget the caller's job and its files."""
        async with self._open() as session:
            await self._job(session, caller, job_id)
            await session.exec(delete(ExportFile).where(col(ExportFile.job_id) == job_id))
            await session.exec(delete(ExportJob).where(col(ExportJob.id) == job_id))
            await session.commit()

    async def _claim(self, session: AsyncSession, worker: str) -> ExportJob | None:
        """Take the oldest job waiting (or one whose worker's hold ran out), atomically."""
        now = self._clock()
        due = or_(
            col(ExportJob.status) == ExportStatus.ACCEPTED,
            and_(
                col(ExportJob.status) == ExportStatus.RUNNING,
                col(ExportJob.claimed_until) < now,
            ),
        )
        candidate = (
            await session.exec(select(ExportJob.id).where(due).order_by(col(ExportJob.created_at)))
        ).first()
        if candidate is None:
            return None
        taken = await session.exec(
            update(ExportJob)
            .where(col(ExportJob.id) == candidate, due)
            .values(status=ExportStatus.RUNNING, claimed_until=now + HOLD, started_at=now)
        )
        await session.commit()
        if taken.rowcount != 1:
            return None
        log.info("export %s taken by %s", candidate, worker)
        return await session.get(ExportJob, candidate)

    async def run_next(self, worker: str = "worker") -> bool:
        """Run one due job to its end; False when none was due."""
        async with self._open() as session:
            job = await self._claim(session, worker)
            if job is None:
                return False
            try:
                await self._write_files(session, job)
            except Exception as err:  # the job fails; the worker goes on with the next
                log.exception("export %s failed", job.id)
                await session.rollback()
                job = await session.get(ExportJob, job.id)
                if job is not None:
                    job.status = ExportStatus.FAILED
                    job.error = str(err)[:2000]
                    job.finished_at = self._clock()
                    session.add(job)
                    await session.commit()
        return True

    async def _write_files(self, session: AsyncSession, job: ExportJob) -> None:
        """Every asked-for type as one NDJSON file, the reads logged, the job completed."""
        await session.exec(delete(ExportFile).where(col(ExportFile.job_id) == job.id))
        caller = FhirCaller(job.staff_id, job.organisation_id, job.role, frozenset(job.team_ids))
        scope = await scope_of(session, caller)
        query = SearchQuery(
            last_updated=(Interval(start=job.since),) if job.since is not None else ()
        )
        residents: set[int] = set()
        for name in job.types:
            page = await collect(session, SOURCES[name], scope, query, limit=None)
            lines = [
                json.dumps(
                    f.resource.model_dump(mode="json", exclude_none=True), ensure_ascii=False
                )
                for f in page.found
            ]
            residents.update(f.resident_id for f in page.found if f.resident_id is not None)
            session.add(
                ExportFile(
                    job_id=job.id,
                    resource_type=name,
                    count=len(lines),
                    body="".join(line + "\n" for line in lines),
                )
            )
        for resident_id in sorted(residents):
            await care.log_access(
                session,
                staff_id=job.staff_id,
                organisation_id=job.organisation_id,
                resident_id=resident_id,
                action="fhir.export",
                context=f"bulk export {job.id}",
            )
        job.status = ExportStatus.COMPLETED
        job.finished_at = self._clock()
        job.claimed_until = None
        session.add(job)
        await session.commit()


def manifest(state: ExportState, file_url: Callable[[str], str]) -> dict[str, Any]:
    """The Bulk Data manifest of a finished job."""
    return {
        "transactionTime": care.as_utc(state.job.created_at).isoformat(),
        "request": state.job.request_url,
        "requiresAccessToken": True,
        "output": [
            {"type": name, "url": file_url(name), "count": count} for name, count in state.files
        ],
        "error": [],
    }


class ExportWorker:
    """Runs due export jobs in the background; woken by a kick-off, and every few seconds
    to pick up jobs a dead instance left behind."""

    def __init__(self, service: ExportService, *, name: str = "export", interval_s: float = 5.0):
        self.service = service
        self._name = name
        self._interval = interval_s
        self._wake = asyncio.Event()
        # A threading event: tests and the CLI may wait for it from another event loop.
        self._idle = threading.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A job was accepted: run it now."""
        self._idle.clear()
        self._wake.set()

    async def idle(self, timeout_s: float = 60) -> bool:
        """Wait until the worker has found no job left to run; False if it never did."""
        return await asyncio.to_thread(self._idle.wait, timeout_s)

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def close(self) -> None:
        """Stop the loop; a job it was running is taken up again later."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        """Run jobs while there are any, then wait to be woken."""
        while True:
            self._wake.clear()
            try:
                while await self.service.run_next(self._name):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # a database outage: log and try again later
                log.exception("the export worker could not run its jobs")
            if not self._wake.is_set():
                self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
