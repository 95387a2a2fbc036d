"""Errors raised while assembling and starting the service."""

from __future__ import annotations


class StartupError(Exception):
    """The service cannot start; the message says what to change."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        """Keep the message and the setting a person should change."""
        super().__init__(message)
        self.setting = setting

    def __str__(self) -> str:
        """The message, with the setting to change when there is one."""
        message = self.args[0]
        return f"{message} (set {self.setting})" if self.setting else str(message)


class DatabaseUnavailableError(StartupError):
    """The configured database cannot be reached or its URL is wrong."""

    def __init__(self, message: str) -> None:
        """Name the setting that points at the database."""
        super().__init__(message, setting="VAKI_DATABASE_URL")


class PortInUseError(StartupError):
    """The HTTP port is taken by another program."""
