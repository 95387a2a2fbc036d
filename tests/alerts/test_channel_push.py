"""Web Push channel against a real HTTP server standing in for the browser's push service.

The test is the subscribing browser: it makes the P-256 key pair and auth secret, and
decrypts what arrives exactly as a browser would.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import http_ece  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid  # type: ignore[import-untyped]

from alerts.channels import OutgoingMessage, WebPushChannel, generate_vapid_keys
from alerts.channels.push import push_topic
from tests.conftest import free_port
from tests.http_receiver import HttpReceiver, serving


def b64url(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Inverse of b64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A subscriber's keys, as a browser's PushManager makes them."""

    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @classmethod
    def new(cls) -> Browser:
        """Fresh keys, as for a new subscription."""
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def subscription(self, endpoint: str) -> str:
        """The subscription's JSON, as PushSubscription.toJSON() gives it."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {"p256dh": b64url(public), "auth": b64url(self.auth_secret)}
        return json.dumps({"endpoint": endpoint, "keys": keys})

    def decrypt(self, body: bytes) -> bytes:
        """The plaintext of an aes128gcm push message."""
        plaintext = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"
        )
        assert isinstance(plaintext, bytes)
        return plaintext


@pytest.fixture
async def push_service() -> AsyncIterator[HttpReceiver]:
    """A stand-in push service on a free port."""
    async with serving(HttpReceiver(status=201)) as receiver:
        yield receiver


def message(address: str) -> OutgoingMessage:
    """A push notification for the given subscription."""
    return OutgoingMessage(
        channel="push",
        address=address,
        recipient_name="Þórdís Ævarsdóttir",
        language="is",
        subject="BRÁÐATILVIK: Neyðarhnappur — Guðrún Sigurðardóttir",
        body="Neyðarhnappur — Guðrún Sigurðardóttir\nForgangur: bráðatilvik\nBoðunarþrep 1",
        idempotency_key="alert:42/tier:1/attempt:0/staff:7/push",
        url="https://vaki.example/alerts/42",
    )


async def test_the_browser_decrypts_the_payload_and_the_vapid_header_is_valid(
    push_service: HttpReceiver,
) -> None:
    private_key, public_key = generate_vapid_keys()
    channel = WebPushChannel(private_key, subject="mailto:ops@vaki.example", ttl_s=300)
    browser = Browser.new()
    endpoint = f"http://127.0.0.1:{push_service.port}/push/abc123"

    result = await channel.send(message(browser.subscription(endpoint)))

    assert result.ok
    assert "201" in result.detail
    [request] = push_service.requests
    assert (request.method, request.path) == ("POST", "/push/abc123")
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["ttl"] == "300"
    assert request.headers["urgency"] == "high"
    assert request.headers["topic"] == push_topic("alert:42/tier:1/attempt:0/staff:7/push")
    assert json.loads(browser.decrypt(request.body)) == {
        "title": "BRÁÐATILVIK: Neyðarhnappur — Guðrún Sigurðardóttir",
        "body": "Neyðarhnappur — Guðrún Sigurðardóttir\nForgangur: bráðatilvik\nBoðunarþrep 1",
        "url": "https://vaki.example/alerts/42",
        "tag": "alert:42/tier:1/attempt:0/staff:7/push",
    }

    authorization = request.headers["authorization"]
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    assert set(fields) == {"t", "k"}
    assert fields["k"] == public_key
    assert Vapid.verify(authorization) is True
    claims = json.loads(unb64url(fields["t"].split(".")[1]))
    assert claims["aud"] == f"http://127.0.0.1:{push_service.port}"
    assert claims["sub"] == "mailto:ops@vaki.example"
    assert claims["exp"] > time.time()


def test_vapid_keys_have_the_shapes_browsers_and_the_library_expect() -> None:
    private_key, public_key = generate_vapid_keys()

    assert len(unb64url(private_key)) == 32
    raw_public = unb64url(public_key)
    assert len(raw_public) == 65
    assert raw_public[0] == 4  # an uncompressed P-256 point, as applicationServerKey wants
    assert "=" not in private_key + public_key
    assert Vapid.from_string(private_key=private_key) is not None
    assert WebPushChannel(private_key).application_server_key == public_key


@pytest.mark.parametrize("status", [404, 410])
async def test_an_expired_subscription_is_permanent(
    push_service: HttpReceiver, status: int
) -> None:
    push_service.status = status
    channel = WebPushChannel(generate_vapid_keys()[0])
    endpoint = f"http://127.0.0.1:{push_service.port}/push/gone"

    result = await channel.send(message(Browser.new().subscription(endpoint)))

    assert not result.ok
    assert not result.retryable
    assert "expired" in result.detail
    assert str(status) in result.detail


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (400, False)])
async def test_other_refusals_are_retried_only_when_the_service_may_recover(
    push_service: HttpReceiver, status: int, retryable: bool
) -> None:
    push_service.status = status
    channel = WebPushChannel(generate_vapid_keys()[0])
    endpoint = f"http://127.0.0.1:{push_service.port}/push/busy"

    result = await channel.send(message(Browser.new().subscription(endpoint)))

    assert not result.ok
    assert result.retryable is retryable
    assert str(status) in result.detail


async def test_nothing_listening_is_worth_retrying() -> None:
    channel = WebPushChannel(generate_vapid_keys()[0], timeout_s=5)
    endpoint = f"http://127.0.0.1:{free_port()}/push/down"

    result = await channel.send(message(Browser.new().subscription(endpoint)))

    assert not result.ok
    assert result.retryable


@pytest.mark.parametrize(
    "address",
    [
        "not json",
        "[]",
        json.dumps({"endpoint": "ftp://push.example/x", "keys": {"p256dh": "a", "auth": "b"}}),
        json.dumps({"endpoint": "https://push.example/x", "keys": {"auth": "b"}}),
        json.dumps({"endpoint": "https://push.example/x", "keys": {"p256dh": "!!", "auth": "b"}}),
        json.dumps({"endpoint": "https://push.example/x", "keys": {"p256dh": "", "auth": ""}}),
        Browser.new().subscription("https://push.example/x").replace('"auth": "', '"auth": "AAAA'),
    ],
)
async def test_a_malformed_subscription_is_permanent(address: str) -> None:
    channel = WebPushChannel(generate_vapid_keys()[0])

    result = await channel.send(message(address))

    assert not result.ok
    assert not result.retryable
    assert "subscription" in result.detail


def test_a_bad_vapid_key_stops_start_up() -> None:
    with pytest.raises(ValueError, match="VAPID"):
        WebPushChannel("not-a-key")


async def test_a_body_too_big_for_one_push_message_is_cut(push_service: HttpReceiver) -> None:
    channel = WebPushChannel(generate_vapid_keys()[0])
    browser = Browser.new()
    endpoint = f"http://127.0.0.1:{push_service.port}/push/long"
    long = replace(message(browser.subscription(endpoint)), body="Þ" * 5000)

    result = await channel.send(long)

    assert result.ok
    payload = json.loads(browser.decrypt(push_service.requests[0].body))
    assert payload["body"].startswith("ÞÞÞ")
    assert payload["body"].endswith("…")
    assert payload["tag"] == "alert:42/tier:1/attempt:0/staff:7/push"
