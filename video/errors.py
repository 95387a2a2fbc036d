"""Errors of the video domain."""

from __future__ import annotations


class VideoError(Exception):
    """Base class for errors about consultations and calls."""


class CallTakenError(VideoError):
    """Someone else took the call, or it was closed."""
