"""Errors of the devices domain."""

from __future__ import annotations

from datetime import timedelta


class DevicesError(Exception):
    """Base class for errors about devices, their messages and the MQTT link."""


class NotFoundError(DevicesError):
    """What was asked for does not exist (or is not the caller's to see)."""


class NotAllowedError(DevicesError):
    """The caller may not do this."""


class StateConflictError(DevicesError):
    """The thing asked about is not in a state that allows this."""


class InvalidError(DevicesError):
    """What was sent cannot be accepted as given (the reason in words)."""


class UnknownDeviceError(NotFoundError):
    """No device has this id."""


class BrokerStartError(DevicesError):
    """The embedded MQTT broker could not be started."""


class MqttUnavailableError(DevicesError):
    """The MQTT broker cannot be reached or refused the login."""


class PairingRefusedError(InvalidError):
    """A tablet pairing code that is wrong, already used or expired."""


class TooManyPairingAttemptsError(NotAllowedError):
    """An address typed too many wrong pairing codes and must wait ``retry_after``."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"too many wrong codes: try again in {retry_after}")
        self.retry_after = retry_after
