"""The escalation engine on a real database with a real SMTP server and an injected clock:
tiers in order, acknowledge and retrigger, unreachable tiers, leases and two instances."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import alerts
import care
from server.db import create_engine, session_factory, upgrade_database
from tests.conftest import Mailbox
from tests.http_receiver import HttpReceiver, serving

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> None:
        """Let time pass."""
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class TierSpec:
    """One tier to create: its timeout, whom it names, and through which channels."""

    timeout_s: int
    recipients: list[dict[str, Any]]
    channels: tuple[str, ...] = ("email",)


@dataclass(frozen=True)
class World:
    """A care team with staff, one resident, and an escalation policy."""

    team_id: int
    resident_id: int
    policy_id: int
    # username → staff id; "anna" is on call around the clock when the world has a rota.
    staff: dict[str, int]


STAFF = (
    ("anna", "Anna Jónsdóttir", "anna@vaki.example"),
    ("helga", "Helga Björnsdóttir", "helga@vaki.example"),
    ("jon", "Jón Guðmundsson", "jon@vaki.example"),
    ("siggi", "Sigurður Pálsson", None),  # no e-mail address: e-mail cannot reach him
)


async def build_world(
    sessions: async_sessionmaker[AsyncSession],
    *,
    last_tier_repeats: int = 1,
    retrigger_after_min: int = 30,
    rota: bool = True,
) -> World:
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        team = care.CareTeam(name="Heimaþjónusta Siglufjarðar")
        session.add(team)
        await session.flush()
        assert team.id is not None
        staff: dict[str, int] = {}
        for username, full_name, address in STAFF:
            member = await care.add_staff_user(
                session,
                username=username,
                full_name=full_name,
                password="x" * 12,
                role=care.StaffRole.NURSE,
                organisation=org,
                language="en",
                email=address,
            )
            assert member.id is not None
            staff[username] = member.id
            session.add(care.TeamMembership(team_id=team.id, staff_id=member.id))
        if rota:
            session.add_all(
                alerts.OnCallShift(
                    team_id=team.id,
                    staff_id=staff["anna"],
                    weekday=day,
                    starts="00:00",
                    ends="00:00",
                )
                for day in range(1, 8)
            )
        resident = care.Resident(full_name="Guðrún Sigurðardóttir")
        session.add(resident)
        await session.flush()
        assert resident.id is not None
        session.add(care.ResidentTeam(resident_id=resident.id, team_id=team.id))
        policy = alerts.EscalationPolicy(
            team_id=team.id,
            name="Default",
            last_tier_repeats=last_tier_repeats,
            retrigger_after_min=retrigger_after_min,
        )
        session.add(policy)
        await session.flush()
        assert policy.id is not None
        await session.commit()
    return World(team.id, resident.id, policy.id, staff)


async def add_tiers(
    sessions: async_sessionmaker[AsyncSession], world: World, *tiers: TierSpec
) -> None:
    async with sessions() as session:
        session.add_all(
            alerts.EscalationTier(
                policy_id=world.policy_id,
                position=position,
                timeout_s=tier.timeout_s,
                recipients=tier.recipients,
                channels=list(tier.channels),
            )
            for position, tier in enumerate(tiers, start=1)
        )
        await session.commit()


def staff(world: World, username: str) -> dict[str, Any]:
    """A tier recipient naming one staff member."""
    return {"kind": "staff", "id": world.staff[username]}


def key(
    alert_id: int, tier: int, attempt: int, staff_id: int, channel: str = "email", rnd: int = 1
) -> str:
    """The idempotency key of one step's delivery to one staff member in round ``rnd``."""
    return f"a{alert_id}:notify:r{rnd}:t{tier}:n{attempt}:staff{staff_id}:{channel}:0"


def build_engine(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, smtp_port: int, instance: str
) -> tuple[alerts.AlertLifecycle, alerts.EscalationEngine]:
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    mail = alerts.EmailChannel("127.0.0.1", smtp_port, sender="Vaki <vaki@vaki.example>")
    engine = alerts.EscalationEngine(
        sessions, lifecycle, {"email": mail}, clock=clock, instance=instance
    )
    return lifecycle, engine


def panic(world: World, n: int = 0) -> alerts.AlertCandidate:
    return alerts.AlertCandidate(
        kind="panic",
        severity="critical",
        title="Panic button pressed",
        dedupe_key=f"resident:{world.resident_id}:panic:{n}",
        resident_id=world.resident_id,
    )


def mails(box: Mailbox) -> list[tuple[str, str]]:
    """(recipient, idempotency key from the Message-ID) of every mail received, in order."""
    found = []
    for envelope in box.envelopes:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message_id = str(parsed["Message-ID"]).strip("<>").rsplit("@", 1)[0]
        (recipient,) = envelope.rcpt_tos
        found.append((recipient, unquote(message_id)))
    return found


