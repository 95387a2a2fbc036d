"""Every word the console and the tablet show is translated into all five languages."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from web import i18n

WEB = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s|\{(\w+)\}")


def used_messages() -> set[tuple[str | None, str]]:
    """(context, msgid) of every message the templates and the web code ask for."""
    found: set[tuple[str | None, str]] = set()
    method_map = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "translate": None, "pgettext": ((1, "c"), 2)}
    for _, _, message, _, context in extract_from_dir(WEB, method_map, options, keywords=keywords):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.add((context, msgid))
    return found


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def test_every_message_in_use_is_translated_in_every_language() -> None:
    problems = []
    for context, msgid in sorted(used_messages(), key=str):
        for language in i18n.LANGUAGES:
            known = [
                i18n.catalogue(domain, language).get(msgid, context=context)
                for domain in i18n.DOMAINS
            ]
            message = next((m for m in known if m is not None and m.string), None)
            if message is None or message.fuzzy:
                problems.append(f"{language}: no translation for {msgid!r} ({context})")
            elif placeholders(str(message.string)) != placeholders(msgid):
                problems.append(f"{language}: placeholders differ in {msgid!r}")
    assert not problems, "\n".join(problems)


def test_catalogues_hold_the_same_messages_in_every_language() -> None:
    for domain in i18n.DOMAINS:
        reference = {(m.context, m.id) for m in i18n.catalogue(domain, "en") if m.id}
        for language in i18n.LANGUAGES:
            ids = {(m.context, m.id) for m in i18n.catalogue(domain, language) if m.id}
            assert ids == reference, f"{domain}/{language} differs from English"


def test_dates_and_numbers_follow_the_language_and_time_zone() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 23, 13, 5, tzinfo=UTC)
    i18n.use_language("is", "Atlantic/Reykjavik")
    assert i18n.local_time(moment) == "13:05"
    assert i18n.number(37.5) == "37,5"
    i18n.use_language("fi", "Europe/Helsinki")
    assert i18n.local_time(moment) == "15.05"
    assert i18n.local_date(moment) == "maanantai 23. marraskuuta 2026"
    i18n.use_language("en", "Europe/London")
    assert i18n.number(37.5) == "37.5"
    assert i18n.supported("sv-FI") == "sv"
    assert i18n.supported("de") == "is"
