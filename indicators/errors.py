"""Errors of the service indicators."""

from __future__ import annotations


class IndicatorError(Exception):
    """Base class for errors about the service indicators."""


class UnknownTeamError(IndicatorError):
    """The asked-for care team is not one of the caller's."""
