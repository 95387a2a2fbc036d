"""Structured logs: JSON lines for collectors, readable lines for people."""

from __future__ import annotations

import logging
import re
import sys

import structlog

from server.settings import Settings

_NOISY = (
    "aiosqlite",
    "alembic",
    "amqtt",
    "transitions",
    "apscheduler.scheduler",
    "apscheduler.executors",
    "mail.log",  # the demo's local mail sink tells of every connection
)


# Credentials that can appear in a logged line: a token in a query string (the live stream
# and the video signalling socket take one there), an API token, a tablet key.
_SECRETS = re.compile(
    r"(?P<query>(?:[?&]|%3[Ff]|%26)(?:token|key)=)[^&\s\"']+"
    r"|(?P<api>vaki_[0-9a-f]{12}_)[A-Za-z0-9_-]+"
    r"|(?P<tablet>vakid\.[A-Za-z0-9_-]+\.)[A-Za-z0-9_-]+"
)


def redact(text: str) -> str:
    """``text`` with every credential in it replaced by ``[redacted]``."""
    return _SECRETS.sub(
        lambda m: (m.group("query") or m.group("api") or m.group("tablet")) + "[redacted]", text
    )


class RedactSecrets(logging.Filter):
    """Keeps tokens and keys out of every log line (the access log included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message when it holds a credential; never drop it."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(settings: Settings) -> None:
    """Route stdlib and structlog records through one structlog formatter on stderr."""
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
