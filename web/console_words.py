"""The alerts domain's plain-English problems and gaps, said in the viewer's language.

The domain explains a plan or policy it refuses in English sentences with a fixed shape;
the console matches each shape and says it again through the catalogues. A sentence of a
shape not known here is shown as the domain wrote it, so nothing is ever hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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


def in_words(problem: str) -> str:
    """One of the domain's problems in the current language."""
    for shape, say in _COMPILED:
        found = shape.fullmatch(problem)
        if found:
            return say(found)
    return problem
