"""The alerts domain's plain-English problems and gaps, and its alerts, said in the viewer's
language.

The domain explains a plan or policy it refuses in English sentences with a fixed shape;
the console matches each shape and says it again through the catalogues. A sentence of a
shape not known here is shown as the domain wrote it, so nothing is ever hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import format_timedelta

from care import as_utc, utcnow
from web import i18n
from web.i18n import gettext as _

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekday_names() -> list[str]:
    """Monday to Sunday in the current language (index 0 is Monday)."""
    return [
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    ]


def channel_name(channel: str) -> str:
    """A notification channel in words."""
    names = {
        "console": _("the console"),
        "email": _("email"),
        "sms": _("text message"),
        "push": _("push notification"),
    }
    return names.get(channel, channel)


def span_in_words(span: str) -> str:
    """A stretch of the week from ``alerts.coverage_gaps`` ("Sunday 02:00–08:00", "all week")."""
    if span == "all week":
        return _("all week")
    days = dict(zip(WEEKDAY_NAMES, weekday_names(), strict=True))
    return re.sub("|".join(WEEKDAY_NAMES), lambda m: days[m.group(0)], span)


def _spans(shown: str) -> str:
    """A list of gaps as the domain joins them ("a, b, c and more")."""
    more = shown.endswith(" and more")
    spans = [span_in_words(s) for s in shown.removesuffix(" and more").split(", ")]
    text = ", ".join(spans)
    return _("%(gaps)s and more", gaps=text) if more else text


def _channels(joined: str) -> str:
    """Channels as the domain joins them ("email or sms")."""
    word = _("or")
    return f" {word} ".join(channel_name(c) for c in joined.split(" or "))


Say = Callable[[re.Match[str]], str]

# (the domain's sentence, how to say it); the first that matches the whole sentence wins.
_SHAPES: tuple[tuple[str, Say], ...] = (
    # Check-in plans (alerts.plan_problems, alerts.save_plan).
    (
        "The kind must be wellbeing, medication or questionnaire",
        lambda m: _("Choose what the plan asks: wellbeing, medication or a questionnaire."),
    ),
    (
        "Give the plan a title the resident will see",
        lambda m: _("Give the plan a title the resident will see."),
    ),
    (
        r"The title is too long \(200 characters at most\)",
        lambda m: _("The title is too long (200 characters at most)."),
    ),
    ("Give at least one time of day", lambda m: _("Give at least one time of day.")),
    (
        r"(['\"])(?P<value>.*)\1 is not a time of day; write it like 08:30",
        lambda m: _("“%(value)s” is not a time of day; write it like 08:30.", value=m["value"]),
    ),
    ("The same time is given twice", lambda m: _("The same time is given twice.")),
    (
        r"Weekdays are numbers from 1 \(Monday\) to 7 \(Sunday\), at least one",
        lambda m: _("Choose at least one weekday."),
    ),
    (
        "The resident needs between 5 minutes and 4 hours to answer",
        lambda m: _("The resident needs between 5 minutes and 4 hours to answer."),
    ),
    (
        "The reminder must come after the prompt, before the window closes",
        lambda m: _("The reminder must come after the prompt, before the window closes."),
    ),
    (
        "A questionnaire needs at least one question",
        lambda m: _("A questionnaire needs at least one question."),
    ),
    (
        r"Question \d+ \((?P<id>[^)]*)\): write the question's text",
        lambda m: _("Write the text of your own question."),
    ),
    (
        r"Question \d+: (['\"])(?P<id>.*)\1 is asked twice",
        lambda m: _("The question “%(question)s” is asked twice.", question=m["id"]),
    ),
    (
        r"(?P<a>\d\d:\d\d) and (?P<b>\d\d:\d\d) are closer than the answer window; "
        "shorten the window or move a time",
        lambda m: _(
            "%(first)s and %(second)s are closer than the answer window; "
            "shorten the window or move a time.",
            first=m["a"],
            second=m["b"],
        ),
    ),
    (
        r"There is no plan \d+ for this resident",
        lambda m: _("This plan does not exist (any more)."),
    ),
    # Escalation policies (alerts.save_policy, alerts.policy_gaps).
    ("the policy needs a name", lambda m: _("Give the policy a name.")),
    (
        "the last tier must be tried at least once",
        lambda m: _("The last tier must be tried at least once."),
    ),
    ("the policy has no tiers", lambda m: _("The policy has no tiers.")),
    (
        r"Tier (?P<n>\d+): give people at least 30 seconds to answer",
        lambda m: _("Tier %(n)s: give people at least 30 seconds to answer.", n=m["n"]),
    ),
    (
        r"Tier (?P<n>\d+) has no channel",
        lambda m: _("Tier %(n)s has no way to reach anyone: choose a channel.", n=m["n"]),
    ),
    (
        r"Tier (?P<n>\d+) names nobody",
        lambda m: _("Tier %(n)s names nobody: choose who is told.", n=m["n"]),
    ),
    (
        r"Tier (?P<n>\d+): nobody is on call on (?P<gaps>.+)",
        lambda m: _("Tier %(n)s: nobody is on call on %(gaps)s.", n=m["n"], gaps=_spans(m["gaps"])),
    ),
    (
        r"Tier (?P<n>\d+): staff member (?P<id>.*) does not exist",
        lambda m: _("Tier %(n)s: that staff member no longer works in Vaki.", n=m["n"]),
    ),
    (
        r"Tier (?P<n>\d+): (?P<name>.+) cannot be reached by (?P<channels>.+)",
        lambda m: _(
            "Tier %(n)s: %(name)s cannot be reached by %(channels)s.",
            n=m["n"],
            name=m["name"],
            channels=_channels(m["channels"]),
        ),
    ),
    (
        r"Tier (?P<n>\d+): say which staff member \(their id\)",
        lambda m: _("Tier %(n)s: choose which staff member.", n=m["n"]),
    ),
    (
        r"Tier (?P<n>\d+): unknown (channel|recipient) .*",
        lambda m: _("Tier %(n)s: choose from the listed people and channels.", n=m["n"]),
    ),
)
_COMPILED = tuple((re.compile(shape), say) for shape, say in _SHAPES)


def _said(shapes: tuple[tuple[re.Pattern[str], Say], ...], text: str) -> str:
    """``text`` said by the first shape it fits whole; of no known shape, as it is."""
    for shape, say in shapes:
        found = shape.fullmatch(text)
        if found:
            return say(found)
    return text


def in_words(problem: str) -> str:
    """One of the domain's problems in the current language."""
    return _said(_COMPILED, problem)


