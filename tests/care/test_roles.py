"""The role table: technicians never reach clinical data, every role is listed."""

from __future__ import annotations

import pytest

import care


def test_every_role_has_a_row() -> None:
    assert set(care.ROLE_PERMISSIONS) == set(care.StaffRole)


def test_technicians_reach_devices_but_no_clinical_data() -> None:
    role = care.StaffRole.TECHNICIAN.value
    assert care.may(role, care.Permission.MANAGE_DEVICES)
    assert care.may(role, care.Permission.READ_TECHNICAL_ALERTS)
    for clinical in (
        care.Permission.READ_CLINICAL,
        care.Permission.ACT_ON_ALERTS,
        care.Permission.HOLD_CALLS,
        care.Permission.INVITE_SPECIALIST,
        care.Permission.EDIT_RESIDENT_SETTINGS,
    ):
        assert not care.may(role, clinical)
        with pytest.raises(care.NotAllowedError):
            care.require(role, clinical)


def test_an_unknown_role_may_nothing() -> None:
    assert not any(care.may("janitor", permission) for permission in care.Permission)
