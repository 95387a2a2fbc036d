"""The words of the console and the tablet in five languages, from gettext catalogues.

Catalogues are ``web/locale/{domain}/{language}.po`` (domains: ``console``, ``tablet``,
``video``), read with Babel at run time, so a fixed translation needs no build step. Templates call
``_("…")`` (Jinja's i18n extension, new style: ``_("Hello %(name)s", name=…)``); the
language of the current request is set with ``use_language`` before a page is rendered.
Dates, times and numbers are formatted per locale and time zone with Babel.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("is", "en", "sv", "fi", "pl")
DOMAINS = ("console", "tablet", "video")
DEFAULT_LANGUAGE = "is"
# Babel locales: Icelandic as spoken in Iceland, Swedish also as in Finland, ...
LOCALES = {"is": "is_IS", "en": "en_GB", "sv": "sv_SE", "fi": "fi_FI", "pl": "pl_PL"}

_language: ContextVar[str] = ContextVar("vaki_language", default=DEFAULT_LANGUAGE)
_zone: ContextVar[str] = ContextVar("vaki_time_zone", default="Atlantic/Reykjavik")


def supported(language: str | None) -> str:
    """One of LANGUAGES for a tag like "is", "sv-FI" or "pl_PL"; Icelandic when unknown."""
    primary = (language or "").replace("_", "-").split("-", 1)[0].strip().lower()
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE


def catalogue_path(domain: str, language: str) -> Path:
    """Where one domain's catalogue for one language lives."""
    return LOCALE_DIR / domain / f"{language}.po"


@cache
def catalogue(domain: str, language: str) -> Catalog:
    """The parsed catalogue (read once per process)."""
    with catalogue_path(domain, language).open("rb") as file:
        return read_po(file, locale=language, abort_invalid=True)


def use_language(language: str | None, time_zone: str | None = None) -> str:
    """Speak ``language`` (and show times in ``time_zone``) for the rest of this request."""
    chosen = supported(language)
    _language.set(chosen)
    if time_zone:
        _zone.set(time_zone)
    return chosen


def current_language() -> str:
    """The language of the current request."""
    return _language.get()


def translate(msgid: str, language: str | None = None, context: str | None = None) -> str:
    """The translation of ``msgid`` from any domain; ``msgid`` itself when there is none."""
    chosen = supported(language) if language else _language.get()
    for domain in DOMAINS:
        message = catalogue(domain, chosen).get(msgid, context=context)
        usable = message is not None and not message.fuzzy and isinstance(message.string, str)
        if usable and message is not None and message.string:
            return str(message.string)
    return msgid


def gettext(msgid: str, **variables: object) -> str:
    """Jinja's ``_``: translated, then ``%(name)s`` placeholders filled."""
    text = translate(msgid)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, count: int, **variables: object) -> str:
    """Plural forms: the singular for 1, otherwise the plural (the five languages' catalogues
    spell out count-dependent forms as separate messages where grammar needs more)."""
    text = translate(singular if count == 1 else plural)
    return text % {"num": count, **variables}


def pgettext(context: str, msgid: str, **variables: object) -> str:
    """A message with a context, for words that differ by use."""
    text = translate(msgid, context=context)
    return text % variables if variables else text


def _locale() -> Locale:
    """The Babel locale of the current language."""
    return Locale.parse(LOCALES[_language.get()])


def local_datetime(moment: datetime, style: str = "medium") -> str:
    """A moment as date and time, in the request's language and time zone."""
    return format_datetime(moment, style, tzinfo=ZoneInfo(_zone.get()), locale=_locale())


def local_date(moment: datetime, style: str = "full") -> str:
    """A moment's date, e.g. "mánudagur, 23. nóvember 2026"."""
    return format_date(moment.astimezone(ZoneInfo(_zone.get())), style, locale=_locale())


def local_time(moment: datetime, style: str = "short") -> str:
    """A moment's time of day, e.g. "14:05"."""
    return format_time(moment, style, tzinfo=ZoneInfo(_zone.get()), locale=_locale())


def number(value: float, digits: int = 1) -> str:
    """A number with the locale's decimal sign, e.g. "37,5" in Icelandic."""
    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=_locale())