async def notifications(
    sessions: async_sessionmaker[AsyncSession], alert_id: int | None = None
) -> list[alerts.Notification]:
    async with sessions() as session:
        query = select(alerts.Notification).order_by(col(alerts.Notification.id))
        if alert_id is not None:
            query = query.where(alerts.Notification.alert_id == alert_id)
        return list((await session.exec(query)).all())


async def steps(
    sessions: async_sessionmaker[AsyncSession], alert_id: int
) -> list[alerts.EscalationStep]:
    async with sessions() as session:
        return list(
            (
                await session.exec(
                    select(alerts.EscalationStep)
                    .where(alerts.EscalationStep.alert_id == alert_id)
                    .order_by(col(alerts.EscalationStep.id))
                )
            ).all()
        )


async def timeline(
    sessions: async_sessionmaker[AsyncSession], alert_id: int
) -> list[alerts.AlertTimelineEntry]:
    async with sessions() as session:
        return list(
            (
                await session.exec(
                    select(alerts.AlertTimelineEntry)
                    .where(alerts.AlertTimelineEntry.alert_id == alert_id)
                    .order_by(col(alerts.AlertTimelineEntry.id))
                )
            ).all()
        )


async def load_alert(sessions: async_sessionmaker[AsyncSession], alert_id: int) -> alerts.Alert:
    async with sessions() as session:
        alert = await session.get(alerts.Alert, alert_id)
        assert alert is not None
        return alert


async def test_tiers_fire_in_order_then_the_last_repeats_until_exhausted(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, last_tier_repeats=2)
    await add_tiers(
        sessions,
        world,
        TierSpec(60, [{"kind": "on_call"}], ("console", "email")),
        TierSpec(120, [staff(world, "helga"), staff(world, "jon")]),
        TierSpec(300, [staff(world, "jon")]),
    )
    anna, helga, jon = (world.staff[name] for name in ("anna", "helga", "jon"))
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-a")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id

    # Tier 1 at once: the on-call worker, on the console and by e-mail.
    assert await engine.next_due() == clock.now
    assert await engine.run_due() == 1
    assert mails(box) == [("anna@vaki.example", key(alert_id, 1, 1, anna))]
    assert await engine.run_due() == 0  # nothing more is due until time passes
    # The engine knows when to wake next: when tier 1's minute is up.
    assert await engine.next_due() == clock.now + timedelta(seconds=60)
    clock.move(seconds=59)
    assert await engine.run_due() == 0
    # Tier 2 when tier 1's minute is up: both people it names.
    clock.move(seconds=1)
    assert await engine.run_due() == 1
    assert sorted(mails(box)[1:]) == [
        ("helga@vaki.example", key(alert_id, 2, 1, helga)),
        ("jon@vaki.example", key(alert_id, 2, 1, jon)),
    ]
    clock.move(seconds=119)
    assert await engine.run_due() == 0
    clock.move(seconds=1)
    assert await engine.run_due() == 1
    # The last tier fires last_tier_repeats times, then every tier has been tried: the
    # fallback is told as well (nobody here is a coordinator and none is configured, which
    # the timeline says), and the last tier never falls silent: it rings again and again.
    clock.move(seconds=299)
    assert await engine.run_due() == 0
    clock.move(seconds=1)
    assert await engine.run_due() == 2
    clock.move(seconds=299)
    assert await engine.run_due() == 0
    clock.move(seconds=1)
    assert await engine.run_due() == 2

    assert mails(box)[3:] == [
        ("jon@vaki.example", key(alert_id, 3, 1, jon)),
        ("jon@vaki.example", key(alert_id, 3, 2, jon)),
        ("jon@vaki.example", key(alert_id, 3, 3, jon)),
    ]
    assert [(s.kind, s.tier, s.attempt, s.status) for s in await steps(sessions, alert_id)] == [
        ("notify", 1, 1, "done"),
        ("notify", 2, 1, "done"),
        ("notify", 3, 1, "done"),
        ("notify", 3, 2, "done"),
        ("fallback", 3, 2, "done"),
        ("notify", 3, 3, "done"),
        ("fallback", 3, 3, "done"),
        ("notify", 3, 4, "pending"),
    ]
    rows = await notifications(sessions, alert_id)
    assert sorted((n.idempotency_key, n.channel, n.recipient_id) for n in rows) == sorted(
        [
            (key(alert_id, 1, 1, anna, "console"), "console", anna),
            (key(alert_id, 1, 1, anna), "email", anna),
            (key(alert_id, 2, 1, helga), "email", helga),
            (key(alert_id, 2, 1, jon), "email", jon),
            (key(alert_id, 3, 1, jon), "email", jon),
            (key(alert_id, 3, 2, jon), "email", jon),
            (key(alert_id, 3, 3, jon), "email", jon),
        ]
    )
    assert all(n.status == "sent" and n.attempts == 1 for n in rows)
    # Every e-mail row went out exactly once, under its own key.
    assert Counter(k for _, k in mails(box)) == Counter(
        n.idempotency_key for n in rows if n.channel == "email"
    )
    sent_at = {n.idempotency_key: n.sent_at for n in rows}
    assert sent_at[key(alert_id, 2, 1, helga)] == T0 + timedelta(seconds=60)
    assert sent_at[key(alert_id, 3, 2, jon)] == T0 + timedelta(seconds=480)
    alert = await load_alert(sessions, alert_id)
    assert (alert.status, alert.escalation) == ("open", "exhausted")
    entries = await timeline(sessions, alert_id)
    assert [e.kind for e in entries].count("escalation_exhausted") == 1
    assert [e.kind for e in entries].count("fallback_unreachable") == 2
    assert [(e.data["tier"], e.data["attempt"]) for e in entries if e.kind == "notified"] == [
        (1, 1),
        (2, 1),
        (3, 1),
        (3, 2),
        (3, 3),
    ]
    assert "nobody_reached" not in [e.kind for e in entries]


