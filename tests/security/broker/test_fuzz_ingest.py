"""Ten thousand malformed payloads on every device channel, through the default broker.

The server stays ready, every message that reaches it has its outcome committed (stored or
dead-lettered with a reason), every unusable message from an alarm sensor is covered by an
alert, and the dead letters stay under their per-device cap.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import devices
from devices.contract import MAX_PAYLOAD_BYTES
from devices.ingest import DEAD_LETTER_PAYLOAD_MAX, DEAD_LETTERS_PER_DEVICE
from tests.conftest import MqttProbe
from tests.security.broker.attacks import Login, Served, World, alert_kinds, record

PER_DEVICE = 2_500
CHANNELS = ("reading", "event", "status", "raw/z2m", "raw/gatt-2a35", "raw/acme-1")
OVERSIZED_EVERY = 500


def _document(rng: random.Random) -> object:
    """A JSON document of roughly the contract's shape, with something wrong in it."""
    choices: list[object] = [
        {"id": rng.randrange(10**6), "type": "weight", "values": {"weight": "heavy"}},
        {"id": f"f{rng.randrange(10**9)}", "type": "panik", "data": {}},
        {"id": f"f{rng.randrange(10**9)}", "type": "blood_pressure", "values": {"systolic": 2**70}},
        {"id": "", "type": "", "values": None},
        {"batch": [rng.randrange(100) for _ in range(rng.randrange(5))]},
        {"online": "yes", "battery": -rng.randrange(1, 10**4)},
        {"smoke": "ALARM", "battery": "low"},
        {"water_leak": "ON"},
        {"contact": 1, "occupancy": "maybe"},
        {f"k{rng.randrange(99)}": rng.random() for _ in range(rng.randrange(1, 6))},
        [1, 2, 3],
        "a string",
        None,
        rng.random() * 10**300,
    ]
    return rng.choice(choices)


def _truncated(rng: random.Random) -> bytes:
    """A document cut off somewhere."""
    text = json.dumps(_document(rng))
    return text[: rng.randrange(len(text))].encode()


def _nested(rng: random.Random) -> bytes:
    """Arrays nested thousands deep."""
    depth = rng.randrange(100, 3000)
    return b"[" * depth + b"]" * depth


# Shapes of malformed payloads, each a function of the seeded generator.
SHAPES: tuple[Callable[[random.Random], bytes], ...] = (
    lambda rng: rng.randbytes(rng.randrange(0, 300)),
    _truncated,
    _nested,
    lambda rng: rng.choice([b"NaN", b'{"weight": Infinity}', b'{"id": 1e999}', b"-"]),
    lambda _rng: b'{"id": "x", "type": "\xff\xfe"}',
    lambda rng: b"\x00" * rng.randrange(1, 40),
    lambda rng: b'{"a": "' + b"x" * rng.randrange(1000, 20_000) + b'"',
    lambda rng: json.dumps(_document(rng)).encode(),
    lambda rng: json.dumps(_document(rng)).encode(),
)


def malformed(rng: random.Random) -> bytes:
    """One malformed payload (seeded, so a failure can be replayed)."""
    return rng.choice(SHAPES)(rng)


