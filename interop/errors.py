"""Errors of the FHIR interface and the bulk export, by meaning (web.error_responses maps
them to a status; the FHIR routes answer them as an OperationOutcome)."""

from __future__ import annotations


class InteropError(Exception):
    """Base class for errors of the FHIR interface."""


class NotFoundError(InteropError):
    """What was asked for does not exist (or is not the caller's to see)."""


class InvalidError(InteropError):
    """What was sent cannot be accepted as given (the reason in words)."""


class InvalidSearchError(InvalidError):
    """A search parameter is unknown or its value cannot be read."""


class ResourceNotFoundError(NotFoundError):
    """No such resource, or not one the caller's teams may see."""


class ExportNotFoundError(NotFoundError):
    """No such export job, or one that belongs to someone else."""