async def test_acknowledge_stops_it_retrigger_starts_again_resolve_ends_it(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, retrigger_after_min=30)
    await add_tiers(
        sessions,
        world,
        TierSpec(60, [staff(world, "anna")]),
        TierSpec(120, [staff(world, "helga")]),
    )
    anna, helga = world.staff["anna"], world.staff["helga"]
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-a")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id
    assert await engine.run_due() == 1

    clock.move(seconds=30)
    acknowledged = await lifecycle.acknowledge(alert_id, anna)
    assert (acknowledged.status, acknowledged.escalation) == ("acknowledged", "stopped")
    acked_at = clock.now
    # Tier 2's step is called off; the only step left waiting is the retrigger.
    waiting = [s for s in await steps(sessions, alert_id) if s.status == "pending"]
    assert [(s.kind, s.due_at) for s in waiting] == [
        ("retrigger", acked_at + timedelta(minutes=30))
    ]
    clock.move(minutes=10)  # long past tier 1's timeout
    assert await engine.run_due() == 0
    clock.now = acked_at + timedelta(minutes=30) - timedelta(seconds=1)
    assert await engine.run_due() == 0
    assert mails(box) == [("anna@vaki.example", key(alert_id, 1, 1, anna))]

    # Thirty minutes and not resolved: open again, from tier 1, in a new round.
    clock.now = acked_at + timedelta(minutes=30)
    assert await engine.run_due() >= 1
    alert = await load_alert(sessions, alert_id)
    assert (alert.status, alert.escalation) == ("open", "active")
    assert mails(box)[1:] == [("anna@vaki.example", key(alert_id, 1, 1, anna, rnd=2))]
    assert "retriggered" in [e.kind for e in await timeline(sessions, alert_id)]
    assert key(alert_id, 1, 1, anna, rnd=2) in {
        n.idempotency_key for n in await notifications(sessions)
    }

    # Resolved: every step not yet fired is called off and nothing more goes out.
    clock.move(seconds=5)
    await lifecycle.resolve(alert_id, helga, outcome="visited, all well")
    assert not [s for s in await steps(sessions, alert_id) if s.status in ("pending", "claimed")]
    count = len(await notifications(sessions))
    clock.move(hours=3)
    assert await engine.run_due() == 0
    assert len(mails(box)) == 2
    assert len(await notifications(sessions)) == count
    alert = await load_alert(sessions, alert_id)
    assert (alert.status, alert.escalation) == ("resolved", "stopped")


async def test_after_a_retrigger_the_escalation_climbs_on_to_tier_two(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, retrigger_after_min=30)
    await add_tiers(
        sessions,
        world,
        TierSpec(60, [staff(world, "anna")]),
        TierSpec(120, [staff(world, "helga")]),
    )
    anna = world.staff["anna"]
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-a")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id
    assert await engine.run_due() == 1
    clock.move(seconds=30)
    await lifecycle.acknowledge(alert_id, anna)
    clock.move(minutes=30)
    # The retrigger, then tier 1 again (counted below, by what went out).
    await engine.run_due()
    # Nobody acknowledges this time: tier 2 follows after tier 1's minute, as before.
    # Past tier 1's timeout and the lease of a step that failed to finish.
    clock.move(seconds=61)
    await engine.run_due()
    received = Counter(k for _, k in mails(box))
    assert set(received.values()) == {1}, f"a mail went out twice: {received}"
    assert [r for r, _ in mails(box)] == [
        "anna@vaki.example",
        "anna@vaki.example",
        "helga@vaki.example",
    ]
    notify = [s for s in await steps(sessions, alert_id) if s.kind == "notify"]
    # Tier 2 is the last: every tier tried, so it is due to ring again (never silence).
    assert [(s.tier, s.status) for s in notify if s.status != "cancelled"] == [
        (1, "done"),
        (1, "done"),
        (2, "done"),
        (2, "pending"),
    ]
    assert {n.status for n in await notifications(sessions)} == {"sent"}


