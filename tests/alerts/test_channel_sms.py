"""SMS channel against a real HTTP server in the test process standing in for the gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from alerts.channels import OutgoingMessage, SmsGatewayChannel
from alerts.channels.sms import MAX_SEGMENTS, shorten_for_sms
from tests.conftest import free_port
from tests.http_receiver import HttpReceiver, serving

MESSAGE = OutgoingMessage(
    channel="sms",
    address="+3545551234",
    recipient_name="Þórdís Ævarsdóttir",
    language="is",
    subject="BRÁÐATILVIK: Neyðarhnappur — Guðrún Sigurðardóttir",
    body="Neyðarhnappur — Guðrún Sigurðardóttir\nForgangur: bráðatilvik\nBoðunarþrep 1",
    idempotency_key="alert:42/tier:1/attempt:0/staff:7/sms",
    url="https://vaki.example/alerts/42",
)


@pytest.fixture
async def gateway() -> AsyncIterator[HttpReceiver]:
    """A stand-in SMS gateway on a free port."""
    async with serving(HttpReceiver(status=200, json=True)) as receiver:
        yield receiver


@pytest.fixture
async def sms(gateway: HttpReceiver) -> AsyncIterator[SmsGatewayChannel]:
    """A channel pointed at the stand-in gateway, closed afterwards."""
    channel = SmsGatewayChannel(
        f"http://127.0.0.1:{gateway.port}/v1/sms", token="s3cret", timeout_s=5
    )
    yield channel
    await channel.aclose()


async def test_posts_json_with_bearer_token_and_reference(
    gateway: HttpReceiver, sms: SmsGatewayChannel
) -> None:
    result = await sms.send(MESSAGE)

    assert result.ok
    assert "200" in result.detail
    [request] = gateway.requests
    assert (request.method, request.path) == ("POST", "/v1/sms")
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {
        "to": "+3545551234",
        "from": "Vaki",
        "text": MESSAGE.body,
        "reference": "alert:42/tier:1/attempt:0/staff:7/sms",
    }


async def test_no_authorization_header_without_a_token(gateway: HttpReceiver) -> None:
    channel = SmsGatewayChannel(f"http://127.0.0.1:{gateway.port}/sms", sender="Heimahjukrun")
    try:
        result = await channel.send(MESSAGE)
    finally:
        await channel.aclose()

    assert result.ok
    [request] = gateway.requests
    assert "authorization" not in request.headers
    assert json.loads(request.body)["from"] == "Heimahjukrun"


@pytest.mark.parametrize(
    ("status", "ok", "retryable"),
    [
        (202, True, False),
        (400, False, False),
        (401, False, False),
        (429, False, True),
        (500, False, True),
        (503, False, True),
    ],
)
async def test_gateway_status_decides_success_and_retry(
    gateway: HttpReceiver, sms: SmsGatewayChannel, status: int, ok: bool, retryable: bool
) -> None:
    gateway.status = status

    result = await sms.send(MESSAGE)

    assert (result.ok, result.retryable) == (ok, retryable)
    assert str(status) in result.detail


async def test_a_number_that_is_not_e164_is_refused_without_calling_the_gateway(
    gateway: HttpReceiver, sms: SmsGatewayChannel
) -> None:
    result = await sms.send(replace(MESSAGE, address="555 1234"))

    assert not result.ok
    assert not result.retryable
    assert gateway.requests == []


async def test_nothing_listening_is_worth_retrying() -> None:
    channel = SmsGatewayChannel(f"http://127.0.0.1:{free_port()}/sms")
    try:
        result = await channel.send(MESSAGE)
    finally:
        await channel.aclose()

    assert not result.ok
    assert result.retryable


async def test_a_gateway_that_does_not_answer_times_out_and_is_worth_retrying() -> None:
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = SmsGatewayChannel(f"http://127.0.0.1:{port}/sms", timeout_s=0.2)
    try:
        result = await channel.send(MESSAGE)
        await asyncio.wait_for(hung_up.wait(), 5)
    finally:
        await channel.aclose()
        server.close()
        await server.wait_closed()

    assert not result.ok
    assert result.retryable
    assert "timed out" in result.detail


async def test_a_long_body_is_cut_to_a_few_segments_keeping_its_start(
    gateway: HttpReceiver, sms: SmsGatewayChannel
) -> None:
    body = "Neyðarhnappur — Guðrún Sigurðardóttir. " + "Nánari upplýsingar fylgja. " * 40

    await sms.send(replace(MESSAGE, body=body))

    text = json.loads(gateway.requests[0].body)["text"]
    assert text.startswith("Neyðarhnappur — Guðrún Sigurðardóttir.")
    assert text.endswith("…")
    # Icelandic needs UCS-2: 67 characters to a concatenated segment.
    assert len(text) <= 67 * MAX_SEGMENTS


def test_plain_gsm_text_gets_more_room_than_ucs2_text() -> None:
    ascii_text = "Panic button - Anna Jonsdottir. " + "More details follow. " * 40
    icelandic_text = "Neyðarhnappur — Þóra. " + "Nánar síðar. " * 40

    gsm = shorten_for_sms(ascii_text)
    ucs2 = shorten_for_sms(icelandic_text)

    assert len(gsm) <= 153 * MAX_SEGMENTS < len(ascii_text)
    assert gsm.endswith("...")
    assert len(ucs2) <= 67 * MAX_SEGMENTS < len(icelandic_text)
    assert shorten_for_sms("Short and sweet") == "Short and sweet"


def test_numbers_as_people_write_them_are_sent_in_e164() -> None:
    from alerts.channels.sms import e164

    assert e164("+354 862 1234") == "+3548621234"
    assert e164("+354-862-1234") == "+3548621234"
    assert e164("(+354) 862 1234") == "+3548621234"
    assert e164("862 1234") is None
    assert e164("+354 862 12a4") is None
