"""The bulk export's durable state: jobs and the NDJSON files they wrote."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, String, Text
from sqlmodel import Field, SQLModel

from care import BigIntId, UTCDateTime, utcnow


class ExportStatus(StrEnum):
    """Where an export job is."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ExportJob(SQLModel, table=True):
    """One asked-for bulk export: who asked, for what, and how far it has come.

    Kept in the database, so a restart (or another instance) picks a job up again.
    """

    __tablename__ = "fhir_export_job"

    id: str = Field(primary_key=True, max_length=32)
    staff_id: int = Field(foreign_key="staff_user.id", index=True, ondelete="CASCADE")
    organisation_id: int = Field(foreign_key="organisation.id")
    role: str = Field(max_length=32)
    # The care teams the staff member belonged to when asking: what the export may hold.
    team_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    level: str = Field(max_length=16)
    types: list[str] = Field(default_factory=list, sa_type=JSON)
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    request_url: str = Field(max_length=2000)
    status: ExportStatus = Field(default=ExportStatus.ACCEPTED, sa_type=String(16), index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A worker holds the job while it runs; a crashed worker's hold runs out.
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=Text)


class ExportFile(SQLModel, table=True):
    """One NDJSON file of a finished export: the resources of one type."""

    __tablename__ = "fhir_export_file"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    job_id: str = Field(foreign_key="fhir_export_job.id", index=True, ondelete="CASCADE")
    resource_type: str = Field(max_length=64)
    count: int = Field(default=0)
    body: str = Field(default="", sa_type=Text)
