"""The demo's e-mail sink: a policy's e-mail goes out through the real channel and is kept."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import alerts
from server.demo_mail import start_demo_mail
from server.settings import Settings


async def test_demo_e_mail_is_kept_as_files(settings: Settings, tmp_path: Path) -> None:
    sink = start_demo_mail(settings)
    try:
        assert (settings.smtp_host, settings.smtp_starttls) == ("127.0.0.1", False)
        channel = alerts.EmailChannel(
            "127.0.0.1", settings.smtp_port, sender=settings.smtp_sender, starttls=False
        )
        result = await channel.send(
            alerts.OutgoingMessage(
                channel="email",
                address="anna@example.is",
                recipient_name="Anna",
                language="is",
                subject="BRÁÐ: Neyðarhnappi ýtt — Sigríður Jónsdóttir",
                body="Opnaðu viðvörunina í stjórnborðinu.",
                idempotency_key="a1:notify:r1:t3:n1:contact-1:email:0",
            )
        )
        assert result.ok, result.detail
    finally:
        sink.stop()
    (kept,) = sorted((settings.data_dir / "demo-mail").glob("*.eml"))
    mail = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
    assert mail["To"] == "Anna <anna@example.is>"
    assert str(mail["Subject"]).endswith("Sigríður Jónsdóttir")
