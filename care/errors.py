"""Errors of the care registry."""

from __future__ import annotations


class CareError(Exception):
    """Base class for errors about organisations, teams, staff and residents."""


class NotFoundError(CareError):
    """A named organisation, team, staff member or resident does not exist."""


class DuplicateError(CareError):
    """A username or name that must be unique is taken."""


class NotAllowedError(CareError):
    """The staff member's role does not allow what they asked for."""
