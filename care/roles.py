"""Who may do what: the one table of role rules every route, console and API, consults.

Technicians look after devices and technical alerts; they never read or act on a
resident's clinical data (vitals, check-ins, clinical alerts, calls). Coordinators run their
teams (policies, rota, access log, devices). Nurses, specialists and home-care workers hold
the clinical work, each as far as their role reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from care.errors import NotAllowedError
from care.models import StaffRole


class Permission(StrEnum):
    """One thing a staff member may be allowed to do."""

    READ_CLINICAL = "read_clinical"
    """A resident's page, vitals, check-ins, clinical alerts, the call queue, the waiting room."""
    ACT_ON_ALERTS = "act_on_alerts"
    """Acknowledge and resolve clinical alerts; take a call request."""
    HOLD_CALLS = "hold_calls"
    """Start, book and join video calls with a resident."""
    INVITE_SPECIALIST = "invite_specialist"
    """Ask a specialist (of any organisation) into a call."""
    EDIT_PLANS = "edit_plans"
    """Change a resident's check-in plans."""
    EDIT_RESIDENT_SETTINGS = "edit_resident_settings"
    """Change a resident's tablet language and auto-answer."""
    PAIR_TABLET = "pair_tablet"
    """Make a pairing code for a resident's tablet."""
    EDIT_POLICY = "edit_policy"
    """Change a team's escalation policy, on-call rota and overrides."""
    READ_ACCESS_LOG = "read_access_log"
    """Read and print who viewed a resident's data."""
    READ_DEVICES = "read_devices"
    """See the teams' devices and their health."""
    MANAGE_DEVICES = "manage_devices"
    """Add and revoke devices."""
    READ_TECHNICAL_ALERTS = "read_technical_alerts"
    """See and handle technical alerts (a silent device, a low battery)."""
    MANAGE_STAFF = "manage_staff"
    """Unlock a staff member's sign-in, deactivate a member of the team."""


_CLINICAL = frozenset(
    {
        Permission.READ_CLINICAL,
        Permission.ACT_ON_ALERTS,
        Permission.HOLD_CALLS,
        Permission.READ_DEVICES,
        Permission.READ_TECHNICAL_ALERTS,
    }
)

ROLE_PERMISSIONS: dict[StaffRole, frozenset[Permission]] = {
    StaffRole.COORDINATOR: frozenset(Permission),
    StaffRole.NURSE: _CLINICAL
    | {
        Permission.INVITE_SPECIALIST,
        Permission.EDIT_PLANS,
        Permission.EDIT_RESIDENT_SETTINGS,
        Permission.PAIR_TABLET,
    },
    StaffRole.SPECIALIST: _CLINICAL | {Permission.INVITE_SPECIALIST, Permission.EDIT_PLANS},
    StaffRole.HOME_CARE_WORKER: _CLINICAL,
    StaffRole.TECHNICIAN: frozenset(
        {Permission.READ_DEVICES, Permission.MANAGE_DEVICES, Permission.READ_TECHNICAL_ALERTS}
    ),
}


def may(role: str, permission: Permission) -> bool:
    """Whether a staff member of ``role`` may do ``permission``; unknown roles may nothing."""
    try:
        return permission in ROLE_PERMISSIONS[StaffRole(role)]
    except ValueError:
        return False


def require(role: str, permission: Permission) -> None:
    """Raise :class:`NotAllowedError` unless ``role`` may do ``permission``."""
    if not may(role, permission):
        raise NotAllowedError(f"a {role} may not {permission.value.replace('_', ' ')}")


@dataclass(frozen=True)
class Actor:
    """A staff member acting through a service: who, in which role, for which care teams."""

    staff_id: int
    organisation_id: int
    role: str
    team_ids: frozenset[int]

    def may(self, permission: Permission) -> bool:
        """Whether this staff member's role allows ``permission``."""
        return may(self.role, permission)

    def require(self, permission: Permission) -> None:
        """Raise :class:`NotAllowedError` unless this staff member's role allows ``permission``."""
        require(self.role, permission)
