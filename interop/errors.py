"""Errors of the FHIR interface and the bulk export."""

from __future__ import annotations


class InteropError(Exception):
    """Base class for errors of the FHIR interface."""


class InvalidSearchError(InteropError):
    """A search parameter is unknown or its value cannot be read."""


class ResourceNotFoundError(InteropError):
    """No such resource, or not one the caller's teams may see."""


class ExportNotFoundError(InteropError):
    """No such export job, or one that belongs to someone else."""
