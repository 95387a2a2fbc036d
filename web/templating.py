"""Jinja2 templates and static files of the console and the tablet."""

from __future__ import annotations

from pathlib import Path

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja2 with autoescaping, reading templates from ``web/templates``."""
    return TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine)
