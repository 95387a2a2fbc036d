"""Notification texts in the recipient's language, from the gettext catalogues beside this file.

The catalogues are read with Babel at run time, so adding or fixing a translation needs no
build step. Alarm titles that appear in the catalogues (context "alert") are translated;
any other title is used as given.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("is", "en", "sv", "fi", "pl")
DEFAULT_LANGUAGE = "en"


def catalogue_path(language: str) -> Path:
    """Where the catalogue for a language lives."""
    return LOCALE_DIR / f"{language}.po"


@cache
def catalogue(language: str) -> Catalog:
    """The parsed catalogue of one of LANGUAGES (read once per process)."""
    with catalogue_path(language).open("rb") as file:
        return read_po(file, locale=language, abort_invalid=True)


def supported_language(language: str) -> str:
    """One of LANGUAGES for a tag like "is", "sv-FI" or "pl_PL"; English when unknown."""
    primary = language.replace("_", "-").split("-", 1)[0].strip().lower()
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE


def translate(language: str, msgid: str, context: str | None = None) -> str:
    """The translation of msgid, or msgid itself when the catalogue has none."""
    message = catalogue(supported_language(language)).get(msgid, context=context)
    if message is None or message.fuzzy or not isinstance(message.string, str):
        return msgid
    return message.string or msgid


def notification_text(
    language: str,
    *,
    alert_title: str,
    resident_name: str,
    severity: str,
    tier: int,
    console_url: str | None,
) -> tuple[str, str]:
    """(subject, body) of a notification about an alert, in the recipient's language."""
    title = translate(language, alert_title, "alert")
    severity_word = translate(language, severity, "severity")
    subject = translate(language, "{severity}: {alert_title} — {resident_name}").format(
        severity=severity_word.upper(), alert_title=title, resident_name=resident_name
    )
    # Most important first: a phone's lock screen and a cut SMS show only the start.
    lines = [
        f"{title} — {resident_name}",
        translate(language, "Severity: {severity}").format(severity=severity_word),
        translate(language, "Escalation tier {tier}").format(tier=tier),
        translate(language, "Acknowledge here: {url}").format(url=console_url)
        if console_url
        else translate(language, "Acknowledge the alert in the Vaki console."),
    ]
    return subject, "\n".join(lines)
