"""Errors of the video domain."""

from __future__ import annotations


class VideoError(Exception):
    """Base class for errors about consultations and calls."""


class CallTakenError(VideoError):
    """Someone else took the call, or it was closed."""


class SignallingError(VideoError):
    """A signalling message or session description the server cannot act on."""


class RoomTokenError(VideoError):
    """A room token that is malformed, forged, expired or for another consultation."""


class NotParticipantError(VideoError):
    """The caller is not a participant of the consultation."""


class RoomFullError(VideoError):
    """The room has as many participants as it may hold."""


class BookingError(VideoError):
    """A consultation cannot be booked as asked (the reason in words)."""
