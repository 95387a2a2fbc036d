"""A whole day of check-ins across a DST change, with an injected clock, a real broker, a
real database and a real SMTP server: every prompt goes out once at its time, nudges come on
time, a missed check-in escalates to the nurse, and the resident's late answer stops it."""

from __future__ import annotations

import json
import queue
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
import devices
import video
from server.checkin_path import CheckinPipeline
from tests.alerts.test_escalation_engine import (
    TierSpec,
    add_tiers,
    build_world,
    load_alert,
    mails,
    staff,
)
from tests.conftest import Mailbox, MqttProbe

HELSINKI = ZoneInfo("Europe/Helsinki")
# Midnight in Helsinki on 28 March 2027; at 03:00 the clocks jump to 04:00.
DAY_START = datetime(2027, 3, 27, 22, 0, tzinfo=UTC)
DAY_END = DAY_START + timedelta(hours=23)


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def local(moment: datetime) -> str:
    return moment.astimezone(HELSINKI).strftime("%H:%M")


def drain(probe: MqttProbe) -> list[dict[str, object]]:
    """Every command the tablet has received so far (the broker has confirmed them all)."""
    received: list[dict[str, object]] = []
    while True:
        try:
            message = probe.next_message(timeout=0.5)
        except queue.Empty:
            return received
        received.append(json.loads(message.payload))


@pytest.fixture
def sqlite_only(database_url: str) -> None:
    """The day runs on SQLite; PostgreSQL gets the same code through the other tests."""
    if not database_url.startswith("sqlite"):
        pytest.skip("one database is enough for the long day")


