"""What the resident's tablet page asks of the server beyond check-ins: help, at once.

    "I need help" on the tablet page → a ``help_request`` event, committed like one that
    came over MQTT → the alarm pipeline raises its alert (critical) → escalation → consoles

The event is stored before anything else happens, with the alarm path's "not handled yet"
mark, so an alert that could not be raised at once is raised by the alarm sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

import devices
from care import utcnow
from server.alarm_path import AlarmPipeline

log = logging.getLogger(__name__)

HELP_REQUEST = "help_request"


class TabletDesk:
    """Turns a tablet's "I need help" into an alarm, the same way a panic button's is."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        alarms: AlarmPipeline,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Work through ``sessions`` and hand alarms to ``alarms``."""
        self._sessions = sessions
        self._alarms = alarms
        self._clock = clock

    async def ask_for_help(self, device_id: str, resident_id: int, request_id: str) -> bool:
        """Record the help request and raise its alert; False for a resend of the same one.

        ``request_id`` is the tablet's own id of the press, so a request sent again after a
        dropped connection is stored once, as with MQTT events.
        """
        now = self._clock()
        event = devices.Event(
            device_id=device_id,
            message_id=f"help-{request_id}"[:64],
            resident_id=resident_id,
            type=HELP_REQUEST,
            data={"via": "tablet page"},
            device_ts=None,
            received_at=now,
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(event)
                await session.flush()
        except IntegrityError:
            log.info("help request %s from %s was already recorded", request_id, device_id)
            return False
        assert event.id is not None
        committed = devices.CommittedEvent(
            id=event.id,
            device_id=device_id,
            resident_id=resident_id,
            type=HELP_REQUEST,
            data=dict(event.data),
            device_ts=None,
            received_at=now,
        )
        log.warning("resident %s asked for help on tablet %s", resident_id, device_id)
        try:
            await self._alarms.on_batch(devices.IngestedBatch(readings=(), events=(committed,)))
        except Exception:
            # Stored and unhandled: the alarm sweep raises it within seconds.
            log.exception("the help request %s waits for the alarm sweep", event.id)
        return True
