"""One batch's rows written in the open transaction, idempotent on (device id, message id)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from care import UTCDateTime
from devices.ingest.batches import CommittedEvent, CommittedReading
from devices.ingest.metrics import DEAD_LETTERS
from devices.ingest.rows import _Plan
from devices.models import DeadLetter, Device, Event, Reading


async def store_plan(
    connection: AsyncConnection, plan: _Plan
) -> tuple[list[CommittedReading], list[CommittedEvent]]:
    """Write the plan's rows in the open transaction; return what was new."""
    readings = [
        CommittedReading(*row)
        for row in await _insert_new(connection, Reading, Reading.values, plan.readings)
    ]
    events = await store_events(connection, plan.events)
    if plan.dead_letters:
        await connection.execute(insert(DeadLetter), plan.dead_letters)
        DEAD_LETTERS.inc(len(plan.dead_letters))
    if plan.seen:
        await connection.execute(
            update(Device)
            .where(col(Device.id) == bindparam("device"))
            # The server's receive time, never the device's clock: a device whose
            # clock runs ahead cannot look alive in the future.
            .values(online=True, last_seen_at=bindparam("seen", type_=UTCDateTime)),
            [{"device": d, "seen": t} for d, t in plan.seen.items()],
        )
    for device_id, status in plan.statuses.items():
        values: dict[str, Any] = {}
        if status.online is not None:
            values["online"] = status.online
        if status.battery is not None:
            values["battery_pct"] = status.battery
        if status.firmware is not None:
            values["firmware"] = status.firmware
        if values:
            await connection.execute(
                update(Device).where(col(Device.id) == device_id).values(**values)
            )
    return readings, events


async def store_events(
    connection: AsyncConnection, rows: list[dict[str, Any]]
) -> list[CommittedEvent]:
    """Write event rows in the open transaction; return the ones not stored before."""
    return [CommittedEvent(*row) for row in await _insert_new(connection, Event, Event.data, rows)]


async def _insert_new(
    connection: AsyncConnection,
    table: type[Reading] | type[Event],
    payload: Any,
    rows: list[dict[str, Any]],
) -> list[Any]:
    """Insert the rows whose (device id, message id) is not stored yet; return those, as
    (id, device, resident, type, payload, device time, receive time)."""
    if not rows:
        return []
    dialect = connection.dialect.name
    statement = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(table)
    result = await connection.execute(
        statement.on_conflict_do_nothing(index_elements=["device_id", "message_id"]).returning(
            *(col(c) for c in (table.id, table.device_id, table.resident_id, table.type)),
            col(payload),
            col(table.device_ts),
            col(table.received_at),
        ),
        rows,
    )
    return list(result)
