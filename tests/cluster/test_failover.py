"""Two ``vaki serve`` instances on one PostgreSQL and a private Mosquitto, devices that
follow docs/mqtt.md (an outbox, resend 30 s after a send), and a real SMTP server.

Steady, then one instance is killed with SIGKILL: the alarms pressed after that reach the
survivor at once (every instance hears every alarm event; readings are shared), each is
stored once, each alert is raised once and its first notification goes out within
seconds; the readings the dead instance's share held come with the devices' resends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from homesim import VirtualDevice
from tests.alerts.test_alarm_path import build_world, mails_to
from tests.conftest import Mailbox, PrivateMosquitto, ServedVaki, vaki_env
from tests.http_receiver import HttpReceiver, serving

# The device contract's first resend (docs/mqtt.md): the devices here keep it.
RESEND_FIRST_S = 30.0
# How soon an alarm must be stored, and its first notification sent, after its publish.
ALARM_WITHIN_S = 5.0


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


@dataclass
class Home:
    """A resident with a panic pendant and a blood-pressure cuff, online."""

    resident_id: int
    pendant: VirtualDevice
    cuff: VirtualDevice


@dataclass
class Cluster:
    """Two instances sharing one database and one broker."""

    instances: list[ServedVaki]
    broker: PrivateMosquitto


@pytest.fixture
async def sms_gateway() -> AsyncIterator[HttpReceiver]:
    """A stand-in HTTP SMS gateway the test can make answer 500 or hang."""
    async with serving(HttpReceiver()) as receiver:
        yield receiver


@pytest.fixture
def cluster(
    tmp_path: Path,
    postgres_url: str,
    private_mosquitto: PrivateMosquitto,
    mailbox: tuple[Mailbox, int],
    sms_gateway: HttpReceiver,
) -> Iterator[Cluster]:
    private_mosquitto.extra_config = "allow_anonymous true\n"
    private_mosquitto.start()
    instances = []
    for name in ("a", "b"):
        directory = tmp_path / name
        directory.mkdir()
        env = vaki_env(
            directory,
            database_url=postgres_url,
            mqtt_url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
            mqtt_protocol="5",
            mqtt_shared_group="vaki",
            mqtt_client_id=f"vaki-{name}-{uuid.uuid4().hex[:6]}",
            smtp_host="127.0.0.1",
            smtp_port=str(mailbox[1]),
            smtp_starttls="false",
            sms_gateway_url=f"http://127.0.0.1:{sms_gateway.port}/sms",
            escalation_sweep_s="0.5",
            escalation_lease_s="3",
        )
        instances.append(ServedVaki(directory, env))
    yield Cluster(instances, private_mosquitto)
    for instance in instances:
        instance.stop()


async def add_home(
    sessions: async_sessionmaker[AsyncSession], team_id: int, port: int, tmp_path: Path
) -> Home:
    """A second resident of the team, with a pendant and a cuff on the broker."""
    async with sessions() as session:
        resident = care.Resident(full_name="Jóhanna Ólafsdóttir")
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        session.add(care.ResidentTeam(resident_id=resident.id, team_id=team_id))
        pendant = await devices.provision_device(
            session, kind=devices.DeviceKind.PANIC_BUTTON, resident_id=resident.id
        )
        cuff = await devices.provision_device(
            session, kind=devices.DeviceKind.BLOOD_PRESSURE_MONITOR, resident_id=resident.id
        )
        await session.commit()
    made = []
    for provisioned in (pendant, cuff):
        made.append(
            VirtualDevice(
                provisioned.device.id,
                provisioned.secret,
                "127.0.0.1",
                port,
                outbox_path=tmp_path / f"{provisioned.device.id}.db",
                resend_first_s=RESEND_FIRST_S,
                reconnect_min_s=0.2,
                reconnect_max_s=1.0,
            )
        )
    for device in made:
        await device.start()
        await device.wait_connected(10)
    return Home(resident.id, made[0], made[1])


def pressure(systolic: int) -> dict[str, float | None]:
    """A blood-pressure reading's values."""
    return {"systolic": systolic, "diastolic": 80, "pulse": 70}


async def first_mail_after(box: Mailbox, address: str, since: float, within_s: float) -> float:
    """Seconds from ``since`` until ``address`` has one more mail than now."""
    before = len(mails_to(box, address))
    async with asyncio.timeout(within_s):
        while len(mails_to(box, address)) <= before:
            await asyncio.sleep(0.02)
    return time.monotonic() - since


async def alerts_of(
    sessions: async_sessionmaker[AsyncSession], resident_id: int
) -> list[alerts.Alert]:
    async with sessions() as session:
        return list(
            (
                await session.exec(
                    select(alerts.Alert).where(alerts.Alert.resident_id == resident_id)
                )
            ).all()
        )


