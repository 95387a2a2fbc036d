"""A full ingestion queue holds paho's thread (and so the broker) instead of growing."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

import devices
from devices.ingest.writer import ALARM_LANE, Ingestor


async def test_a_full_lane_blocks_admission_until_its_batch_is_committed(
    engine: AsyncEngine,
) -> None:
    acked: list[int] = []
    ingestor = Ingestor(
        engine,
        ack=lambda message: acked.append(message.mid),
        publish=lambda *_: None,
        capacity={"main": 3, ALARM_LANE: 1},
    )
    loop = asyncio.get_running_loop()
    admitted = [threading.Event() for _ in range(4)]
    messages = [
        devices.InboundMessage(
            topic="vaki/v1/d/nobody/reading", payload=b"{}", qos=1, retain=False, mid=n
        )
        for n in range(4)
    ]

    def paho_thread() -> None:
        # What MqttLink does on paho's thread: wait for room, then hand over to the loop.
        for message, done in zip(messages, admitted, strict=True):
            ingestor.admit(message)
            loop.call_soon_threadsafe(ingestor.submit, message)
            done.set()

    reader = threading.Thread(target=paho_thread, daemon=True)
    reader.start()
    assert await asyncio.to_thread(admitted[2].wait, 10)
    # Three messages fill the lane; the fourth waits on paho's thread while nothing commits.
    assert not await asyncio.to_thread(admitted[3].wait, 0.5)
    assert ingestor.backlog == 3
    assert acked == []

    ingestor.start()
    try:
        assert await asyncio.to_thread(admitted[3].wait, 10)
        await ingestor.drain(within_s=10)
    finally:
        await ingestor.stop()
    reader.join(timeout=5)
    assert sorted(acked) == [0, 1, 2, 3]
    async with engine.connect() as connection:
        dead = await connection.scalar(select(func.count()).select_from(devices.DeadLetter))
    assert dead == 4  # an unknown sender: kept as dead letters, committed, then acked
