"""Errors of the devices domain."""

from __future__ import annotations


class DevicesError(Exception):
    """Base class for errors about devices, their messages and the MQTT link."""


class UnknownDeviceError(DevicesError):
    """No device has this id."""


class BrokerStartError(DevicesError):
    """The embedded MQTT broker could not be started."""


class MqttUnavailableError(DevicesError):
    """The MQTT broker cannot be reached or refused the login."""
