"""What a resident's device events mean for check-ins: the answer they give, when it was given,
and the alert for a call request nobody took."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import alerts
import devices

ARRIVED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _event(type_: str, data: dict[str, Any], device_ts: datetime | None) -> devices.CommittedEvent:
    return devices.CommittedEvent(7, "tablet-1", 3, type_, data, device_ts, ARRIVED)


def test_a_checkin_answer_answers_its_prompt() -> None:
    answers = {"sleep": "well"}
    event = _event(
        "checkin_answer", {"prompt_id": "c-41", "answer": "fine", "answers": answers}, None
    )
    assert alerts.event_answer(event) == alerts.EventAnswer("c-41", "fine", answers, ARRIVED)


def test_a_confirmed_reminder_means_the_medicine_was_taken() -> None:
    reply = alerts.event_answer(_event("reminder_ack", {"prompt_id": "c-42"}, None))
    assert (reply.reference, reply.answer, reply.answers) == ("c-42", "taken", None)


def test_answers_of_the_wrong_shape_are_left_for_the_service_to_call_unclear() -> None:
    event = _event("checkin_answer", {"prompt_id": "c-43", "answer": 3, "answers": [1]}, None)
    reply = alerts.event_answer(event)
    assert (reply.answer, reply.answers) == (None, None)


def test_the_tablets_time_is_believed_when_it_was_offline_for_hours() -> None:
    answered = ARRIVED - timedelta(hours=5, minutes=59)
    assert alerts.answered_at(_event("checkin_answer", {}, answered)) == answered


def test_a_tablet_clock_far_off_gives_way_to_the_arrival_time() -> None:
    for device_ts in (ARRIVED - timedelta(hours=7), ARRIVED + timedelta(minutes=2)):
        assert alerts.answered_at(_event("checkin_answer", {}, device_ts)) == ARRIVED
    assert alerts.answered_at(_event("checkin_answer", {}, ARRIVED + timedelta(seconds=50))) == (
        ARRIVED + timedelta(seconds=50)
    )


def test_the_call_events_the_checkins_act_on() -> None:
    assert alerts.CALL_REQUEST_EVENT in alerts.RESIDENT_EVENTS
    assert set(devices.EVENT_TYPES) >= alerts.RESIDENT_EVENTS
    assert not alerts.RESIDENT_EVENTS & devices.ALARM_EVENT_TYPES


def test_a_call_request_nobody_took_is_a_high_alert_per_resident() -> None:
    candidate = alerts.call_not_taken_alert(3, 11, "device")
    assert (candidate.kind, candidate.severity, candidate.dedupe_key) == (
        "call_request_not_taken",
        alerts.AlertSeverity.HIGH,
        "resident:3:call_request",
    )
    assert candidate.details == {"call_request_id": 11, "source": "device"}
