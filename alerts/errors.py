"""Errors of the alerts domain."""

from __future__ import annotations


class AlertsError(Exception):
    """Base class for errors about alerts, escalation and on-call."""


class AlertNotFoundError(AlertsError):
    """No alert has this id."""


class AlertStateError(AlertsError):
    """The alert is not in a state that allows this (e.g. resolving it twice)."""


class PolicyGapError(AlertsError):
    """An escalation policy has a tier that nobody can be reached through."""

    def __init__(self, gaps: list[str]) -> None:
        """Keep every gap found, in plain words."""
        super().__init__("; ".join(gaps))
        self.gaps = gaps


class InvalidSubscriptionError(AlertsError):
    """A web push subscription is missing its endpoint or keys."""


class PlanError(AlertsError):
    """A check-in plan cannot be saved as given."""

    def __init__(self, problems: list[str]) -> None:
        """Keep every problem found, in plain words."""
        super().__init__("; ".join(problems))
        self.problems = problems


class PromptNotFoundError(AlertsError):
    """No prompt of this resident has this id."""
