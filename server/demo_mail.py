"""The demo's e-mail: a local SMTP sink (aiosmtpd) that keeps every message as a file, so the
demo's escalation policies can e-mail relatives and staff without a mail server, and what
they would have received can be read in ``{data_dir}/demo-mail/``."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from server.settings import Settings

log = logging.getLogger(__name__)


class _KeepAsFiles:
    """aiosmtpd handler: each message becomes one ``.eml`` file, numbered in arrival order."""

    def __init__(self, folder: Path) -> None:
        """Write into ``folder`` (made when missing)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.count = len(list(folder.glob("*.eml")))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Keep the message; the sender hears it was delivered."""
        self.count += 1
        path = self.folder / f"{self.count:05d}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        log.info("demo e-mail to %s kept in %s", ", ".join(envelope.rcpt_tos), path)
        return "250 kept"


def start_demo_mail(settings: Settings) -> Controller:
    """Start the sink on a free local port and point the settings' e-mail at it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    sink = Controller(
        _KeepAsFiles(settings.data_dir / "demo-mail"), hostname="127.0.0.1", port=port
    )
    sink.start()
    settings.smtp_host, settings.smtp_port = "127.0.0.1", sink.port
    settings.smtp_starttls, settings.smtp_username, settings.smtp_password = False, None, None
    return sink
