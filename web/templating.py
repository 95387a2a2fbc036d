"""Jinja2 templates and static files of the console and the tablet."""

from __future__ import annotations

from pathlib import Path

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from web import console_words, i18n

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def _install_i18n(engine: JinjaTemplateEngine) -> None:
    """``_()`` and the locale formatters in every template, in the request's language."""
    environment = engine.engine
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext
    )
    environment.globals["current_language"] = i18n.current_language
    environment.filters["local_datetime"] = i18n.local_datetime
    environment.filters["local_date"] = i18n.local_date
    environment.filters["local_time"] = i18n.local_time
    environment.filters["number"] = i18n.number
    # The domain's codes (kinds, channels, recipients) and an alert's facts in words.
    for name in (
        "age",
        "alert_facts",
        "alert_kind_name",
        "channel_name",
        "device_kind_name",
        "event_name",
        "vital_name",
    ):
        environment.globals[name] = getattr(console_words, name)
    environment.globals["recipient_name"] = console_words.recipient_name


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 with autoescaping and gettext, reading templates from ``web/templates``."""
    return TemplateConfig(
        directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=_install_i18n
    )
