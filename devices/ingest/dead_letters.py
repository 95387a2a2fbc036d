"""The cap on dead letters: each device keeps its newest, the older ones are counted.

One device's garbage (a fuzzing attacker, broken firmware in a loop) cannot grow the
database past the cap; the device row and a metric say how many were deleted.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from devices.ingest.metrics import DEAD_LETTERS_DROPPED
from devices.models import DeadLetter, Device

# The newest dead letters kept per device (and for topics naming none).
DEAD_LETTERS_PER_DEVICE = 500


async def cap_dead_letters(
    connection: AsyncConnection, device_ids: set[str | None], keep: int
) -> None:
    """Keep each device's newest ``keep`` dead letters; delete and count the older ones."""
    for device_id in device_ids:
        same = (
            col(DeadLetter.device_id).is_(None)
            if device_id is None
            else col(DeadLetter.device_id) == device_id
        )
        oldest_kept = (
            select(col(DeadLetter.id))
            .where(same)
            .order_by(col(DeadLetter.id).desc())
            .offset(keep - 1)
            .limit(1)
            .scalar_subquery()
        )
        result = await connection.execute(
            delete(DeadLetter).where(same, col(DeadLetter.id) < oldest_kept)
        )
        dropped = result.rowcount
        if not dropped:
            continue
        DEAD_LETTERS_DROPPED.inc(dropped)
        if device_id is not None:
            await connection.execute(
                update(Device)
                .where(col(Device.id) == device_id)
                .values(dead_letters_dropped=col(Device.dead_letters_dropped) + dropped)
            )
