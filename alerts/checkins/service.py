"""The check-in service: prompts planned, sent, closed and answered, all in the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.checkins.answers import _Answering
from alerts.checkins.outcomes import _Closing
from alerts.checkins.prompts import _Planning
from alerts.checkins.sending import _Sending
from care import utcnow


class CheckinService(_Planning, _Sending, _Closing, _Answering):
    """Plans prompts, claims due ones, closes windows, records answers: all in the database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Work through ``sessions``; ``clock`` is injectable for tests."""
        self.sessions = sessions
        self.clock = clock