# --- Alerts said from their kind and parameters, never from the stored English title ------

# The unit each measured value is shown in; its name comes from ``vital_name``.
VITAL_UNITS = {
    "spo2": "%",
    "systolic": "mmHg",
    "diastolic": "mmHg",
    "heart_rate": "bpm",
    "pulse": "bpm",
    "temperature": "°C",
    "glucose": "mmol/L",
    "weight": "kg",
}


def vital_name(field_name: str) -> str:
    """A measured value's name ("systolic" → "Systolic pressure"), in the current language."""
    names = {
        "spo2": _("Oxygen saturation"),
        "systolic": _("Systolic pressure"),
        "diastolic": _("Diastolic pressure"),
        "heart_rate": _("Heart rate"),
        "pulse": _("Pulse"),
        "temperature": _("Temperature"),
        "glucose": _("Blood sugar"),
        "weight": _("Weight"),
    }
    return names.get(field_name, field_name.replace("_", " "))


def device_kind_name(kind: str) -> str:
    """A kind of device in words."""
    names = {
        "panic_button": _("Panic button"),
        "blood_pressure_monitor": _("Blood pressure monitor"),
        "pulse_oximeter": _("Pulse oximeter"),
        "scale": _("Scale"),
        "thermometer": _("Thermometer"),
        "glucose_meter": _("Blood sugar meter"),
        "motion_sensor": _("Motion sensor"),
        "door_sensor": _("Door sensor"),
        "bed_sensor": _("Bed sensor"),
        "smoke_detector": _("Smoke detector"),
        "water_leak_sensor": _("Water leak sensor"),
        "tablet": _("Tablet"),
        "home_hub": _("Home hub"),
        "activity_tracker": _("Activity tracker"),
        "fall_detector": _("Fall detector"),
    }
    return names.get(kind, kind.replace("_", " "))