async def test_a_tier_nobody_can_be_reached_by_hands_on_at_once(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    # Nobody is on call (no rota), and Siggi has no e-mail address.
    world = await build_world(sessions, last_tier_repeats=2, rota=False)
    await add_tiers(
        sessions,
        world,
        TierSpec(600, [staff(world, "siggi")]),
        TierSpec(600, [{"kind": "on_call"}]),
        TierSpec(300, [staff(world, "jon")]),
    )
    jon = world.staff["jon"]
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-a")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id

    # No waiting out the ten-minute timeouts of tiers that told nobody: Jón hears at once.
    assert await engine.run_due() == 3
    assert mails(box) == [("jon@vaki.example", key(alert_id, 3, 1, jon))]
    entries = await timeline(sessions, alert_id)
    assert [e.data["tier"] for e in entries if e.kind == "nobody_reached"] == [1, 2]
    assert [(e.data["tier"], e.data["sent"]) for e in entries if e.kind == "notified"] == [
        (1, 0),
        (2, 0),
        (3, 1),
    ]
    assert [n.idempotency_key for n in await notifications(sessions)] == [key(alert_id, 3, 1, jon)]
    # Jón was reached, so his tier waits its full timeout before repeating.
    assert [(s.tier, s.attempt, s.status, s.due_at) for s in await steps(sessions, alert_id)] == [
        (1, 1, "done", T0),
        (2, 1, "done", T0),
        (3, 1, "done", T0),
        (3, 2, "pending", T0 + timedelta(seconds=300)),
    ]


async def test_a_policy_that_reaches_nobody_is_exhausted_at_once_and_says_so(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, last_tier_repeats=2, rota=False)
    await add_tiers(sessions, world, TierSpec(600, [staff(world, "siggi")]))
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-a")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    # Both tries of the only tier at once, then the fallback (there is none to reach).
    assert await engine.run_due() == 3
    assert box.envelopes == []
    kinds = [e.kind for e in await timeline(sessions, raised.alert_id)]
    assert kinds.count("nobody_reached") == 2
    assert kinds[-2:] == ["escalation_exhausted", "fallback_unreachable"]
    alert = await load_alert(sessions, raised.alert_id)
    # Still open on the console: exhausted escalation never closes an alarm.
    assert (alert.status, alert.escalation) == ("open", "exhausted")
    # And it does not stop: the tier is tried again after its timeout, not in a busy loop.
    waiting = [s for s in await steps(sessions, raised.alert_id) if s.status == "pending"]
    assert [(s.tier, s.attempt, s.due_at) for s in waiting] == [
        (1, 3, clock.now + timedelta(seconds=600))
    ]


@pytest.mark.postgres
async def test_two_instances_on_one_database_fire_every_step_exactly_once(
    postgres_url: str, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    first_db, second_db = create_engine(postgres_url), create_engine(postgres_url)
    try:
        await upgrade_database(first_db)
        first_sessions, second_sessions = session_factory(first_db), session_factory(second_db)
        world = await build_world(first_sessions)
        await add_tiers(
            first_sessions,
            world,
            TierSpec(60, [staff(world, "anna")]),
            TierSpec(60, [staff(world, "helga")]),
        )
        clock = Clock()
        lifecycle, first = build_engine(first_sessions, clock, port, "vaki-a")
        _, second = build_engine(second_sessions, clock, port, "vaki-b")
        # More due steps than one claim takes, so both instances find work.
        alert_count = 60
        raised = await lifecycle.raise_alerts([panic(world, n) for n in range(alert_count)])
        assert len({c.alert_id for c in raised}) == alert_count

        fired = []
        for _ in range(3):
            for _ in range(3):
                fired.append(sum(await asyncio.gather(first.run_due(), second.run_due())))
            clock.move(seconds=60)
        # Each round's first pass fires every alert's step; the repeats find nothing. From
        # the second round on, every tier has been tried: the fallback step fires as well
        # and the last tier keeps ringing.
        assert fired == [alert_count, 0, 0, 2 * alert_count, 0, 0, 2 * alert_count, 0, 0]

        rows = await notifications(first_sessions)
        keys = Counter(n.idempotency_key for n in rows)
        assert len(keys) == 3 * alert_count
        assert set(keys.values()) == {1}
        assert {n.status for n in rows} == {"sent"}
        received = Counter(k for _, k in mails(box))
        assert received == keys
        async with first_sessions() as session:
            every_step = (await session.exec(select(alerts.EscalationStep))).all()
        assert Counter(s.status for s in every_step) == {
            "done": 5 * alert_count,
            "pending": alert_count,
        }
        assert {s.claimed_by for s in every_step if s.status == "done"} == {"vaki-a", "vaki-b"}
    finally:
        await first_db.dispose()
        await second_db.dispose()


async def _dead_instance_claimed(
    sessions: async_sessionmaker[AsyncSession],
    alert_id: int,
    tier: int,
    lease_until: datetime,
    sent: list[tuple[int, str]],
    pending: list[tuple[int, str]],
) -> None:
    """An instance claimed the step, recorded its notifications, sent some, then died."""
    async with sessions() as session:
        await session.exec(
            update(alerts.EscalationStep)
            .where(
                col(alerts.EscalationStep.alert_id) == alert_id,
                col(alerts.EscalationStep.tier) == tier,
            )
            .values(status="claimed", claimed_by="dead-instance", claimed_until=lease_until)
        )
        for staff_id, address in sent + pending:
            done = (staff_id, address) in sent
            session.add(
                alerts.Notification(
                    alert_id=alert_id,
                    channel="email",
                    recipient_kind="staff",
                    recipient_id=staff_id,
                    address=address,
                    language="en",
                    idempotency_key=key(alert_id, tier, 1, staff_id),
                    status=alerts.NotificationStatus.SENT
                    if done
                    else alerts.NotificationStatus.PENDING,
                    attempts=1 if done else 0,
                    sent_at=lease_until - timedelta(seconds=59) if done else None,
                )
            )
        await session.commit()


async def test_a_step_whose_lease_ran_out_fires_once_and_skips_what_was_sent(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions)
    await add_tiers(
        sessions,
        world,
        TierSpec(60, [staff(world, "anna")]),
        TierSpec(120, [staff(world, "helga"), staff(world, "jon")]),
        TierSpec(300, [staff(world, "anna")]),
    )
    helga, jon = world.staff["helga"], world.staff["jon"]
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-live")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id
    assert await engine.run_due() == 1
    # At 60 s another instance took tier 2, mailed Helga (not Jón) and died.
    lease_until = T0 + timedelta(seconds=120)
    await _dead_instance_claimed(
        sessions,
        alert_id,
        2,
        lease_until,
        sent=[(helga, "helga@vaki.example")],
        pending=[(jon, "jon@vaki.example")],
    )
    clock.now = lease_until - timedelta(seconds=1)
    assert await engine.run_due() == 0  # a live lease is not taken over
    clock.now = lease_until + timedelta(seconds=1)
    assert await engine.run_due() == 1
    assert await engine.run_due() == 0

    assert [r for r, _ in mails(box)] == ["anna@vaki.example", "jon@vaki.example"]
    assert mails(box)[1] == ("jon@vaki.example", key(alert_id, 2, 1, jon))
    tier_two = {
        n.idempotency_key: (n.status, n.attempts)
        for n in await notifications(sessions)
        if ":t2:" in n.idempotency_key
    }
    assert tier_two == {
        key(alert_id, 2, 1, helga): ("sent", 1),
        key(alert_id, 2, 1, jon): ("sent", 1),
    }
    by_tier = {s.tier: s for s in await steps(sessions, alert_id)}
    assert (by_tier[2].status, by_tier[2].claimed_by) == ("done", "vaki-live")
    assert (by_tier[3].status, by_tier[3].due_at) == ("pending", clock.now + timedelta(seconds=120))


async def test_a_step_sent_in_full_before_a_crash_does_not_count_as_nobody_reached(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions)
    await add_tiers(
        sessions,
        world,
        TierSpec(60, [staff(world, "anna")]),
        TierSpec(120, [staff(world, "helga")]),
        TierSpec(300, [staff(world, "jon")]),
    )
    helga = world.staff["helga"]
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-live")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id
    assert await engine.run_due() == 1
    lease_until = T0 + timedelta(seconds=120)
    # Helga was mailed; the instance died before it could close the step.
    await _dead_instance_claimed(
        sessions, alert_id, 2, lease_until, sent=[(helga, "helga@vaki.example")], pending=[]
    )
    clock.now = lease_until + timedelta(seconds=1)
    assert await engine.run_due() == 1
    # Helga was reached: she has her tier's two minutes before Jón is told.
    assert [r for r, _ in mails(box)] == ["anna@vaki.example"]
    assert "nobody_reached" not in [e.kind for e in await timeline(sessions, alert_id)]


class BrokenChannel:
    """A channel whose library fails in a way it does not wrap (a bug, a bad config)."""

    name = "email"

    async def send(self, message: alerts.OutgoingMessage) -> alerts.DeliveryResult:
        raise RuntimeError("the mail library fell over")


async def test_a_channel_that_raises_does_not_stop_the_escalation(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    world = await build_world(sessions)
    await add_tiers(
        sessions, world, TierSpec(60, [staff(world, "anna")]), TierSpec(60, [staff(world, "helga")])
    )
    clock = Clock()
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    engine = alerts.EscalationEngine(
        sessions, lifecycle, {"email": BrokenChannel()}, clock=clock, instance="vaki-a"
    )
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    # Tier 1 fails to send but the step finishes; nobody was reached, so tier 2 is due at once
    # (and, tier 2 being the last, the fallback).
    assert await engine.run_due() == 3
    done = [(s.tier, s.status) for s in await steps(sessions, raised.alert_id)]
    assert (1, "done") in done
    assert (2, "done") in done
    failed = [n for n in await notifications(sessions) if n.status == "failed"]
    assert failed
    assert all("fell over" in (n.last_error or "") for n in failed)
    assert "nobody_reached" in [e.kind for e in await timeline(sessions, raised.alert_id)]


async def give_phone(sessions: async_sessionmaker[AsyncSession], staff_id: int, phone: str) -> None:
    async with sessions() as session:
        await session.exec(
            update(care.StaffUser).where(col(care.StaffUser.id) == staff_id).values(phone=phone)
        )
        await session.commit()


def sms_gateway(receiver: HttpReceiver, clock: Clock, deadline_s: float) -> alerts.GuardedChannel:
    """The real SMS channel to the stand-in gateway, its breaker on the test's clock."""

    def elapsed() -> float:
        return (clock.now - T0).total_seconds()

    return alerts.GuardedChannel(
        alerts.SmsGatewayChannel(f"http://127.0.0.1:{receiver.port}/sms"),
        deadline_s=deadline_s,
        breaker=alerts.CircuitBreaker(monotonic=elapsed),
    )


def references(receiver: HttpReceiver) -> Counter[str]:
    """How often the gateway was asked to send each idempotency key."""
    return Counter(json.loads(r.body)["reference"] for r in receiver.requests)


async def test_a_hanging_sms_gateway_holds_no_alert_and_the_next_tier_is_told_at_once(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, last_tier_repeats=3)
    await give_phone(sessions, world.staff["anna"], "+3548621234")
    # Tier 1: the console and an SMS. The console is not a person: if the SMS fails, Helga
    # (tier 2) must hear at once, not after tier 1's five minutes.
    await add_tiers(
        sessions,
        world,
        TierSpec(300, [staff(world, "anna")], ("console", "sms")),
        TierSpec(300, [staff(world, "helga")], ("email",)),
    )
    anna, helga = world.staff["anna"], world.staff["helga"]
    clock = Clock()
    async with serving(HttpReceiver(hold=asyncio.Event())) as gateway:
        lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
        mail = alerts.EmailChannel("127.0.0.1", port, sender="Vaki <vaki@vaki.example>")
        engine = alerts.EscalationEngine(
            sessions,
            lifecycle,
            {"email": mail, "sms": sms_gateway(gateway, clock, deadline_s=0.5)},
            clock=clock,
            instance="vaki-a",
        )
        raised = await lifecycle.raise_alerts([panic(world, n) for n in range(5)])
        ids = [c.alert_id for c in raised]

        assert await engine.run_due() == 10
        # Every alert's SMS was in flight at the same time: none waited for another.
        assert gateway.most_in_flight == 5
        assert sorted(mails(box)) == sorted(
            ("helga@vaki.example", key(alert_id, 2, 1, helga)) for alert_id in ids
        )
        for alert_id in ids:
            entries = await timeline(sessions, alert_id)
            assert [e.data["tier"] for e in entries if e.kind == "nobody_reached"] == [1]
        texts = {n.idempotency_key: n for n in await notifications(sessions) if n.channel == "sms"}
        assert set(texts) == {key(alert_id, 1, 1, anna, "sms") for alert_id in ids}
        for row in texts.values():
            assert (row.status, row.attempts, row.last_error) == (
                "failed",
                1,
                "no answer within 0.5 s",
            )
            # Tried again later, with backoff, while the alert is open.
            assert row.retry_at == T0 + timedelta(seconds=15)

        # The gateway recovers; the breaker (open after three failures) lets a trial through
        # after its cool-down, then the rest go out.
        gateway.hold.set()  # type: ignore[union-attr]
        clock.move(seconds=31)
        assert await engine.run_due() == 0
        clock.move(minutes=4)  # still within Helga's tier's five minutes
        assert await engine.run_due() == 0
        texts = {n.idempotency_key: n for n in await notifications(sessions) if n.channel == "sms"}
        assert {row.status for row in texts.values()} == {"sent"}
        # The gateway saw each message under its one key (the hung try and the one that
        # went through), so it can drop a duplicate; no key was ever sent by two runners.
        assert set(references(gateway)) == set(texts)
        # Helga got one mail per alert; the steps were not fired again.
        assert Counter(k for _, k in mails(box)) == Counter(
            key(alert_id, 2, 1, helga) for alert_id in ids
        )


async def test_a_slow_step_keeps_its_lease_and_is_never_claimed_twice(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    _box, port = mailbox
    world = await build_world(sessions)
    await give_phone(sessions, world.staff["anna"], "+3548621234")
    await add_tiers(
        sessions,
        world,
        TierSpec(60, [staff(world, "anna")], ("sms",)),
        TierSpec(60, [staff(world, "helga")]),
    )
    # Renewed every third of it; long enough for a busy machine to keep renewing in time.
    lease = timedelta(seconds=2)
    async with serving(HttpReceiver(hold=asyncio.Event())) as gateway:
        lifecycle = alerts.AlertLifecycle(sessions)

        def build(instance: str) -> alerts.EscalationEngine:
            sms = alerts.SmsGatewayChannel(f"http://127.0.0.1:{gateway.port}/sms")
            mail = alerts.EmailChannel("127.0.0.1", port, sender="v@vaki.example")
            return alerts.EscalationEngine(
                sessions,
                lifecycle,
                {"sms": sms, "email": mail},
                instance=instance,
                lease=lease,
                deadline_s=30,
            )

        slow, other, same = build("vaki-a"), build("vaki-b"), build("vaki-a")
        (raised,) = await lifecycle.raise_alerts([panic(world)])
        firing = asyncio.create_task(slow.run_due())
        try:
            await gateway.arrived.wait()
            # The gateway hangs for three leases; the other instance and a second runner of
            # the same instance keep looking for due work all that time and find none.
            deadline = asyncio.get_running_loop().time() + 3 * lease.total_seconds()
            tries = 0
            while asyncio.get_running_loop().time() < deadline:
                assert await other.run_due() == 0
                assert await same.run_due() == 0
                tries += 1
            assert tries > 1
        finally:
            gateway.hold.set()  # type: ignore[union-attr]
            fired = await firing
        assert fired == 1
    assert references(gateway) == {key(raised.alert_id, 1, 1, world.staff["anna"], "sms"): 1}
    by_tier = {s.tier: s for s in await steps(sessions, raised.alert_id)}
    assert (by_tier[1].status, by_tier[1].claimed_by) == ("done", "vaki-a")
    assert by_tier[2].status == "pending"


async def test_an_exhausted_escalation_tells_the_fallback_and_keeps_ringing(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, last_tier_repeats=1)
    async with sessions() as session:
        org = await care.ensure_organisation(session, "Fjallabyggð")
        coordinator = await care.add_staff_user(
            session,
            username="ragna",
            full_name="Ragna Stefánsdóttir",
            password="x" * 12,
            role=care.StaffRole.COORDINATOR,
            organisation=org,
            language="en",
            email="ragna@vaki.example",
        )
        await session.commit()
        assert coordinator.id is not None
        ragna = coordinator.id
    await add_tiers(sessions, world, TierSpec(120, [staff(world, "anna")]))
    anna = world.staff["anna"]
    clock = Clock()
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    engine = alerts.EscalationEngine(
        sessions,
        lifecycle,
        {"email": alerts.EmailChannel("127.0.0.1", port, sender="vaki@vaki.example")},
        clock=clock,
        instance="vaki-a",
        fallback=alerts.parse_fallback_contacts("vakt@fjallabyggd.example, "),
    )
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id
    # The only tier once, and then at once the fallback: the coordinator and the duty line.
    assert await engine.run_due() == 2
    fallback_key = f"a{alert_id}:fallback:r1:t1:n1"
    assert sorted(mails(box)) == sorted(
        [
            ("anna@vaki.example", key(alert_id, 1, 1, anna)),
            ("ragna@vaki.example", f"{fallback_key}:staff{ragna}:email:0"),
            ("vakt@fjallabyggd.example", f"{fallback_key}:fallback0:email:0"),
        ]
    )
    kinds = [e.kind for e in await timeline(sessions, alert_id)]
    assert kinds[-2:] == ["escalation_exhausted", "fallback_notified"]
    assert (await load_alert(sessions, alert_id)).escalation == "exhausted"
    # Nobody acknowledges: the tier rings again after its timeout, and the fallback with it.
    clock.move(seconds=120)
    assert await engine.run_due() == 2
    assert [r for r, _ in mails(box)].count("anna@vaki.example") == 2
    assert [r for r, _ in mails(box)].count("ragna@vaki.example") == 2
    # A resolution ends all of it.
    await lifecycle.resolve(alert_id, anna, outcome="helped_at_home")
    clock.move(hours=1)
    assert await engine.run_due() == 0
    assert len(mails(box)) == 6


async def test_a_delivery_a_crash_left_sending_is_not_sent_again_and_the_next_tier_is_told(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions)
    await add_tiers(
        sessions,
        world,
        TierSpec(60, [staff(world, "anna")]),
        TierSpec(120, [staff(world, "helga")]),
        TierSpec(300, [staff(world, "jon")]),
    )
    helga, jon = world.staff["helga"], world.staff["jon"]
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-live")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id
    assert await engine.run_due() == 1
    lease_until = T0 + timedelta(seconds=75)
    # Another instance was asking the mail server for Helga's message when it died.
    await _dead_instance_claimed(
        sessions, alert_id, 2, lease_until, sent=[], pending=[(helga, "helga@vaki.example")]
    )
    async with sessions() as session:
        await session.exec(
            update(alerts.Notification)
            .where(col(alerts.Notification.idempotency_key) == key(alert_id, 2, 1, helga))
            .values(status="sending", attempts=1)
        )
        await session.commit()
    clock.now = lease_until + timedelta(seconds=1)
    # Tier 2, tier 3 at once, and (tier 3 being the last) the fallback.
    assert await engine.run_due() == 3
    # Whether Helga got it is unknown: it is not sent again under its key, it says so, and
    # Jón (tier 3) is told at once rather than after Helga's two minutes.
    assert [r for r, _ in mails(box)] == ["anna@vaki.example", "jon@vaki.example"]
    rows = {n.idempotency_key: n for n in await notifications(sessions)}
    assert rows[key(alert_id, 2, 1, helga)].status == "unknown"
    assert rows[key(alert_id, 3, 1, jon)].status == "sent"


async def test_a_policy_edited_while_an_alert_escalates_rings_on_at_the_nearest_tier(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, last_tier_repeats=1)
    await add_tiers(
        sessions,
        world,
        TierSpec(60, [staff(world, "anna")]),
        TierSpec(60, [staff(world, "helga")]),
        TierSpec(60, [staff(world, "jon")]),
    )
    jon = world.staff["jon"]
    clock = Clock()
    lifecycle, engine = build_engine(sessions, clock, port, "vaki-a")
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id
    assert await engine.run_due() == 1
    # Tier 2 is pending when a coordinator saves the policy with one tier only: the editor
    # deletes and re-inserts the tiers.
    async with sessions() as session, session.begin():
        await alerts.save_policy(
            session,
            world.team_id,
            alerts.PolicySpec(
                name="Default",
                tiers=[alerts.TierSpec(60, [staff(world, "jon")], ["email"])],
                last_tier_repeats=1,
            ),
        )
    clock.move(seconds=60)
    # Tier 2 is gone: the nearest tier left (the new tier 1) rings, and, every tier having
    # been tried, the fallback is told and the tier rings again after its timeout.
    assert await engine.run_due() == 2
    assert mails(box)[-1] == ("jon@vaki.example", key(alert_id, 2, 1, jon))
    assert (await load_alert(sessions, alert_id)).escalation == "exhausted"
    clock.move(seconds=60)
    assert await engine.run_due() == 2
    assert mails(box)[-1] == ("jon@vaki.example", key(alert_id, 2, 2, jon))
    assert [r for r, _ in mails(box)] == [
        "anna@vaki.example",
        "jon@vaki.example",
        "jon@vaki.example",
    ]
    pending = [s for s in await steps(sessions, alert_id) if s.status == "pending"]
    assert [(s.kind, s.tier, s.attempt) for s in pending] == [("notify", 2, 3)]


async def test_a_policy_left_without_tiers_tells_the_fallback_and_rings_again(
    sessions: async_sessionmaker[AsyncSession], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    world = await build_world(sessions, last_tier_repeats=1)
    clock = Clock()
    lifecycle = alerts.AlertLifecycle(sessions, clock=clock)
    engine = alerts.EscalationEngine(
        sessions,
        lifecycle,
        {"email": alerts.EmailChannel("127.0.0.1", port, sender="vaki@vaki.example")},
        clock=clock,
        instance="vaki-a",
        fallback=alerts.parse_fallback_contacts("vakt@fjallabyggd.example"),
    )
    # The team's policy has no tier at all when the alert is raised.
    (raised,) = await lifecycle.raise_alerts([panic(world)])
    alert_id = raised.alert_id
    assert await engine.run_due() == 1
    assert [r for r, _ in mails(box)] == ["vakt@fjallabyggd.example"]
    kinds = [e.kind for e in await timeline(sessions, alert_id)]
    assert "escalation_broken" in kinds
    assert kinds[-1] == "fallback_notified"
    # The step rings again later; by then the policy has a tier, and it is told.
    await add_tiers(sessions, world, TierSpec(120, [staff(world, "anna")]))
    clock.move(seconds=59)
    assert await engine.run_due() == 0
    clock.move(seconds=1)
    assert await engine.run_due() == 2
    assert ("anna@vaki.example", key(alert_id, 1, 2, world.staff["anna"])) in mails(box)
