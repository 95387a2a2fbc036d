"""Errors raised by the firmware bridge decoders."""

from collections.abc import Iterable


class FirmwareBridgeError(Exception):
    """Base class of every error the firmware bridge raises on purpose."""


class DecodeError(FirmwareBridgeError):
    """A payload could not be turned into canonical outputs; ``reason`` says why."""

    def __init__(self, reason: str, *, codec: str | None = None) -> None:
        """Keep the human-readable reason and, once known, the codec that rejected the payload."""
        super().__init__(reason)
        self.reason = reason
        self.codec = codec

    def __str__(self) -> str:
        """Prefix the reason with the codec name when the dispatcher has filled it in."""
        return f"{self.codec}: {self.reason}" if self.codec else self.reason


class UnknownCodecError(FirmwareBridgeError):
    """The codec named in a raw topic has no decoder."""

    def __init__(self, codec: str, known: Iterable[str] = ()) -> None:
        """Keep the unknown codec name and the names that would have been accepted."""
        super().__init__(codec)
        self.codec = codec
        self.known = tuple(known)

    def __str__(self) -> str:
        """Name the unknown codec and list the known ones."""
        known = ", ".join(self.known) or "none"
        return f"unknown codec {self.codec!r} (known: {known})"
