"""What a night nurse reads of an alert is said from its kind and parameters, in her language,
with the numbers that matter; the access log's reasons likewise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from web import i18n
from web.console_words import DeviceWords, age, alert_facts, reason_in_words


def test_alert_facts_carry_the_numbers_in_the_readers_language() -> None:
    i18n.use_language("en", "Atlantic/Reykjavik")
    assert alert_facts(
        "vital_range", {"field": "systolic", "value": 195, "min": None, "max": 179}, None
    ) == ["Systolic pressure 195 mmHg", "above the limit of 179"]
    assert alert_facts(
        "checkin_not_good",
        {"answer": "not_so_good", "answers": {"pain": 7, "sleep": "badly"}},
        None,
    ) == ["Pain 7 of 10", "Slept: badly"]
    cuff = DeviceWords(None, "motion_sensor")
    assert alert_facts("device_silent", {"since": "2026-11-23T02:14:00+00:00"}, cuff) == [
        "Not heard from since 02:14",
        "Motion sensor",
    ]
    i18n.use_language("is", "Atlantic/Reykjavik")
    assert alert_facts(
        "vital_range", {"field": "spo2", "value": 86.5, "min": 90, "max": None}, None
    ) == ["Súrefnismettun 86,5 %", "undir mörkunum 90"]
    assert alert_facts("low_battery", {"battery": 9}, DeviceWords("Hnappur", "panic_button")) == [
        "Rafhlaða í 9 prósentum",
        "Hnappur",
    ]
    now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    assert age(now - timedelta(minutes=4), now) == "fyrir 4 mín."
    i18n.use_language("en")
    assert age(now - timedelta(minutes=4), now) == "4 min ago"


def test_access_log_reasons_are_said_not_shown_as_stored() -> None:
    i18n.use_language("is")
    assert reason_in_words("alert 12") == "Viðvörun númer 12"
    assert reason_in_words("resident page, 30 days") == "Síðustu 30 dagar"
    assert reason_in_words("device list") == "Listi tækja"
    # A shape not known here is shown as it is, never hidden.
    assert reason_in_words("tablet-7f3a") == "tablet-7f3a"
    i18n.use_language("en")
