"""Errors of the alerts domain."""

from __future__ import annotations


class AlertsError(Exception):
    """Base class for errors about alerts, escalation and on-call."""


class NotFoundError(AlertsError):
    """What was asked for does not exist (or is not the caller's to see)."""


class NotAllowedError(AlertsError):
    """The caller may not do this."""


class StateConflictError(AlertsError):
    """The thing asked about is not in a state that allows this."""


class InvalidError(AlertsError):
    """What was sent cannot be accepted as given (the reason in words)."""


class AlertNotFoundError(NotFoundError):
    """No alert has this id."""


class AlertStateError(StateConflictError):
    """The alert is not in a state that allows this (e.g. resolving it twice)."""


class PolicyGapError(InvalidError):
    """An escalation policy has a tier that nobody can be reached through."""

    def __init__(self, gaps: list[str]) -> None:
        """Keep every gap found, in plain words."""
        super().__init__("; ".join(gaps))
        self.gaps = gaps


class InvalidSubscriptionError(InvalidError):
    """A web push subscription is missing its endpoint or keys."""


class PlanError(InvalidError):
    """A check-in plan cannot be saved as given."""

    def __init__(self, problems: list[str]) -> None:
        """Keep every problem found, in plain words."""
        super().__init__("; ".join(problems))
        self.problems = problems


class PromptNotFoundError(NotFoundError):
    """No prompt of this resident has this id."""
