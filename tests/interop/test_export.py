"""The bulk export survives its worker's death: a job taken by an instance that died is
taken up again when the hold runs out, and finished once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import care
import devices
import interop


@dataclass
class Clock:
    """Time as the export service sees it."""

    now: datetime = field(default_factory=care.utcnow)

    def __call__(self) -> datetime:
        return self.now


async def test_a_job_left_by_a_dead_worker_is_finished_by_another(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        team = care.CareTeam(name="North")
        resident = care.Resident(full_name="Sigríður")
        session.add_all([team, resident])
        await session.flush()
        nurse = await care.add_staff_user(
            session,
            username="helga",
            full_name="Helga",
            password="correct horse 1",
            role=care.StaffRole.NURSE,
            organisation=org,
        )
        assert team.id is not None
        assert resident.id is not None
        assert nurse.id is not None
        session.add_all(
            [
                care.TeamMembership(team_id=team.id, staff_id=nurse.id),
                care.ResidentTeam(resident_id=resident.id, team_id=team.id),
                devices.Device(
                    id="scale-1",
                    kind=devices.DeviceKind.SCALE,
                    resident_id=resident.id,
                    secret_hash="x",
                ),
            ]
        )
        await session.flush()
        session.add(
            devices.Reading(
                device_id="scale-1",
                message_id="m1",
                resident_id=resident.id,
                type="weight",
                values={"weight": 70.2},
            )
        )
        await session.commit()
    caller = interop.FhirCaller(nurse.id, org.id or 0, "nurse", frozenset({team.id}))
    clock = Clock()
    first = interop.ExportService(lambda: sessions, clock)
    job_id = await first.kick_off(
        caller, level="system", types=["Observation"], since=None, request_url="/fhir/$export"
    )
    # The first instance takes the job and dies before writing anything.
    async with sessions() as session:
        job = await session.get(interop.ExportJob, job_id)
        assert job is not None
        job.status = interop.ExportStatus.RUNNING
        job.claimed_until = clock.now + timedelta(minutes=5)
        session.add(job)
        await session.commit()
    second = interop.ExportService(lambda: sessions, clock)
    assert not await second.run_next("second")  # still held by the dead instance
    assert (await second.state(caller, job_id)).status == interop.ExportStatus.RUNNING
    clock.now += timedelta(minutes=6)
    assert await second.run_next("second")
    state = await second.state(caller, job_id)
    assert state.status == interop.ExportStatus.COMPLETED
    assert state.files == [("Observation", 1)]
    assert not await second.run_next("second")
    body = await second.file(caller, job_id, "Observation")
    assert '"29463-7"' in body
    async with sessions() as session:
        exported = (
            await session.exec(
                select(care.AccessLogEntry).where(care.AccessLogEntry.action == "fhir.export")
            )
        ).all()
    assert [e.resident_id for e in exported] == [resident.id]
