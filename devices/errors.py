"""Errors of the devices domain."""

from __future__ import annotations

from datetime import timedelta


class DevicesError(Exception):
    """Base class for errors about devices, their messages and the MQTT link."""


class UnknownDeviceError(DevicesError):
    """No device has this id."""


class BrokerStartError(DevicesError):
    """The embedded MQTT broker could not be started."""


class MqttUnavailableError(DevicesError):
    """The MQTT broker cannot be reached or refused the login."""


class PairingRefusedError(DevicesError):
    """A tablet pairing code that is wrong, already used or expired."""


class TooManyPairingAttemptsError(DevicesError):
    """An address typed too many wrong pairing codes and must wait."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"too many wrong codes: try again in {retry_after}")
        self.retry_after = retry_after
