"""E-mail notifications through an SMTP server (aiosmtplib)."""

from __future__ import annotations

import hashlib
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import quote

import aiosmtplib

from alerts.channels.base import DeliveryResult, OutgoingMessage

# Header lines must stay under 998 bytes; past this the key is replaced by its hash, which
# is still the same for the same key, so duplicates stay recognisable.
_MAX_MESSAGE_ID_KEY = 200
_MAX_DETAIL = 200


def message_id_for(idempotency_key: str) -> str:
    """The Message-ID that carries an idempotency key: `<key@vaki>`, made header-safe."""
    # Percent-encoding (rather than dropping) keeps distinct keys distinct and reversible;
    # dots go too, because a Message-ID may not have two in a row or one at either end.
    safe = quote(idempotency_key, safe="").replace(".", "%2E")
    if not safe or len(safe) > _MAX_MESSAGE_ID_KEY:
        safe = "sha256-" + hashlib.sha256(idempotency_key.encode()).hexdigest()
    return f"<{safe}@vaki>"


class EmailChannel:
    """Sends plain-text UTF-8 e-mail, one SMTP connection per message."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_tls: bool = False,
        timeout_s: float = 10,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self._envelope_sender = parseaddr(sender)[1]
        if "@" not in self._envelope_sender:
            raise ValueError(f"sender must be an e-mail address, not {sender!r}")
        self.username = username
        self.password = password
        self.starttls = starttls
        self.use_tls = use_tls
        self.timeout_s = timeout_s

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The e-mail for a message; the header parser raises for an unusable address."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = Address(display_name=message.recipient_name, addr_spec=message.address)
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = message_id_for(message.idempotency_key)
        # RFC 3834: out-of-office replies to an alarm only add noise.
        mail["Auto-Submitted"] = "auto-generated"
        body = message.body
        if message.url and message.url not in body:
            body = f"{body}\n\n{message.url}"
        # Quoted-printable passes through any relay, 8BITMIME or not, and keeps þ, ð, æ, ö.
        mail.set_content(body, charset="utf-8", cte="quoted-printable")
        # After set_content, which clears every Content-* header.
        mail["Content-Language"] = message.language
        return mail

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        """Hand the message to the SMTP server and report its answer."""
        try:
            mail = self.build(message)
        except (ValueError, IndexError, MessageError) as err:
            # The header parser raises any of these for an address it cannot make sense of.
            return DeliveryResult(
                ok=False, detail=_short(f"bad address {message.address!r}: {err}"), retryable=False
            )
        try:
            _rejected, reply = await aiosmtplib.send(
                mail,
                sender=self._envelope_sender,
                recipients=[message.address],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                use_tls=self.use_tls,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            first = err.recipients[0]
            return _error_reply(first.code, first.message)
        except aiosmtplib.SMTPResponseException as err:
            return _error_reply(err.code, err.message)
        except aiosmtplib.SMTPNotSupported as err:
            # The server lacks something the configuration demands (STARTTLS, AUTH).
            return DeliveryResult(ok=False, detail=_short(f"SMTP: {err}"), retryable=False)
        except (aiosmtplib.SMTPException, OSError) as err:
            # Connection refused, dropped or timed out: the server may be back soon.
            kind = "timed out" if isinstance(err, TimeoutError) else "unreachable"
            return DeliveryResult(
                ok=False,
                detail=_short(f"SMTP server {self.host}:{self.port} {kind}: {err}"),
                retryable=True,
            )
        return DeliveryResult(ok=True, detail=_short(f"250 {reply}"), retryable=False)


def _error_reply(code: int, text: str) -> DeliveryResult:
    """A result for an SMTP error reply: 5xx is permanent, anything else may pass later."""
    return DeliveryResult(
        ok=False, detail=_short(f"SMTP {code} {text}"), retryable=not 500 <= code < 600
    )


def _short(text: str) -> str:
    """One line, short enough for a timeline entry."""
    line = " ".join(text.split())
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 1] + "…"
