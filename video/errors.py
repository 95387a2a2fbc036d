"""Errors of the video domain."""

from __future__ import annotations


class VideoError(Exception):
    """Base class for errors about consultations and calls."""


class NotFoundError(VideoError):
    """What was asked for does not exist (or is not the caller's to see)."""


class NotAllowedError(VideoError):
    """The caller may not do this."""


class StateConflictError(VideoError):
    """The thing asked about is not in a state that allows this."""


class InvalidError(VideoError):
    """What was sent cannot be accepted as given (the reason in words)."""


class CallTakenError(StateConflictError):
    """Someone else took the call, or it was closed."""


class SignallingError(InvalidError):
    """A signalling message or session description the server cannot act on."""


class DeviceTestNotFoundError(NotFoundError):
    """No running device test of this caller has this id (it ends after two minutes)."""


class RoomTokenError(NotAllowedError):
    """A room token that is malformed, forged, expired or for another consultation."""


class NotParticipantError(NotAllowedError):
    """The caller is not a participant of the consultation."""


class RoomFullError(StateConflictError):
    """The room has as many participants as it may hold."""


class BookingError(InvalidError):
    """A consultation cannot be booked as asked (the reason in words)."""
