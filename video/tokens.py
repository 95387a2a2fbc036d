"""Room tokens and TURN credentials: short-lived, signed, checked without the database.

A room token admits one participant to one consultation's room once, until it expires
(minutes): ``<consultation>.<participant>.<expiry>.<nonce>.<signature>`` with an HMAC-SHA256
signature under the video secret (configured, or derived from the instance secret in the
database, so the same on every instance and after a restart). The nonce lets the room
service refuse a token used before (``VideoService.admit``). TURN credentials follow
coturn's TURN REST convention (its ``use-auth-secret``): username ``<expiry-unix>:<user>``,
credential ``base64(HMAC-SHA1(secret, username))``, so coturn checks them with the shared
secret alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from video.errors import RoomTokenError

_PARTICIPANT = re.compile(r"^(resident|staff):[0-9]+$")


def participant_id(kind: str, identifier: int) -> str:
    """How a participant is named in tokens, rooms and records: ``staff:7``, ``resident:3``."""
    name = f"{kind}:{identifier}"
    if not _PARTICIPANT.match(name):
        raise ValueError(f"not a participant: {name}")
    return name


@dataclass(frozen=True)
class RoomPass:
    """What a valid room token says."""

    consultation_id: int
    participant: str
    expires_at: datetime
    nonce: str


def _signature(secret: bytes, body: str) -> str:
    """The token's HMAC-SHA256, URL-safe."""
    digest = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue_room_token(
    secret: bytes, consultation_id: int, participant: str, *, now: datetime, ttl: timedelta
) -> tuple[str, datetime]:
    """A token admitting ``participant`` to the consultation's room, and when it expires."""
    if not _PARTICIPANT.match(participant):
        raise ValueError(f"not a participant: {participant}")
    expires_at = now + ttl
    nonce = secrets.token_urlsafe(12)
    body = f"{consultation_id}.{participant}.{int(expires_at.timestamp())}.{nonce}"
    return f"{body}.{_signature(secret, body)}", expires_at


def check_room_token(secret: bytes, token: str, consultation_id: int, *, now: datetime) -> RoomPass:
    """Who the token admits to this consultation's room; RoomTokenError otherwise."""
    parts = token.split(".")
    if len(parts) != 5:
        raise RoomTokenError("the room token is malformed")
    consultation, participant, expiry, nonce, signature = parts
    body = f"{consultation}.{participant}.{expiry}.{nonce}"
    if not hmac.compare_digest(signature, _signature(secret, body)):
        raise RoomTokenError("the room token is not signed by this service")
    if not consultation.isdigit() or int(consultation) != consultation_id:
        raise RoomTokenError("the room token is for another consultation")
    if not expiry.isdigit() or len(expiry) > 12 or int(expiry) <= now.timestamp():
        raise RoomTokenError("the room token has expired: ask for a new one")
    expires_at = datetime.fromtimestamp(int(expiry), tz=now.tzinfo)
    return RoomPass(int(consultation), participant, expires_at, nonce)


@dataclass(frozen=True)
class TurnCredential:
    """A time-limited TURN login in coturn's REST convention."""

    username: str
    credential: str
    expires_at: datetime


def turn_credential(secret: str, user: str, *, now: datetime, ttl: timedelta) -> TurnCredential:
    """A TURN username and password valid until ``now + ttl`` on any coturn with ``secret``."""
    expires_at = now + ttl
    username = f"{int(expires_at.timestamp())}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode(), expires_at)


def ice_servers(
    urls: list[str], turn_secret: str | None, user: str, *, now: datetime, ttl: timedelta
) -> list[dict[str, object]]:
    """The ICE servers for a browser's ``RTCPeerConnection``: STUN as is, TURN with credentials."""
    stun = [url for url in urls if url.startswith(("stun:", "stuns:"))]
    turn = [url for url in urls if url.startswith(("turn:", "turns:"))]
    servers: list[dict[str, object]] = []
    if stun:
        servers.append({"urls": stun})
    if turn and turn_secret:
        login = turn_credential(turn_secret, user, now=now, ttl=ttl)
        servers.append({"urls": turn, "username": login.username, "credential": login.credential})
    return servers
