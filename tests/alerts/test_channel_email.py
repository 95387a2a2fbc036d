"""E-mail channel against a real SMTP server (aiosmtpd) in the test process."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from alerts.channels import DeliveryResult, EmailChannel, OutgoingMessage, send_with_retries
from tests.conftest import Mailbox, free_port

MESSAGE = OutgoingMessage(
    channel="email",
    address="hjukrun@vaki.example",
    recipient_name="Þórdís Ævarsdóttir",
    language="is",
    subject="BRÁÐATILVIK: Neyðarhnappur — Guðrún Sigurðardóttir",
    body="Neyðarhnappur — Guðrún Sigurðardóttir\nForgangur: bráðatilvik\nBoðunarþrep 1",
    idempotency_key="alert:42/tier:1/attempt:0/staff:7/email",
    url="https://vaki.example/alerts/42",
)


def channel(port: int, timeout_s: float = 10) -> EmailChannel:
    """An e-mail channel pointed at the local server."""
    return EmailChannel("127.0.0.1", port, sender="Vaki <vaki@vaki.example>", timeout_s=timeout_s)


async def test_delivers_utf8_mail_with_subject_recipient_and_message_id(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox

    result = await channel(port).send(MESSAGE)

    assert result == DeliveryResult(ok=True, detail="250 OK queued as 1", retryable=False)
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "vaki@vaki.example"
    assert envelope.rcpt_tos == ["hjukrun@vaki.example"]
    mail = handler.received()
    assert mail["Subject"] == MESSAGE.subject
    assert mail["To"].addresses[0].display_name == "Þórdís Ævarsdóttir"
    assert mail["To"].addresses[0].addr_spec == "hjukrun@vaki.example"
    assert mail["Message-ID"] == "<alert%3A42%2Ftier%3A1%2Fattempt%3A0%2Fstaff%3A7%2Femail@vaki>"
    assert mail["Content-Language"] == "is"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_charset() == "utf-8"
    body = mail.get_content()
    assert "Guðrún Sigurðardóttir" in body
    assert "Forgangur: bráðatilvik" in body
    assert body.rstrip().endswith("https://vaki.example/alerts/42")
    # Only ASCII on the wire: the Icelandic letters travel encoded and survive any relay.
    assert isinstance(envelope.content, bytes)
    assert envelope.content.isascii()


async def test_message_id_stays_valid_for_awkward_keys(mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox

    await channel(port).send(replace(MESSAGE, idempotency_key="..a b<c>@\r\nd" + "x" * 300))

    message_id = handler.received()["Message-ID"]
    assert message_id.startswith("<sha256-")
    assert message_id.endswith("@vaki>")
    assert " " not in message_id


async def test_a_refused_recipient_is_permanent(mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    handler.rcpt_reply = "550 5.1.1 No such user"

    result = await channel(port).send(MESSAGE)

    assert not result.ok
    assert not result.retryable
    assert "550" in result.detail


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("550 5.7.1 Rejected as spam", False), ("451 4.3.0 Try again later", True)],
)
async def test_data_refusal_is_permanent_for_5xx_and_temporary_for_4xx(
    mailbox: tuple[Mailbox, int], reply: str, retryable: bool
) -> None:
    handler, port = mailbox
    handler.data_reply = reply

    result = await channel(port).send(MESSAGE)

    assert not result.ok
    assert result.retryable is retryable
    assert reply[:3] in result.detail


async def test_an_unusable_address_is_refused_before_connecting() -> None:
    result = await channel(free_port()).send(replace(MESSAGE, address="not an address"))

    assert not result.ok
    assert not result.retryable
    assert "bad address" in result.detail


def test_a_sender_that_is_not_an_address_stops_start_up() -> None:
    with pytest.raises(ValueError, match="sender"):
        EmailChannel("127.0.0.1", 25, sender="Vaki")


async def test_nothing_listening_is_worth_retrying() -> None:
    result = await channel(free_port()).send(MESSAGE)

    assert not result.ok
    assert result.retryable
    assert "unreachable" in result.detail


async def test_a_server_that_never_greets_times_out_and_is_worth_retrying() -> None:
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await channel(port, timeout_s=0.2).send(MESSAGE)
        # The channel must have hung up, or this would wait for the test's timeout.
        await asyncio.wait_for(hung_up.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()

    assert not result.ok
    assert result.retryable
    assert "timed out" in result.detail


async def test_retries_stop_after_success(mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    results = await send_with_retries(channel(port), MESSAGE, attempts=3, sleep=sleep)

    assert [result.ok for result in results] == [True]
    assert delays == []
    assert len(handler.envelopes) == 1


async def test_retries_back_off_then_stop_at_a_permanent_failure(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox
    handler.data_reply = "451 4.3.0 Try again later"
    later_replies = iter(["451 4.3.0 Try again later", "550 5.7.1 Rejected"])
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        handler.data_reply = next(later_replies)

    results = await send_with_retries(
        channel(port), MESSAGE, attempts=5, first_delay_s=0.5, sleep=sleep
    )

    assert [(result.ok, result.retryable) for result in results] == [
        (False, True),
        (False, True),
        (False, False),
    ]
    assert delays == [0.5, 1.0]
    assert handler.envelopes == []


async def test_retries_give_up_after_the_last_attempt() -> None:
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    results = await send_with_retries(channel(free_port()), MESSAGE, attempts=3, sleep=sleep)

    assert len(results) == 3
    assert all(result.retryable and not result.ok for result in results)
    assert delays == [1.0, 2.0]
