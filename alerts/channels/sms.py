"""SMS notifications through an HTTP SMS gateway (JSON over HTTPS, httpx)."""

from __future__ import annotations

import re

import httpx

from alerts.channels.base import DeliveryResult, OutgoingMessage

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MAX_REASON = 120

# Messages are capped at three concatenated segments: enough for the alarm, the resident,
# the tier and the link, and cheap enough that a long body cannot run up the bill. A
# segment holds 153 GSM-7 characters, or 67 UTF-16 units when the text needs UCS-2
# (Icelandic þ, ð, á and Polish ą, ł, ż are not in GSM-7), so the cap is 459 or 201.
MAX_SEGMENTS = 3
_GSM7_SEGMENT = 153
_UCS2_SEGMENT = 67
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# These cost two septets each: an escape and the character.
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def e164(number: str) -> str | None:
    """The number in E.164 form, as people write it ("+354 862 1234", "+354-862-1234"),
    or None when it is not one."""
    compact = re.sub(r"[\s\-().]", "", number)
    return compact if _E164.fullmatch(compact) else None


def _is_gsm7(text: str) -> bool:
    """True when every character has a GSM-7 encoding."""
    return all(char in _GSM7_BASIC or char in _GSM7_EXTENDED for char in text)


def _gsm7_cost(text: str) -> int:
    """Septets the text takes in GSM-7."""
    return sum(2 if char in _GSM7_EXTENDED else 1 for char in text)


def _ucs2_cost(text: str) -> int:
    """UTF-16 units the text takes in UCS-2 (characters outside the BMP take two)."""
    return len(text.encode("utf-16-le")) // 2


def shorten_for_sms(text: str, max_segments: int = MAX_SEGMENTS) -> str:
    """The text cut to fit `max_segments` SMS segments, keeping its start."""
    if _is_gsm7(text):
        cost, budget, ellipsis = _gsm7_cost, _GSM7_SEGMENT * max_segments, "..."
    else:
        cost, budget, ellipsis = _ucs2_cost, _UCS2_SEGMENT * max_segments, "…"
    if cost(text) <= budget:
        return text
    room = budget - cost(ellipsis)
    kept: list[str] = []
    used = 0
    for char in text:
        used += cost(char)
        if used > room:
            break
        kept.append(char)
    cut = "".join(kept)
    # Cutting at a word boundary reads better, unless that would lose much of the text.
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    if boundary > len(cut) * 3 // 4:
        cut = cut[:boundary]
    return cut.rstrip() + ellipsis


class SmsGatewayChannel:
    """Posts each message to an SMS gateway's JSON endpoint."""

    name = "sms"

    def __init__(
        self, url: str, *, token: str | None = None, sender: str = "Vaki", timeout_s: float = 10
    ) -> None:
        self.url = url
        self.sender = sender
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # One client for the channel's lifetime, so connections to the gateway are reused.
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout_s)

    async def aclose(self) -> None:
        """Close the HTTP client and its connections."""
        await self._client.aclose()

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        """Post one SMS to the gateway and report its answer."""
        number = e164(message.address)
        if number is None:
            return DeliveryResult(
                ok=False,
                detail=f"not an E.164 phone number: {message.address!r}",
                retryable=False,
            )
        payload = {
            "to": number,
            "from": self.sender,
            "text": shorten_for_sms(message.body),
            "reference": message.idempotency_key,
        }
        try:
            response = await self._client.post(self.url, json=payload)
        except httpx.InvalidURL as err:
            return DeliveryResult(ok=False, detail=f"bad gateway URL: {err}", retryable=False)
        except httpx.TimeoutException:
            return DeliveryResult(ok=False, detail="gateway timed out", retryable=True)
        except httpx.HTTPError as err:
            # Refused or dropped connections, DNS failures: the gateway may be back soon.
            return DeliveryResult(
                ok=False, detail=f"gateway unreachable: {type(err).__name__}", retryable=True
            )
        status = response.status_code
        if response.is_success:
            return DeliveryResult(ok=True, detail=f"gateway accepted ({status})", retryable=False)
        # 429 is the gateway asking us to slow down, not refusing the message.
        retryable = status == 429 or status >= 500
        detail = f"gateway answered {status}"
        reason = " ".join(response.text.split())[:_MAX_REASON]
        if reason:
            detail = f"{detail}: {reason}"
        return DeliveryResult(ok=False, detail=detail, retryable=retryable)