def _metric(text: str, name: str) -> float:
    """The sum of every sample of one counter in Prometheus' text format."""
    return sum(float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def _sqlite_bytes(url: str) -> int:
    """The size of the SQLite database with its write-ahead log."""
    path = Path(url.split("///", 1)[1])
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _fuzz_device(served: Served, login: Login, seed: int) -> tuple[int, int]:
    """Publish PER_DEVICE malformed payloads as one device; (accepted by size, oversized)."""
    rng = random.Random(seed)
    probe = MqttProbe(
        served.host,
        served.port,
        client_id=login.device_id,
        username=login.device_id,
        password=login.secret,
    )
    probe.client.max_inflight_messages_set(200)
    probe.client.max_queued_messages_set(0)
    assert not probe.connect().is_failure
    probe.subscribe(devices.device_topic(login.device_id, "ack"))
    sizes = Counter[str]()
    pending = []
    for n in range(PER_DEVICE):
        channel = CHANNELS[n % len(CHANNELS)]
        if n % OVERSIZED_EVERY == OVERSIZED_EVERY - 1:
            payload = b"{" + b" " * (MAX_PAYLOAD_BYTES + rng.randrange(1, 500)) + b"}"
            sizes["oversized"] += 1
        else:
            payload = malformed(rng)
            sizes["accepted"] += 1
        pending.append(
            probe.client.publish(devices.device_topic(login.device_id, channel), payload, qos=1)
        )
    for info in pending:
        info.wait_for_publish(60)
    # One good reading and one good event last: once both are acked, both lanes have
    # committed everything this device sent before them.
    probe.publish(
        devices.device_topic(login.device_id, "reading"),
        json.dumps({"id": "end", "type": "weight", "values": {"weight": 70.0}}).encode(),
    )
    probe.publish(
        devices.device_topic(login.device_id, "event"),
        json.dumps({"id": "end-event", "type": "motion", "data": {}}).encode(),
    )
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    try:
        while not {"end", "end-event"} <= seen:
            message = probe.next_message(timeout=max(0.1, deadline - time.monotonic()))
            if message.topic.endswith("/ack"):
                seen.update(json.loads(message.payload)["ids"])
    finally:
        probe.close()
    return sizes["accepted"], sizes["oversized"]


@pytest.mark.parametrize("served", ["mosquitto"], indirect=True)
async def test_ten_thousand_malformed_payloads(
    served: Served, world: World, sessions: async_sessionmaker[AsyncSession], sqlite_url: str
) -> None:
    metrics_url = f"{served.vaki.url}/metrics"
    before = (await asyncio.to_thread(httpx.get, metrics_url, timeout=10)).text
    size_before = _sqlite_bytes(sqlite_url)
    logins = (world.panic, world.smoke, world.scale, world.tablet)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(asyncio.to_thread(_fuzz_device, served, login, seed) for seed, login in enumerate(logins))
    )
    seconds = time.perf_counter() - started
    accepted = sum(a for a, _ in results)
    oversized = sum(o for _, o in results)
    assert accepted + oversized >= 10_000

    ready = await asyncio.to_thread(served.ready)
    assert ready.status_code == 200, ready.text
    after = (await asyncio.to_thread(httpx.get, metrics_url, timeout=10)).text
    handled = _metric(after, "vaki_ingest_handled_messages_total") - _metric(
        before, "vaki_ingest_handled_messages_total"
    )
    made = _metric(after, "vaki_dead_letters_total") - _metric(before, "vaki_dead_letters_total")
    # Every message within the limit was handled and committed, plus the two last ones per
    # device; the oversized ones never reached the server.
    assert handled == accepted + 2 * len(logins)

    async with sessions() as session:
        kept = dict(
            (
                await session.exec(
                    select(devices.DeadLetter.device_id, func.count()).group_by(
                        col(devices.DeadLetter.device_id)
                    )
                )
            ).all()
        )
        dropped = {
            device.id: device.dead_letters_dropped
            for device in (await session.exec(select(devices.Device))).all()
        }
        biggest = (
            await session.exec(select(func.max(func.length(devices.DeadLetter.payload))))
        ).one()
        unreadable = dict(
            (
                await session.exec(
                    select(devices.Event.device_id, func.count())
                    .where(col(devices.Event.type) == devices.UNREADABLE_EVENT)
                    .group_by(col(devices.Event.device_id))
                )
            ).all()
        )
        raw_letters = (
            await session.exec(
                select(devices.DeadLetter.reason).where(
                    col(devices.DeadLetter.device_id).in_(
                        [world.panic.device_id, world.smoke.device_id]
                    ),
                    col(devices.DeadLetter.topic).contains("/raw/"),
                )
            )
        ).all()
    # Every dead letter made is kept or counted as dropped; none above the cap.
    assert sum(kept.values()) + sum(dropped.values()) == made
    assert all(count <= DEAD_LETTERS_PER_DEVICE for count in kept.values())
    assert biggest is not None
    assert biggest <= DEAD_LETTER_PAYLOAD_MAX
    # Alarm sensors: unusable raw payloads are all under an unreadable_event alarm.
    assert raw_letters
    assert [r for r in raw_letters if "unreadable_event" not in r][:5] == []
    assert unreadable.get(world.panic.device_id, 0) >= 1
    assert unreadable.get(world.smoke.device_id, 0) >= 1
    assert devices.UNREADABLE_EVENT in await alert_kinds(sessions, world.resident_id)
    growth = _sqlite_bytes(sqlite_url) - size_before
    # The kept dead letters bound the growth, plus one small row per unreadable event.
    assert growth <= sum(kept.values()) * 20_000 + sum(unreadable.values()) * 2_000 + 2**22

    for area, count in (
        ("fuzz: malformed payloads handled", accepted),
        ("fuzz: oversized payloads dropped by the broker", oversized),
    ):
        for _ in range(count):
            record(area, refused=True)
    print(
        f"fuzz: {accepted + oversized} payloads in {seconds:.1f} s; {accepted} handled, "
        f"{oversized} oversized dropped by the broker; {made:.0f} dead letters made, "
        f"{sum(kept.values())} kept, {sum(dropped.values())} dropped over the cap; "
        f"{sum(unreadable.values())} unreadable_event events; database grew by "
        f"{growth / 2**20:.1f} MiB"
    )
