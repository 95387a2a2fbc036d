"""The alarm path end to end, as it runs: ``vaki serve`` in a subprocess, a pendant on the
broker, a console on the live stream, an SMTP server receiving the escalation mails."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
from tests.conftest import Mailbox, MqttProbe, ServedVaki, vaki_env

TIER_TIMEOUT_S = 3


@dataclass
class World:
    """A team with an on-call home-care worker and a nurse, a resident with a pendant."""

    team_id: int
    resident_id: int
    pendant_id: str
    on_call_email: str
    nurse_email: str
    nurse_token: str
    outsider_token: str


async def build_world(sessions: async_sessionmaker[AsyncSession]) -> World:
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        team = care.CareTeam(name="Heimaþjónusta Siglufjarðar")
        other_team = care.CareTeam(name="Heimaþjónusta Ólafsfjarðar")
        session.add_all([team, other_team])
        await session.flush()
        assert team.id is not None
        assert other_team.id is not None
        anna = await care.add_staff_user(
            session,
            username="anna",
            full_name="Anna Jónsdóttir",
            password="x" * 12,
            role=care.StaffRole.HOME_CARE_WORKER,
            organisation=org,
            email="anna@vaki.example",
        )
        helga = await care.add_staff_user(
            session,
            username="helga",
            full_name="Helga Björnsdóttir",
            password="x" * 12,
            role=care.StaffRole.NURSE,
            organisation=org,
            email="helga@vaki.example",
        )
        outsider = await care.add_staff_user(
            session,
            username="olafur",
            full_name="Ólafur P.",
            password="x" * 12,
            role=care.StaffRole.NURSE,
            organisation=org,
            email="olafur@vaki.example",
        )
        assert anna.id is not None
        assert helga.id is not None
        assert outsider.id is not None
        session.add_all(
            [
                care.TeamMembership(team_id=team.id, staff_id=anna.id),
                care.TeamMembership(team_id=team.id, staff_id=helga.id),
                care.TeamMembership(team_id=other_team.id, staff_id=outsider.id),
            ]
        )
        # Anna is on call around the clock, every day.
        session.add_all(
            alerts.OnCallShift(
                team_id=team.id, staff_id=anna.id, weekday=day, starts="00:00", ends="00:00"
            )
            for day in range(1, 8)
        )
        resident = care.Resident(full_name="Guðrún Sigurðardóttir")
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        session.add(care.ResidentTeam(resident_id=resident.id, team_id=team.id))
        policy = alerts.EscalationPolicy(team_id=team.id, name="Default", last_tier_repeats=1)
        session.add(policy)
        await session.flush()
        assert policy.id is not None
        session.add_all(
            [
                alerts.EscalationTier(
                    policy_id=policy.id,
                    position=1,
                    timeout_s=TIER_TIMEOUT_S,
                    recipients=[{"kind": "on_call"}],
                    channels=["console", "email"],
                ),
                alerts.EscalationTier(
                    policy_id=policy.id,
                    position=2,
                    timeout_s=TIER_TIMEOUT_S,
                    recipients=[{"kind": "staff", "id": helga.id}],
                    channels=["console", "email"],
                ),
            ]
        )
        pendant = await devices.provision_device(
            session,
            kind=devices.DeviceKind.PANIC_BUTTON,
            resident_id=resident.id,
            device_id=f"pendant-{uuid.uuid4().hex[:8]}",
        )
        nurse_token = await care.create_api_token(session, "helga", "console")
        outsider_token = await care.create_api_token(session, "olafur", "console")
        await session.commit()
    return World(
        team.id,
        resident.id,
        pendant.device.id,
        "anna@vaki.example",
        "helga@vaki.example",
        nurse_token,
        outsider_token,
    )


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> World:
    return await build_world(sessions)


@pytest.fixture
def served(
    tmp_path: Path, sqlite_url: str, mosquitto: tuple[str, int], mailbox: tuple[Mailbox, int]
) -> Iterator[ServedVaki]:
    host, port = mosquitto
    env = vaki_env(
        tmp_path,
        database_url=sqlite_url,
        mqtt_url=f"mqtt://{host}:{port}",
        mqtt_session_expiry_s="60",
        smtp_host="127.0.0.1",
        smtp_port=str(mailbox[1]),
        smtp_starttls="false",
        escalation_sweep_s="0.25",
        public_url="https://vaki.example",
    )
    server = ServedVaki(tmp_path, env)
    yield server
    server.stop()


def mails_to(mailbox: Mailbox, address: str) -> list[Any]:
    found: list[Any] = []
    for envelope in mailbox.envelopes:
        if address in envelope.rcpt_tos:
            assert isinstance(envelope.content, bytes)
            found.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
    return found


async def wait_for(predicate: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def next_change(stream: Any, within_s: float = 15) -> dict[str, Any]:
    change: dict[str, Any] = json.loads(await asyncio.wait_for(stream.recv(), within_s))
    return change


def press_panic(host: str, port: int, pendant_id: str) -> None:
    pendant = MqttProbe(host, port, client_id=pendant_id)
    assert not pendant.connect().is_failure
    pendant.publish(
        devices.device_topic(pendant_id, "event"),
        json.dumps({"id": f"p-{uuid.uuid4().hex[:6]}", "type": "panic"}),
    )
    pendant.close()


@pytest.mark.mosquitto
@pytest.mark.slow
async def test_panic_reaches_the_console_escalates_and_stops_on_acknowledge(
    world: World, served: ServedVaki, mailbox: tuple[Mailbox, int], mosquitto: tuple[str, int]
) -> None:
    box, _ = mailbox
    served.start()
    ws_url = served.url.replace("http", "ws") + "/api/alerts/stream"
    async with (
        websockets.connect(f"{ws_url}?token={world.nurse_token}") as console,
        websockets.connect(f"{ws_url}?token={world.outsider_token}") as other_team,
    ):
        await asyncio.sleep(0.3)
        published = time.monotonic()
        press_panic(*mosquitto, world.pendant_id)
        raised = await next_change(console)
        seen_after = time.monotonic() - published
        assert (raised["change"], raised["kind"], raised["severity"]) == (
            "raised",
            "panic",
            "critical",
        )
        assert raised["resident_id"] == world.resident_id
        assert seen_after < 5, seen_after
        # Tier 1: the on-call worker gets a mail in her language, naming the resident.
        await wait_for(lambda: mails_to(box, world.on_call_email), 15, "the tier 1 mail")
        (first,) = mails_to(box, world.on_call_email)
        assert "Guðrún Sigurðardóttir" in str(first["Subject"])
        assert not mails_to(box, world.nurse_email)
        # Nobody acknowledges: after the tier's timeout, tier 2 (the nurse) is told.
        await wait_for(lambda: mails_to(box, world.nurse_email), TIER_TIMEOUT_S + 15, "tier 2")
        escalated = await next_change(console)
        assert escalated["change"] == "escalated"
        # The nurse acknowledges: escalation stops, the console hears it at once.
        async with httpx.AsyncClient(base_url=served.url) as client:
            queue = (
                await client.get(
                    "/api/alerts/", headers={"Authorization": f"Bearer {world.nurse_token}"}
                )
            ).json()
            (alert,) = [a for a in queue if a["kind"] == "panic"]
            answer = await client.post(
                f"/api/alerts/{alert['id']}/acknowledge",
                headers={"Authorization": f"Bearer {world.nurse_token}"},
            )
            assert answer.status_code == 201, answer.text
            # Another team's nurse cannot see it, let alone acknowledge it.
            foreign = await client.post(
                f"/api/alerts/{alert['id']}/acknowledge",
                headers={"Authorization": f"Bearer {world.outsider_token}"},
            )
            assert foreign.status_code == 404
            assert (await client.get("/api/alerts/")).status_code == 401
        # Tier 2 is the last: every tier tried, so the fallback step's change comes too.
        changes = [await next_change(console) for _ in range(3)]
        assert "acknowledged" in [c["change"] for c in changes]
        sent = len(box.envelopes)
        await asyncio.sleep(TIER_TIMEOUT_S + 1)
        assert len(box.envelopes) == sent, "escalation went on after the acknowledgement"
        # The other team's console saw none of it.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(other_team.recv(), 0.5)


@pytest.mark.mosquitto
@pytest.mark.slow
async def test_a_step_pending_when_the_server_is_killed_is_delivered_once_after_restart(
    world: World,
    served: ServedVaki,
    mailbox: tuple[Mailbox, int],
    mosquitto: tuple[str, int],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    box, _ = mailbox
    served.start()
    press_panic(*mosquitto, world.pendant_id)
    await wait_for(lambda: mails_to(box, world.on_call_email), 20, "the tier 1 mail")
    # Tier 2 is now pending in the database. Kill the server before it is due...
    served.kill()
    await asyncio.sleep(TIER_TIMEOUT_S + 2)
    assert not mails_to(box, world.nurse_email)
    # ...and start it again after it was due: the overdue step fires at once, once.
    restarted = time.monotonic()
    served.start()
    await wait_for(lambda: mails_to(box, world.nurse_email), 20, "the overdue tier 2 mail")
    assert time.monotonic() - restarted < 15
    await asyncio.sleep(2)
    # Killed between sending a mail and recording it, a delivery may go out again: under
    # the same idempotency key (the Message-ID), so it is one delivery downstream.
    assert len({m["Message-ID"] for m in mails_to(box, world.nurse_email)}) == 1
    assert len({m["Message-ID"] for m in mails_to(box, world.on_call_email)}) == 1
    async with sessions() as session:
        steps = (
            await session.exec(
                select(alerts.EscalationStep).order_by(col(alerts.EscalationStep.id))
            )
        ).all()
        # Tier 2 is the last: the fallback is told and the tier is due to ring again.
        assert [(s.kind, s.tier, s.attempt, s.status) for s in steps] == [
            ("notify", 1, 1, "done"),
            ("notify", 2, 1, "done"),
            ("fallback", 2, 1, "done"),
            ("notify", 2, 2, "pending"),
        ]
        notifications = (await session.exec(select(alerts.Notification))).all()
        keys = [n.idempotency_key for n in notifications if n.channel == "email"]
        assert len(keys) == len(set(keys)) == 2
        assert all(n.status == "sent" for n in notifications)
