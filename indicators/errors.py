"""Errors of the service indicators, by meaning (web.error_responses maps them)."""

from __future__ import annotations


class IndicatorError(Exception):
    """Base class for errors about the service indicators."""


class NotFoundError(IndicatorError):
    """What was asked for does not exist (or is not the caller's to see)."""


class UnknownTeamError(NotFoundError):
    """The asked-for care team is not one of the caller's."""
