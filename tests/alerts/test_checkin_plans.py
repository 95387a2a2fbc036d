"""Check-in plans: slots in the resident's time zone across DST, problems in plain words."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

import alerts

HELSINKI = ZoneInfo("Europe/Helsinki")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_spring_forward_moves_a_missing_time_on_and_keeps_one_slot_a_day() -> None:
    # Helsinki, 28 March 2027: clocks go from 03:00 to 04:00; 03:30 does not exist.
    slots = slots_of(["03:30", "09:00"], "2027-03-27", "2027-03-29")
    assert slots == [
        utc(2027, 3, 27, 1, 30),  # 03:30 EET
        utc(2027, 3, 27, 7, 0),  # 09:00 EET
        utc(2027, 3, 28, 1, 30),  # the gap: 04:30 EEST, one slot
        utc(2027, 3, 28, 6, 0),  # 09:00 EEST
    ]


def test_fall_back_takes_a_repeated_time_once() -> None:
    # Helsinki, 31 October 2027: 04:00 EEST becomes 03:00 EET; 03:30 happens twice.
    slots = slots_of(["03:30"], "2027-10-30", "2027-11-01")
    assert slots == [utc(2027, 10, 30, 0, 30), utc(2027, 10, 31, 0, 30)]
    assert [s.astimezone(HELSINKI).strftime("%H:%M") for s in slots] == ["03:30", "03:30"]


def test_weekdays_are_the_residents_own() -> None:
    # 08:00 on Mondays only; 2027-01-04 is a Monday in Helsinki.
    slots = alerts.slots_between(["08:00"], [1], HELSINKI, utc(2027, 1, 1), utc(2027, 1, 15))
    assert [s.astimezone(HELSINKI).date().isoformat() for s in slots] == [
        "2027-01-04",
        "2027-01-11",
    ]


def slots_of(times: list[str], first: str, last: str) -> list[datetime]:
    start = datetime.fromisoformat(first).replace(tzinfo=HELSINKI).astimezone(UTC)
    end = datetime.fromisoformat(last).replace(tzinfo=HELSINKI).astimezone(UTC)
    return alerts.slots_between(times, [1, 2, 3, 4, 5, 6, 7], HELSINKI, start, end)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"times": ["8:3"]}, "'8:3' is not a time of day; write it like 08:30"),
        ({"times": []}, "Give at least one time of day"),
        ({"window_min": 2}, "The resident needs between 5 minutes and 4 hours to answer"),
        (
            {"reminder_before_close_min": 30},
            "The reminder must come after the prompt, before the window closes",
        ),
        ({"weekdays": [0]}, "Weekdays are numbers from 1 (Monday) to 7 (Sunday), at least one"),
        (
            {"times": ["08:00", "08:15"]},
            "08:00 and 08:15 are closer than the answer window; shorten the window or move a time",
        ),
        (
            {"kind": "questionnaire", "questions": [{"id": "appetite", "kind": "yes_no"}]},
            "Question 1 (appetite): write the question's text",
        ),
        (
            {"kind": "questionnaire", "questions": [{"id": "pain", "kind": "scale", "max": -1}]},
            "Question 1 (pain): the scale must run up from min to max",
        ),
    ],
)
def test_plan_problems_are_told_in_plain_words(change: dict[str, object], problem: str) -> None:
    fields: dict[str, object] = {"kind": "wellbeing", "title": "How are you?", "times": ["09:30"]}
    spec = alerts.PlanSpec(**(fields | change))  # type: ignore[arg-type]
    assert problem in alerts.plan_problems(spec)


def test_a_good_plan_has_no_problems() -> None:
    spec = alerts.PlanSpec(
        kind="questionnaire",
        title="Weekly questions",
        times=["10:00", "18:00"],
        weekdays=[1, 4],
        questions=[{"id": "pain"}, {"id": "appetite", "kind": "yes_no", "text": "Eating well?"}],
    )
    assert alerts.plan_problems(spec) == []
