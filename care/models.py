"""Who is cared for and who cares: organisations, care teams, staff, residents, contacts."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, String, Text
from sqlmodel import Field, SQLModel

from care.storage import BigIntId, UTCDateTime, utcnow


class OrganisationKind(StrEnum):
    """What sort of body an organisation is."""

    MUNICIPALITY = "municipality"
    HEALTH_INSTITUTION = "health_institution"
    OTHER = "other"


class StaffRole(StrEnum):
    """What a staff member does, which decides what they may do in Vaki."""

    COORDINATOR = "coordinator"
    NURSE = "nurse"
    HOME_CARE_WORKER = "home_care_worker"
    SPECIALIST = "specialist"
    TECHNICIAN = "technician"


class Organisation(SQLModel, table=True):
    """A municipality, a health institution or another body that employs staff."""

    __tablename__ = "organisation"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    kind: OrganisationKind = Field(sa_type=String(32))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CareTeam(SQLModel, table=True):
    """A team that looks after residents; its members may come from several organisations."""

    __tablename__ = "care_team"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    description: str = Field(default="", max_length=1000)
    # The team's own clock: on-call shifts are written in it.
    time_zone: str = Field(default="Atlantic/Reykjavik", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StaffUser(SQLModel, table=True):
    """A person who works in the console: nurse, home-care worker, specialist, ..."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    full_name: str = Field(max_length=200)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    role: StaffRole = Field(sa_type=String(32))
    password_hash: str = Field(max_length=255)
    email: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=32)
    language: str = Field(default="is", max_length=8)
    time_zone: str = Field(default="Atlantic/Reykjavik", max_length=64)
    # Encrypted with a key derived from the instance secret (care.totp), never in clear.
    totp_secret: str | None = Field(default=None, max_length=255)
    # The newest time step whose one-time code was accepted: a code works only once.
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TeamMembership(SQLModel, table=True):
    """A staff member belongs to a care team."""

    __tablename__ = "team_membership"

    team_id: int = Field(
        sa_column=Column(ForeignKey("care_team.id", ondelete="CASCADE"), primary_key=True)
    )
    staff_id: int = Field(
        sa_column=Column(ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True)
    )


class Resident(SQLModel, table=True):
    """A person aged 60+ living at home whom Vaki helps keep watch over."""

    __tablename__ = "resident"

    id: int | None = Field(default=None, primary_key=True)
    full_name: str = Field(max_length=200)
    preferred_name: str = Field(default="", max_length=100)
    birth_date: date | None = Field(default=None)
    language: str = Field(default="is", max_length=8)
    time_zone: str = Field(default="Atlantic/Reykjavik", max_length=64)
    # A call booked by the resident's own care team is answered by the tablet by itself
    # (after a countdown the resident can stop), for those who cannot reach the screen.
    auto_answer_scheduled_calls: bool = Field(default=False)
    address: str = Field(default="", max_length=300)
    phone: str | None = Field(default=None, max_length=32)
    notes: str = Field(default="", sa_type=Text)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ResidentTeam(SQLModel, table=True):
    """A resident is looked after by a care team."""

    __tablename__ = "resident_team"

    resident_id: int = Field(
        sa_column=Column(ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True)
    )
    team_id: int = Field(
        sa_column=Column(ForeignKey("care_team.id", ondelete="CASCADE"), primary_key=True)
    )


class Contact(SQLModel, table=True):
    """A relative or other contact person of a resident."""

    __tablename__ = "contact"

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="resident.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    relationship: str = Field(default="", max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=255)
    language: str = Field(default="is", max_length=8)
    is_emergency_contact: bool = Field(default=False)
    receives_alerts: bool = Field(default=False)


class AccessLogEntry(SQLModel, table=True):
    """One read of a resident's data: who, from which organisation, what, why, when.

    Append-only: nothing in Vaki updates or deletes these rows.
    """

    __tablename__ = "access_log"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id", index=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id")
    resident_id: int | None = Field(default=None, foreign_key="resident.id", index=True)
    action: str = Field(max_length=64)
    context: str = Field(default="", max_length=500)


class ApiToken(SQLModel, table=True):
    """A bearer token that acts for a staff member (integrations, the live alert stream)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff_user.id", index=True, ondelete="CASCADE")
    # The token's first characters, to find its row; the whole token is stored only hashed.
    prefix: str = Field(max_length=16, unique=True)
    token_hash: str = Field(max_length=255)
    label: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # After this the token no longer works (None: tokens made before expiry existed).
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class StaffSession(SQLModel, table=True):
    """A staff member signed in to the console from one browser.

    The browser holds the session id; only its SHA-256 is stored, so a copy of the table
    does not let anyone act as the staff member.
    """

    __tablename__ = "staff_session"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    id_hash: str = Field(max_length=64, unique=True)
    staff_id: int = Field(foreign_key="staff_user.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The absolute end, however busy the session is.
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    client_address: str = Field(default="", max_length=64)


class LoginAttempt(SQLModel, table=True):
    """One try to sign in, kept a while to slow down password guessing.

    Written before the password is checked (``succeeded`` false until it is), so concurrent
    tries count against each other.
    """

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    username: str = Field(max_length=64, index=True)
    client_address: str = Field(max_length=64, index=True)
    succeeded: bool = Field(default=False)


class InstanceSecret(SQLModel, table=True):
    """A random secret the service keeps in its database, the same for every instance and
    across restarts; keys for one purpose each (room tokens, stored second factors) are
    derived from it."""

    __tablename__ = "instance_secret"

    name: str = Field(max_length=64, primary_key=True)
    value: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
