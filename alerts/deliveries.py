"""Deliveries of escalation steps: recorded before they are sent, taken by one sender,
sent within a deadline, and tried again with backoff while their alert is open.

Each delivery has an idempotency key (alert, step, recipient, channel). Its row is written
``pending`` with the step; a sender takes it (``pending`` → ``sending``, one atomic update)
before asking the channel, so no key is sent by two senders; the answer is stored as
``sent`` or ``failed`` (with the moment to try again). A row a crash left ``sending`` is
marked ``unknown`` by whoever takes the step over, and not sent again under its key.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.channels import DeliveryResult, OutgoingMessage, notification_text
from alerts.channels.guard import GuardedChannel, retry_delay_s
from alerts.models import (
    Alert,
    AlertStatus,
    EscalationStep,
    Notification,
    NotificationStatus,
)
from alerts.oncall import Recipient
from care import Resident

log = logging.getLogger(__name__)

# Failed deliveries tried again per run, and how often one delivery is tried in all.
RETRY_BATCH = 50
MAX_ATTEMPTS = 8
_TIER_OF_KEY = re.compile(r":t(\d+):")


@dataclass(frozen=True)
class Delivery:
    """One message of a step: to whom, by which channel, under which key."""

    recipient: Recipient
    channel: str
    address: str
    key: str


class DeliveryDesk:
    """Records, takes, sends and retries the deliveries of escalation steps."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channels: dict[str, GuardedChannel],
        *,
        clock: Callable[[], datetime],
        console_url: str | None,
    ) -> None:
        """Send through ``channels`` (already behind deadlines and breakers)."""
        self._sessions = sessions
        self._channels = channels
        self._clock = clock
        self._console_url = console_url

    def deliveries(
        self,
        alert: Alert,
        step: EscalationStep,
        channels: list[str],
        recipients: list[Recipient],
    ) -> list[Delivery]:
        """Every (recipient, channel, address) of the step, with its idempotency key."""
        found = []
        for recipient in recipients:
            for channel in channels:
                for index, address in enumerate(recipient.addresses.get(channel, [])):
                    key = (
                        f"a{alert.id}:{step.kind}:r{step.round}:t{step.tier}:n{step.attempt}"
                        f":{recipient.key}:{channel}:{index}"
                    )
                    found.append(Delivery(recipient, channel, address, key))
        return found

    async def record(
        self, session: AsyncSession, alert: Alert, deliveries: list[Delivery], now: datetime
    ) -> list[Delivery]:
        """Record each delivery under its key; return those still waiting to be sent.

        A delivery left ``sending`` by an instance that died (or lost its lease) may or may
        not have gone out: it is marked ``unknown`` and not sent again under its key.
        """
        if not deliveries:
            return []
        rows = [
            {
                "alert_id": alert.id,
                "channel": d.channel,
                "recipient_kind": d.recipient.kind,
                "recipient_id": d.recipient.id,
                "address": d.address[:255],
                "language": d.recipient.language,
                "idempotency_key": d.key,
                "status": NotificationStatus.PENDING,
                "attempts": 0,
                "created_at": now,
            }
            for d in deliveries
        ]
        keys = [d.key for d in deliveries]
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(Notification)
        await session.exec(
            insert.on_conflict_do_nothing(index_elements=["idempotency_key"]).values(rows)
        )
        await session.exec(
            update(Notification)
            .where(
                col(Notification.idempotency_key).in_(keys),
                col(Notification.status) == NotificationStatus.SENDING,
            )
            .values(
                status=NotificationStatus.UNKNOWN,
                last_error="the instance sending it stopped; not sent again under this key",
            )
        )
        waiting = set(
            (
                await session.exec(
                    select(Notification.idempotency_key).where(
                        col(Notification.idempotency_key).in_(keys),
                        Notification.status == NotificationStatus.PENDING,
                    )
                )
            ).all()
        )
        return [d for d in deliveries if d.key in waiting]

    async def take(self, key: str, *, retry_before: datetime | None = None) -> int | None:
        """Take one delivery for sending (pending, or failed and due for a retry); None when
        someone else has it. Returns the attempt number."""
        if retry_before is None:
            ready = col(Notification.status) == NotificationStatus.PENDING
        else:
            ready = and_(
                col(Notification.status) == NotificationStatus.FAILED,
                col(Notification.retry_at) <= retry_before,
            )
        async with self._sessions() as session, session.begin():
            taken = await session.exec(
                update(Notification)
                .where(col(Notification.idempotency_key) == key, ready)
                .values(
                    status=NotificationStatus.SENDING,
                    attempts=Notification.attempts + 1,
                    retry_at=None,
                )
                .returning(col(Notification.attempts))
            )
            row = taken.first()
        return None if row is None else int(row[0])

    async def store(self, key: str, result: DeliveryResult, attempts: int, *, retry: bool) -> None:
        """Record how a send went; a retryable failure is tried again after a backoff."""
        now = self._clock()
        again = retry and not result.ok and result.retryable and attempts < MAX_ATTEMPTS
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(Notification)
                .where(
                    col(Notification.idempotency_key) == key,
                    col(Notification.status).in_(
                        [NotificationStatus.SENDING, NotificationStatus.UNKNOWN]
                    ),
                )
                .values(
                    status=NotificationStatus.SENT if result.ok else NotificationStatus.FAILED,
                    last_error=None if result.ok else result.detail[:300],
                    sent_at=now if result.ok else None,
                    retry_at=now + timedelta(seconds=retry_delay_s(attempts)) if again else None,
                )
            )

    async def deliver(
        self, alert: Alert, step: EscalationStep, resident: Resident | None, delivery: Delivery
    ) -> None:
        """Take, send and record one delivery; the console needs no sending."""
        attempts = await self.take(delivery.key)
        if attempts is None:
            return
        if delivery.channel == "console":
            await self.store(
                delivery.key, DeliveryResult(True, "on the live console", False), 1, retry=False
            )
            return
        channel = self._channels.get(delivery.channel)
        if channel is None:
            result = DeliveryResult(False, f"channel {delivery.channel} is not configured", False)
        else:
            result = await channel.send(self.message(alert, step.tier, resident, delivery))
        await self.store(delivery.key, result, attempts, retry=True)

    def message(
        self, alert: Alert, tier: int, resident: Resident | None, delivery: Delivery
    ) -> OutgoingMessage:
        """The notification of one delivery, in its recipient's language."""
        url = f"{self._console_url}/alerts/{alert.id}" if self._console_url else None
        subject, body = notification_text(
            delivery.recipient.language,
            alert_title=alert.title,
            resident_name=resident.full_name if resident else "—",
            severity=alert.severity,
            tier=tier,
            console_url=url,
        )
        return OutgoingMessage(
            channel=delivery.channel,
            address=delivery.address,
            recipient_name=delivery.recipient.name,
            language=delivery.recipient.language,
            subject=subject,
            body=body,
            idempotency_key=delivery.key,
            url=url,
        )

    async def retry_failed(self) -> int:
        """Send again the failed deliveries whose backoff is over, while their alert is open;
        return how many were tried."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            # Nobody needs telling about an alert that is taken care of.
            await session.exec(
                update(Notification)
                .where(
                    col(Notification.status) == NotificationStatus.FAILED,
                    col(Notification.retry_at).is_not(None),
                    col(Notification.alert_id).in_(
                        select(Alert.id).where(col(Alert.status) != AlertStatus.OPEN)
                    ),
                )
                .values(retry_at=None)
            )
            due = list(
                (
                    await session.exec(
                        select(Notification, Alert)
                        .join(Alert, col(Alert.id) == col(Notification.alert_id))
                        .where(
                            col(Notification.status) == NotificationStatus.FAILED,
                            col(Notification.retry_at) <= now,
                        )
                        .order_by(col(Notification.retry_at))
                        .limit(RETRY_BATCH)
                    )
                ).all()
            )
            residents = {
                alert.resident_id: await session.get(Resident, alert.resident_id)
                for _, alert in due
                if alert.resident_id is not None
            }
        await asyncio.gather(
            *(
                self._retry(
                    row,
                    alert,
                    residents.get(alert.resident_id) if alert.resident_id else None,
                    now,
                )
                for row, alert in due
            )
        )
        return len(due)

    async def _retry(
        self, row: Notification, alert: Alert, resident: Resident | None, now: datetime
    ) -> None:
        """One more attempt at a delivery that failed."""
        attempts = await self.take(row.idempotency_key, retry_before=now)
        channel = self._channels.get(row.channel)
        if attempts is None or channel is None:
            return
        found = _TIER_OF_KEY.search(row.idempotency_key)
        recipient = Recipient(
            row.recipient_kind, row.recipient_id or 0, row.address or "", row.language, {}
        )
        delivery = Delivery(recipient, row.channel, row.address or "", row.idempotency_key)
        message = self.message(alert, int(found.group(1)) if found else 1, resident, delivery)
        result = await channel.send(message)
        if result.ok:
            log.info("delivery %s went out on attempt %s", row.idempotency_key, attempts)
        await self.store(row.idempotency_key, result, attempts, retry=True)