def _alarm_names() -> dict[str, str]:
    """The alarms in words: the same for the device event and for the alert it raises."""
    return {
        "panic": _("Panic button pressed"),
        "fall": _("Fall detected"),
        "help_request": _("Asked for help on the tablet"),
        "smoke": _("Smoke alarm"),
        "water_leak": _("Water leak"),
        "unreadable_event": _("Unreadable alarm message from a device"),
    }


def event_name(kind: str) -> str:
    """A device event's type in words."""
    names = {
        **_alarm_names(),
        "motion": _("Movement"),
        "door_open": _("Door opened"),
        "door_close": _("Door closed"),
        "bed_exit": _("Got out of bed"),
        "bed_enter": _("Went to bed"),
        "checkin_answer": _("Check-in answer"),
        "reminder_ack": _("Reminder confirmed"),
        "call_request": _("Asked to be called"),
    }
    return names.get(kind, kind.replace("_", " "))


def recipient_name(kind: str) -> str:
    """Who an escalation tier tells, in words."""
    names = {
        "on_call": _("whoever is on call"),
        "team": _("the whole team"),
        "relatives": _("relatives"),
        "staff": _("a named staff member"),
        "contact": _("relatives"),
    }
    return names.get(kind, kind.replace("_", " "))


def _answer_word(question: str, value: object) -> str:
    """One follow-up answer of a check-in in words ("Pain 7 of 10")."""
    options = {
        "none": _("none"),
        "some": _("some"),
        "a_lot": _("a lot"),
        "well": _("well"),
        "so_so": _("so-so"),
        "badly": _("badly"),
        "good": _("good"),
        "low": _("low"),
    }
    if question == "pain":
        return _("Pain %(score)s of 10", score=value)
    said = options.get(str(value), str(value))
    names = {
        "breathlessness": _("Short of breath: %(answer)s", answer=said),
        "sleep": _("Slept: %(answer)s", answer=said),
        "mood": _("Mood: %(answer)s", answer=said),
    }
    return names.get(question, f"{question}: {said}")


@dataclass(frozen=True)
class DeviceWords:
    """What the console knows of the device behind an alert."""

    label: str | None
    kind: str

    @property
    def name(self) -> str:
        """The label staff gave it, or its kind in words."""
        return self.label or device_kind_name(self.kind)


def _number(value: object) -> str:
    """A measured number in the current locale."""
    return i18n.number(float(value)) if isinstance(value, int | float) else str(value)


def _at(value: object) -> str:
    """A stored ISO moment as a time of day in the viewer's zone."""
    if not isinstance(value, str):
        return "—"
    try:
        return i18n.local_time(as_utc(datetime.fromisoformat(value)))
    except ValueError:
        return "—"


def _vital_facts(details: Mapping[str, Any]) -> list[str]:
    """The value that set a vital-sign alert off, and the limit it crossed."""
    name = str(details.get("field", ""))
    unit = VITAL_UNITS.get(name, "")
    value, low, high = details.get("value"), details.get("min"), details.get("max")
    facts = [f"{vital_name(name)} {_number(value)} {unit}".strip()]
    if isinstance(value, int | float) and high is not None and value > high:
        facts.append(_("above the limit of %(limit)s", limit=_number(high)))
    elif isinstance(value, int | float) and low is not None and value < low:
        facts.append(_("below the limit of %(limit)s", limit=_number(low)))
    return facts


