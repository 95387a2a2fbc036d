"""The care registry: who is cared for and who cares.

Owns organisations (municipalities, health institutions), care teams whose members come
from several organisations, staff users and their roles, their console sessions, login
attempts and second factor, residents with their language, time zone and contacts, and the
append-only access log, the one table of role rules (``may``, ``require``, ``Actor``) and
``ResidentService`` (the logged read of a resident, tablet settings, the access log). Its
errors say what they mean (not found, not allowed, state conflict, invalid). Also owns the
storage primitives every domain shares (UTC timestamps, id types) and secret hashing
(argon2).
"""

from care.access_log import access_log_of, log_access, resident_team_ids, residents_of_teams
from care.errors import (
    CareError,
    DuplicateError,
    InvalidError,
    NotAllowedError,
    NotFoundError,
    StateConflictError,
)
from care.instance_secret import MASTER, instance_key, new_master_value
from care.models import (
    AccessLogEntry,
    ApiToken,
    CareTeam,
    Contact,
    InstanceSecret,
    LoginAttempt,
    Organisation,
    OrganisationKind,
    Resident,
    ResidentTeam,
    StaffRole,
    StaffSession,
    StaffUser,
    TeamMembership,
)
from care.preferences import StaffPreferenceService
from care.registry import add_staff_user, ensure_organisation, get_resident
from care.roles import ROLE_PERMISSIONS, Actor, Permission, may, require
from care.secrets import (
    check_machine_secret,
    hash_machine_secret,
    hash_secret,
    new_secret,
    verify_machine_secret,
    verify_secret,
)
from care.service import AccessLogLine, ResidentService, visible_resident
from care.staff_service import StaffService
from care.storage import BigIntId, UTCDateTime, as_utc, utcnow
from care.tokens import (
    TokenInfo,
    create_api_token,
    deactivate_staff,
    list_api_tokens,
    revoke_api_token,
    staff_for_token,
    team_ids_of,
    token_for,
)
from care.totp import (
    ENCRYPTED_PREFIX,
    accept_totp,
    enrol_totp,
    open_totp_secret,
    seal_totp_secret,
    totp_key,
    totp_secret_of,
)

MODELS = (
    Organisation,
    CareTeam,
    StaffUser,
    TeamMembership,
    Resident,
    ResidentTeam,
    Contact,
    AccessLogEntry,
    ApiToken,
    StaffSession,
    LoginAttempt,
    InstanceSecret,
)

__all__ = [
    "ENCRYPTED_PREFIX",
    "MASTER",
    "MODELS",
    "ROLE_PERMISSIONS",
    "AccessLogEntry",
    "AccessLogLine",
    "Actor",
    "ApiToken",
    "BigIntId",
    "CareError",
    "CareTeam",
    "Contact",
    "DuplicateError",
    "InstanceSecret",
    "InvalidError",
    "LoginAttempt",
    "NotAllowedError",
    "NotFoundError",
    "Organisation",
    "OrganisationKind",
    "Permission",
    "Resident",
    "ResidentService",
    "ResidentTeam",
    "StaffPreferenceService",
    "StaffRole",
    "StaffService",
    "StaffSession",
    "StaffUser",
    "StateConflictError",
    "TeamMembership",
    "TokenInfo",
    "UTCDateTime",
    "accept_totp",
    "access_log_of",
    "add_staff_user",
    "as_utc",
    "check_machine_secret",
    "create_api_token",
    "deactivate_staff",
    "enrol_totp",
    "ensure_organisation",
    "get_resident",
    "hash_machine_secret",
    "hash_secret",
    "instance_key",
    "list_api_tokens",
    "log_access",
    "may",
    "new_master_value",
    "new_secret",
    "open_totp_secret",
    "require",
    "resident_team_ids",
    "residents_of_teams",
    "revoke_api_token",
    "seal_totp_secret",
    "staff_for_token",
    "team_ids_of",
    "token_for",
    "totp_key",
    "totp_secret_of",
    "utcnow",
    "verify_machine_secret",
    "verify_secret",
    "visible_resident",
]
