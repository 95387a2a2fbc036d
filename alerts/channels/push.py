"""Web Push notifications to staff browsers (RFC 8030/8291 with VAPID, pywebpush)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, VapidException  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

from alerts.channels.base import DeliveryResult, OutgoingMessage

# A push message carries at most 4096 encrypted bytes, about 3993 of payload (RFC 8291);
# staying below leaves room for the JSON around a body that had to be cut.
MAX_PAYLOAD_BYTES = 3800
_GONE = (404, 410)


def _b64url(data: bytes) -> str:
    """URL-safe base64 without padding, as Web Push and VAPID write keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair: (private key for this channel, public key for browsers)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(private), _b64url(public)


def push_topic(idempotency_key: str) -> str:
    """The Topic header for a key: a pending duplicate is replaced rather than shown twice."""
    # RFC 8030 allows at most 32 characters of the URL-safe base64 alphabet.
    return _b64url(hashlib.sha256(idempotency_key.encode()).digest())[:32]


def _unb64url(text: str) -> bytes:
    """Bytes from URL-safe base64 with or without padding; ValueError on stray characters."""
    return base64.b64decode(
        text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
    )


def _parse_subscription(address: str) -> dict[str, Any]:
    """The subscription a browser gave, from its JSON text; ValueError when malformed."""
    subscription = json.loads(address)
    if not isinstance(subscription, dict):
        raise ValueError("not a JSON object")
    endpoint = subscription.get("endpoint")
    keys = subscription.get("keys")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        raise ValueError("no http(s) endpoint")
    if not isinstance(keys, dict) or not all(
        isinstance(keys.get(name), str) for name in ("p256dh", "auth")
    ):
        raise ValueError("keys.p256dh and keys.auth are required")
    # pywebpush's own check lets a short or empty key through to an IndexError deep inside.
    receiver = _unb64url(keys["p256dh"])
    if len(receiver) != 65 or receiver[0] != 4:
        raise ValueError("keys.p256dh is not an uncompressed P-256 public key")
    if len(_unb64url(keys["auth"])) != 16:
        raise ValueError("keys.auth is not a 16-byte secret")
    return {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}


def _payload(message: OutgoingMessage) -> str:
    """The JSON the service worker shows, with the body cut if it would not fit."""
    body = message.body
    while True:
        payload = json.dumps(
            {
                "title": message.subject,
                "body": body,
                "url": message.url,
                "tag": message.idempotency_key,
            },
            ensure_ascii=False,
        )
        if len(payload.encode()) <= MAX_PAYLOAD_BYTES or not body:
            return payload
        body = body[: len(body) * 3 // 4].rstrip() + "…"


class WebPushChannel:
    """Encrypts and posts each message to the push service behind a browser subscription."""

    name = "push"

    def __init__(
        self,
        vapid_private_key: str,
        *,
        subject: str = "mailto:ops@example.org",
        ttl_s: int = 600,
        timeout_s: float = 10,
    ) -> None:
        try:
            # Parsed once, so a bad key stops start-up instead of every alarm.
            self._vapid = Vapid.from_string(private_key=vapid_private_key)
        except (ValueError, VapidException) as err:
            raise ValueError(f"invalid VAPID private key: {err}") from err
        # Browsers subscribe with this key, so the page can take it from the channel.
        self.application_server_key = _b64url(
            self._vapid.public_key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        self.subject = subject
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        """Post one push message and report the push service's answer."""
        try:
            subscription = _parse_subscription(message.address)
        except ValueError as err:
            return DeliveryResult(
                ok=False, detail=f"invalid push subscription: {err}", retryable=False
            )
        headers = {"Topic": push_topic(message.idempotency_key), "Urgency": "high"}
        try:
            status = await asyncio.to_thread(self._post, subscription, _payload(message), headers)
        except WebPushException as err:
            return _refused(err)
        except VapidException as err:
            return DeliveryResult(ok=False, detail=f"VAPID: {err}", retryable=False)
        except ValueError as err:
            # Keys that do not decode to a P-256 point, or a URL requests rejects.
            return DeliveryResult(
                ok=False, detail=f"invalid push subscription: {err}", retryable=False
            )
        except OSError as err:
            # requests' connection errors and timeouts are OSErrors: the service may recover.
            return DeliveryResult(
                ok=False, detail=f"push service unreachable: {type(err).__name__}", retryable=True
            )
        return DeliveryResult(ok=True, detail=f"push service accepted ({status})", retryable=False)

    def _post(self, subscription: dict[str, Any], payload: str, headers: dict[str, str]) -> int:
        """Encrypt and post in the calling thread (pywebpush blocks); the HTTP status."""
        response = webpush(
            subscription,
            data=payload,
            vapid_private_key=self._vapid,
            # A fresh dict each time: webpush writes aud and exp into the one it is given.
            vapid_claims={"sub": self.subject},
            ttl=self.ttl_s,
            timeout=self.timeout_s,
            headers=headers,
        )
        return int(response.status_code)


def _refused(err: Any) -> DeliveryResult:
    """A result for a push service's error answer (or pywebpush refusing the input)."""
    status = err.status_code
    if status is None:
        return DeliveryResult(ok=False, detail=f"push not sent: {err.message}", retryable=False)
    if status in _GONE:
        # The browser unsubscribed or the subscription lapsed; the caller drops it.
        return DeliveryResult(ok=False, detail=f"subscription expired ({status})", retryable=False)
    retryable = status == 429 or status >= 500
    return DeliveryResult(ok=False, detail=f"push service answered {status}", retryable=retryable)