@pytest.mark.postgres
@pytest.mark.slow
async def test_alarms_reach_the_survivor_within_seconds_when_an_instance_is_killed(
    cluster: Cluster,
    sessions: async_sessionmaker[AsyncSession],
    mailbox: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    box, _ = mailbox
    world = await build_world(sessions)
    # One after the other: two cold starts at once on a busy 2-core machine take minutes.
    for instance in cluster.instances:
        await asyncio.to_thread(instance.start)
    first, survivor = cluster.instances
    port = cluster.broker.port
    steady = await add_home(sessions, world.team_id, port, tmp_path)
    after_kill = await add_home(sessions, world.team_id, port, tmp_path)
    figures: dict[str, object] = {}
    try:
        # Steady: a panic is stored (acked) and its first notification goes out at once.
        pressed = time.monotonic()
        panic_id = await steady.pendant.send_event("panic")
        await steady.pendant.wait_until_acked([panic_id], ALARM_WITHIN_S)
        figures["steady_ack_s"] = round(time.monotonic() - pressed, 2)
        figures["steady_first_notification_s"] = round(
            await first_mail_after(box, world.on_call_email, pressed, ALARM_WITHIN_S), 2
        )
        readings_before = [
            await steady.cuff.send_reading("blood_pressure", pressure(120 + n)) for n in range(20)
        ]

        # One instance dies without a word; at once, a panic and readings follow.
        await asyncio.to_thread(first.kill)
        pressed = time.monotonic()
        alarm_id = await after_kill.pendant.send_event("panic")
        readings_after = [
            await after_kill.cuff.send_reading("blood_pressure", pressure(130 + n))
            for n in range(20)
        ]
        await after_kill.pendant.wait_until_acked([alarm_id], ALARM_WITHIN_S)
        figures["killed_ack_s"] = round(time.monotonic() - pressed, 2)
        figures["killed_first_notification_s"] = round(
            await first_mail_after(box, world.on_call_email, pressed, ALARM_WITHIN_S), 2
        )
        # Readings the dead member's share held come with the devices' resends: none lost.
        started = time.monotonic()
        await steady.cuff.wait_until_acked(readings_before, 2 * RESEND_FIRST_S + 15)
        await after_kill.cuff.wait_until_acked(readings_after, 2 * RESEND_FIRST_S + 15)
        figures["readings_all_acked_s"] = round(time.monotonic() - started, 1)
    finally:
        for home in (steady, after_kill):
            await home.pendant.stop()
            await home.cuff.stop()

    print("\ncluster kill -9:", figures)
    async with sessions() as session:
        events = (
            await session.exec(
                select(devices.Event.device_id, devices.Event.message_id).where(
                    col(devices.Event.type) == "panic"
                )
            )
        ).all()
        readings = (
            await session.exec(
                select(devices.Reading.message_id).where(
                    col(devices.Reading.device_id).in_(
                        [steady.cuff.device_id, after_kill.cuff.device_id]
                    )
                )
            )
        ).all()
    # Every panic and every reading stored exactly once.
    assert Counter(message for _, message in events) == {panic_id: 1, alarm_id: 1}
    assert Counter(readings) == Counter(readings_before + readings_after)
    # One alert per resident, one first-tier mail for each (no duplicate under a key).
    for home in (steady, after_kill):
        (alert,) = await alerts_of(sessions, home.resident_id)
        assert alert.kind == "panic"
    keys = Counter(str(m["Message-ID"]) for m in mails_to(box, world.on_call_email))
    assert set(keys.values()) == {1}
    assert survivor.process is not None
    assert survivor.process.poll() is None


async def texts_and_mails_to_the_on_call(
    sessions: async_sessionmaker[AsyncSession], team_id: int
) -> None:
    """Tier 1 tells the on-call worker by SMS as well as on the console and by e-mail."""
    async with sessions() as session:
        await session.exec(
            update(alerts.EscalationTier)
            .where(col(alerts.EscalationTier.position) == 1)
            .values(channels=["console", "sms", "email"])
        )
        await session.exec(
            update(care.StaffUser)
            .where(col(care.StaffUser.username) == "anna")
            .values(phone="+3548621234")
        )
        await session.commit()


@pytest.mark.postgres
@pytest.mark.slow
async def test_a_hanging_or_failing_sms_gateway_delays_no_alert(
    cluster: Cluster,
    sessions: async_sessionmaker[AsyncSession],
    mailbox: tuple[Mailbox, int],
    sms_gateway: HttpReceiver,
    tmp_path: Path,
) -> None:
    box, _ = mailbox
    world = await build_world(sessions)
    await texts_and_mails_to_the_on_call(sessions, world.team_id)
    for instance in cluster.instances:
        await asyncio.to_thread(instance.start)
    homes = [
        await add_home(sessions, world.team_id, cluster.broker.port, tmp_path) for _ in range(4)
    ]
    figures: dict[str, list[float]] = {
        "hanging_first_notification_s": [],
        "500_first_notification_s": [],
    }
    try:
        # The gateway takes every request and never answers.
        sms_gateway.hold = asyncio.Event()
        for home in homes[:3]:
            pressed = time.monotonic()
            await home.pendant.send_event("panic")
            figures["hanging_first_notification_s"].append(
                round(await first_mail_after(box, world.on_call_email, pressed, ALARM_WITHIN_S), 2)
            )
        # Each alert's SMS hung at the same time as the others: none waited for another.
        assert sms_gateway.most_in_flight >= 2
        # Now it answers 500 at once.
        sms_gateway.status = 500
        sms_gateway.hold.set()
        pressed = time.monotonic()
        await homes[3].pendant.send_event("panic")
        figures["500_first_notification_s"].append(
            round(await first_mail_after(box, world.on_call_email, pressed, ALARM_WITHIN_S), 2)
        )
    finally:
        for home in homes:
            await home.pendant.stop()
            await home.cuff.stop()
    print("\ncluster SMS gateway hanging / 500:", figures)
    keys = Counter(str(m["Message-ID"]) for m in mails_to(box, world.on_call_email))
    assert len(keys) == 4
    assert set(keys.values()) == {1}
    # Every text the gateway was asked for carried its one key: a retry is recognisable.
    references = Counter(json.loads(r.body)["reference"] for r in sms_gateway.requests)
    assert all(ref.endswith(":sms:0") for ref in references)
    async with sessions() as session:
        texts = (
            await session.exec(
                select(alerts.Notification).where(alerts.Notification.channel == "sms")
            )
        ).all()
    assert len(texts) == 4
    assert {t.status for t in texts} == {"failed"}
    assert all(t.retry_at is not None for t in texts)


async def ready_again(instance: ServedVaki, within_s: float) -> None:
    """Wait until the instance's /readyz answers 200."""
    async with (
        httpx.AsyncClient(base_url=instance.url, timeout=2) as client,
        asyncio.timeout(within_s),
    ):
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.slow
async def test_the_broker_killed_and_back_loses_nothing_and_is_ready_within_seconds(
    cluster: Cluster,
    sessions: async_sessionmaker[AsyncSession],
    mailbox: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    box, _ = mailbox
    world = await build_world(sessions)
    for instance in cluster.instances:
        await asyncio.to_thread(instance.start)
    home = await add_home(sessions, world.team_id, cluster.broker.port, tmp_path)
    figures: dict[str, float] = {}
    try:
        # The broker dies without a word; the resident presses panic and the cuff measures
        # while it is away: both wait in the devices' outboxes.
        assert cluster.broker.process is not None
        cluster.broker.process.send_signal(signal.SIGKILL)
        cluster.broker.process.wait(timeout=10)
        panic_id = await home.pendant.send_event("panic")
        readings = [
            await home.cuff.send_reading("blood_pressure", pressure(125 + n)) for n in range(10)
        ]
        await asyncio.to_thread(cluster.broker.start)
        back = time.monotonic()
        await asyncio.gather(*(ready_again(i, 30) for i in cluster.instances))
        figures["ready_after_broker_back_s"] = round(time.monotonic() - back, 2)
        await home.pendant.wait_until_acked([panic_id], 30)
        figures["panic_acked_after_broker_back_s"] = round(time.monotonic() - back, 2)
        async with asyncio.timeout(30):
            while not mails_to(box, world.on_call_email):
                await asyncio.sleep(0.02)
        figures["first_notification_after_broker_back_s"] = round(time.monotonic() - back, 2)
        await home.cuff.wait_until_acked(readings, 2 * RESEND_FIRST_S + 15)
        figures["readings_acked_after_broker_back_s"] = round(time.monotonic() - back, 2)
    finally:
        await home.pendant.stop()
        await home.cuff.stop()
    print("\ncluster broker SIGKILL and back:", figures)
    async with sessions() as session:
        stored = (
            await session.exec(
                select(devices.Reading.message_id).where(
                    devices.Reading.device_id == home.cuff.device_id
                )
            )
        ).all()
    assert Counter(stored) == Counter(readings)
    (alert,) = await alerts_of(sessions, home.resident_id)
    assert alert.kind == "panic"
    assert len(mails_to(box, world.on_call_email)) == 1
