"""Errors of the care registry."""

from __future__ import annotations


class CareError(Exception):
    """Base class for errors about organisations, teams, staff and residents."""


class NotFoundError(CareError):
    """A named organisation, team, staff member or resident does not exist."""


class NotAllowedError(CareError):
    """The staff member's role does not allow what they asked for."""


class StateConflictError(CareError):
    """The record is not in a state that allows this."""


class InvalidError(CareError):
    """What was sent cannot be accepted as given (the reason in words)."""


class DuplicateError(StateConflictError):
    """A username or name that must be unique is taken."""