async def test_a_day_across_the_spring_dst_change(
    sqlite_only: None,
    sessions: async_sessionmaker[AsyncSession],
    mailbox: tuple[Mailbox, int],
    mosquitto: tuple[str, int],
) -> None:
    box, smtp_port = mailbox
    world = await build_world(sessions)
    await add_tiers(
        sessions,
        world,
        TierSpec(timeout_s=600, recipients=[staff(world, "anna")]),
        TierSpec(timeout_s=600, recipients=[staff(world, "helga")]),
    )
    async with sessions() as session:
        resident = await session.get(care.Resident, world.resident_id)
        assert resident is not None
        resident.time_zone = "Europe/Helsinki"
        resident.preferred_name = "Aino"
        session.add(resident)
        tablet = await devices.provision_device(
            session, kind=devices.DeviceKind.TABLET, resident_id=world.resident_id
        )
        for spec in (
            alerts.PlanSpec(
                kind="wellbeing",
                title="Päivän kuulumiset",
                times=["03:30", "09:00"],
                window_min=30,
                reminder_before_close_min=10,
            ),
            alerts.PlanSpec(
                kind="medication",
                title="Aamu- ja iltalääkkeet",
                times=["08:00", "20:00"],
                window_min=60,
                reminder_before_close_min=15,
            ),
        ):
            plan = await alerts.save_plan(session, world.resident_id, spec, now=DAY_START)
            plan.created_at = DAY_START
        await session.commit()
    device_id = tablet.device.id

    host, port = mosquitto
    probe = MqttProbe(host, port, client_id=f"tablet-{uuid.uuid4().hex[:8]}")
    probe.connect()
    probe.subscribe(devices.device_topic(device_id, "cmd"))
    link = devices.MqttLink(
        devices.MqttEndpoint(host=host, port=port),
        client_id=f"vaki-day-{uuid.uuid4().hex[:8]}",
        protocol="3.1.1",
    )
    await link.start()
    clock = Clock(DAY_START)
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    mail = alerts.EmailChannel("127.0.0.1", smtp_port, sender="Vaki <vaki@vaki.example>")
    escalation = alerts.EscalationEngine(sessions, lifecycle, {"email": mail}, clock=clock)
    pipeline = CheckinPipeline(
        service=alerts.CheckinService(sessions, clock=clock),
        lifecycle=lifecycle,
        link=lambda: link,
        call_timeout=timedelta(minutes=10),
    )
    # (local time when it arrived, command id, type, repeat)
    log: list[tuple[str, str, str, bool]] = []
    wakes: list[str] = []
    missed_alert_id: int | None = None
    try:
        await pipeline.plan()
        while (wake := await pipeline.service.next_wake()) is not None and wake <= DAY_END:
            clock.now = wake
            wakes.append(local(wake))
            await pipeline.run_due()
            await escalation.run_due()
            for command in drain(probe):
                log.append(
                    (
                        local(clock.now),
                        str(command["id"]),
                        str(command["type"]),
                        bool(command["repeat"]),
                    )
                )
                prompt_id = str(command["prompt_id"])
                slot = local(clock.now)
                # The resident: confirms the morning medicine after five minutes, asks
                # for a call at nine, and sleeps through the 03:30 check-in and 20:00.
                if slot == "08:00":
                    clock.now += timedelta(minutes=5)
                    await pipeline.answer(
                        prompt_id, "taken", None, via="mqtt", resident_id=world.resident_id
                    )
                elif slot == "09:00":
                    clock.now += timedelta(minutes=2)
                    await pipeline.answer(
                        prompt_id, "call_me", None, via="tablet", resident_id=world.resident_id
                    )
            if local(clock.now) == "05:00" and missed_alert_id is None:
                # The 03:30 check-in (04:30 after the jump) closed unanswered: an alert that
                # escalated to the nurse by e-mail.
                async with sessions() as session:
                    alert = (
                        await session.exec(
                            select(alerts.Alert).where(alerts.Alert.kind == "checkin_missed")
                        )
                    ).one()
                assert alert.severity == "high"
                assert alert.escalation == "active"
                assert [recipient for recipient, _ in mails(box)] == ["anna@vaki.example"]
                missed_alert_id = alert.id
                # Ten minutes later she answers after all: that stops the escalation.
                clock.now += timedelta(minutes=10)
                first_prompt = log[0][1]
                late = await pipeline.answer(
                    first_prompt, "fine", None, via="mqtt", resident_id=world.resident_id
                )
                assert late.accepted
                assert late.late
    finally:
        await link.stop()
        probe.close()

    assert log == [
        ("04:30", log[0][1], "checkin_prompt", False),  # 03:30 did not exist today
        ("04:50", log[0][1] + ".2", "checkin_prompt", True),
        ("08:00", log[2][1], "reminder", False),
        ("09:00", log[3][1], "checkin_prompt", False),
        ("20:00", log[4][1], "reminder", False),
        ("20:45", log[4][1] + ".2", "reminder", True),
    ]
    assert len({entry[1] for entry in log}) == len(log)
    # The service woke exactly when something was due and at no other time.
    # (Answered prompts need no nudge and no closing: 08:45, 09:20 and 09:30 are not here.)
    assert wakes == ["04:30", "04:50", "05:00", "08:00", "09:00", "20:00", "20:45", "21:00"]

    assert missed_alert_id is not None
    missed = await load_alert(sessions, missed_alert_id)
    assert missed.status == "resolved"
    assert missed.escalation == "stopped"
    assert missed.outcome is not None
    # Helga (tier 2) was never told of it, although tier 1's ten minutes have long passed.
    clock.now = DAY_END + timedelta(hours=1)
    await escalation.run_due()
    about_missed = [r for r, key in mails(box) if key.startswith(f"a{missed_alert_id}:")]
    assert about_missed == ["anna@vaki.example"]

    async with sessions() as session:
        rows = (
            await session.exec(
                select(alerts.CheckinPrompt)
                .where(col(alerts.CheckinPrompt.slot_at) <= DAY_END)
                .order_by(col(alerts.CheckinPrompt.slot_at))
            )
        ).all()
        statuses = [(local(p.slot_at), p.status, p.answer) for p in rows]
        calls = (await session.exec(select(video.CallRequest))).all()
        open_alerts = (
            await session.exec(select(alerts.Alert.kind).where(alerts.Alert.status != "resolved"))
        ).all()
    assert statuses == [
        ("04:30", "answered", "fine"),
        ("08:00", "answered", "taken"),
        ("09:00", "answered", "call_me"),
        ("20:00", "missed", None),
    ]
    assert [(c.resident_id, c.source, c.status) for c in calls] == [
        (world.resident_id, "checkin", "waiting")
    ]
    # Nobody took her call request in this test: that became an alert too.
    assert sorted(open_alerts) == ["call_request_not_taken", "medication_missed"]