def alert_facts(kind: str, details: Mapping[str, Any], device: DeviceWords | None) -> list[str]:
    """What happened, with the numbers that matter, from the alert's kind and parameters."""
    facts: list[str] = []
    if kind == "vital_range":
        facts.extend(_vital_facts(details))
    elif kind == "weight_gain" and "gain_kg" in details:
        facts.append(
            _(
                "Up %(kg)s kg in %(days)s days",
                kg=_number(details["gain_kg"]),
                days=details.get("days", 3),
            )
        )
    elif kind == "device_silent" and "since" in details:
        facts.append(_("Not heard from since %(time)s", time=_at(details.get("since"))))
    elif kind == "low_battery" and "battery" in details:
        facts.append(_("Battery at %(level)s per cent", level=details.get("battery", "—")))
    elif kind == "devices_silent":
        facts.append(
            _(
                "%(count)s devices not heard from since %(time)s: the home hubs, the network "
                "or the broker may be down",
                count=details.get("count", "—"),
                time=_at(details.get("since")),
            )
        )
    elif kind in ("checkin_not_good", "medication_not_taken", "checkin_unclear"):
        answers = details.get("answers")
        if isinstance(answers, Mapping):
            facts.extend(_answer_word(str(q), v) for q, v in answers.items())
    elif kind in ("checkin_missed", "medication_missed", "checkin_not_sent") and details.get(
        "slot_at"
    ):
        facts.append(_("Asked at %(time)s", time=_at(details.get("slot_at"))))
    elif kind == "no_motion" and "since" in details:
        facts.append(_("No movement since %(time)s", time=_at(details.get("since"))))
    elif kind == "bed_exit_no_return" and "bed_exit_at" in details:
        facts.append(_("Out of bed since %(time)s", time=_at(details.get("bed_exit_at"))))
    if device is not None and kind != "devices_silent":
        facts.append(device.name)
    return facts


def age(moment: datetime, now: datetime | None = None) -> str:
    """How long ago, in the current language ("4 minutes ago")."""
    delta = moment - (now or utcnow())
    return format_timedelta(
        delta,
        threshold=1.5,
        add_direction=True,
        format="short",
        locale=i18n.LOCALES[i18n.current_language()],
    )


def alert_kind_name(kind: str) -> str:
    """What kind of alert it is, in words (the same words as the console's pages)."""
    names = {
        **_alarm_names(),
        "vital_range": _("Vital sign out of range"),
        "weight_gain": _("Weight gain"),
        "night_door": _("Door opened at night"),
        "no_motion": _("No movement at home"),
        "bed_exit_no_return": _("Out of bed at night and not back"),
        "device_silent": _("Device silent"),
        "devices_silent": _("Many devices silent at once"),
        "low_battery": _("Battery low"),
        "checkin_missed": _("Missed check-in"),
        "medication_missed": _("Medication reminder not confirmed"),
        "medication_not_taken": _("Medication not taken"),
        "checkin_not_good": _("Not feeling well"),
        "checkin_unclear": _("Check-in answer unclear"),
        "checkin_not_sent": _("Check-in not sent while the system was down"),
        "call_request_not_taken": _("Call request not taken in time"),
    }
    return names.get(kind, kind.replace("_", " "))


# Why a resident's data was read, as the access log stores it: (stored shape, how to say it).
_REASONS: tuple[tuple[str, Say], ...] = (
    (r"alert (?P<n>\d+)", lambda m: _("Alert number %(n)s", n=m["n"])),
    (
        r"access log (page )?from (?P<a>\S+) to (?P<b>\S+)",
        lambda m: _("Who viewed the data, %(first)s to %(last)s", first=m["a"], last=m["b"]),
    ),
    (r"access log from the start to now", lambda m: _("Who viewed the data, all of it")),
    ("device list", lambda m: _("The list of devices")),
    (r"resident page, (?P<days>\d+) days", lambda m: _("The last %(days)s days", days=m["days"])),
    ("check-in plans and adherence", lambda m: _("Check-in plans and answers")),
    ("check-in plans", lambda m: _("Check-in plans")),
    ("new check-in plan form", lambda m: _("A new check-in plan")),
    (r"(edit )?check-in plan (?P<n>\d+)", lambda m: _("Check-in plan number %(n)s", n=m["n"])),
    ("edit check-in plan new", lambda m: _("A new check-in plan")),
    (r"consultation (?P<n>\d+)", lambda m: _("Video call number %(n)s", n=m["n"])),
)
_REASONS_COMPILED = tuple((re.compile(shape), say) for shape, say in _REASONS)


def reason_in_words(reason: str) -> str:
    """Why the data was read, in the current language; a reason of an unknown shape as it is."""
    return _said(_REASONS_COMPILED, reason)
