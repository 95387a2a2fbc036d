"""The world of ``vaki bench checkins``: residents with a tablet and a plan each, written in
bulk, and what the database says about their prompts and alerts afterwards."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

import alerts
import care
import devices
from bench.world import StaffMember, Tier, add_on_call_team
from server.runtime import Runtime

# Rows per INSERT while the world is built.
_CHUNK = 2000
# A device hash nothing matches: the tablets of a run never log in themselves.
_NO_LOGIN = "-"


@dataclass(frozen=True)
class World:
    """What the run created: its residents, their tablets, and the plans' original slots."""

    resident_ids: list[int]
    device_ids: list[str]
    plan_ids: list[int]
    slot_a: datetime
    slot_b: datetime
    planned: int
    planning_s: float


def _minute(moment: datetime) -> datetime:
    """The start of the minute ``moment`` falls in."""
    return moment.replace(second=0, microsecond=0)


async def _insert(engine: AsyncEngine, table: Any, rows: list[dict[str, Any]]) -> list[Any]:
    """Insert rows in chunks; return their new ids in order (when the table has an id)."""
    ids: list[Any] = []
    async with engine.begin() as connection:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            if "id" in table.c and "id" not in chunk[0]:
                statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
                ids.extend((await connection.execute(statement, chunk)).scalars().all())
            else:
                await connection.execute(insert(table), chunk)
    return ids


def _row(model: Any) -> dict[str, Any]:
    """A model's column values, defaults filled in, without an unset id."""
    values: dict[str, Any] = model.model_dump()
    if values.get("id") is None:
        values.pop("id", None)
    return values


async def build_world(runtime: Runtime, residents: int, window_min: int) -> World:
    """A care team with an on-call nurse and a policy; residents, tablets and plans."""
    assert runtime.sessions is not None
    assert runtime.engine is not None
    run = uuid.uuid4().hex[:6]
    async with runtime.sessions() as session, session.begin():
        # Nobody acknowledges during a run; the next tier must not come due in it.
        built = await add_on_call_team(
            session,
            organisation="Benchmark municipality",
            team=f"Check-in benchmark {run}",
            staff=[StaffMember(f"bench-{run}", "Bench Nurse")],
            on_call=f"bench-{run}",
            policy="Bench",
            tiers=[Tier(900)],
            last_tier_repeats=0,
        )
        team_id = built.team_id

    now = care.utcnow()
    resident_ids = await _insert(
        runtime.engine,
        care.Resident.__table__,  # type: ignore[attr-defined]
        [
            _row(care.Resident(full_name=f"Íbúi {n} Benchmark", time_zone="Atlantic/Reykjavik"))
            for n in range(residents)
        ],
    )
    await _insert(
        runtime.engine,
        care.ResidentTeam.__table__,  # type: ignore[attr-defined]
        [{"resident_id": r, "team_id": team_id} for r in resident_ids],
    )
    device_ids = [f"tab-{run}-{n}" for n in range(residents)]
    await _insert(
        runtime.engine,
        devices.Device.__table__,  # type: ignore[attr-defined]
        [
            _row(
                devices.Device(
                    id=device_id,
                    kind=devices.DeviceKind.TABLET,
                    resident_id=resident_id,
                    label="tablet",
                    # Nobody logs in with it: the subscriber stands in for every tablet.
                    secret_hash=_NO_LOGIN,
                    online=True,
                    last_seen_at=now,
                )
            )
            for device_id, resident_id in zip(device_ids, resident_ids, strict=True)
        ],
    )
    # Reykjavik is UTC all year, so local "HH:MM" is UTC too. A was a minute ago, B is now,
    # C is later in the day; the run moves A and B to its own timeline.
    slot_a = _minute(now) - timedelta(minutes=1)
    slot_b = _minute(now)
    slot_c = slot_a + timedelta(hours=6)
    plan_ids = await _insert(
        runtime.engine,
        alerts.CheckinPlan.__table__,  # type: ignore[attr-defined]
        [
            _row(
                alerts.CheckinPlan(
                    resident_id=resident_id,
                    kind=alerts.CheckinKind.WELLBEING,
                    title="Daily check-in",
                    times=sorted(f"{slot:%H:%M}" for slot in (slot_a, slot_b, slot_c)),
                    window_min=window_min,
                    reminder_before_close_min=0,
                    created_at=slot_a - timedelta(minutes=1),
                    updated_at=slot_a - timedelta(minutes=1),
                )
            )
            for resident_id in resident_ids
        ],
    )
    planning = time.perf_counter()
    planned = await alerts.CheckinService(runtime.sessions).plan_ahead()
    return World(
        resident_ids=resident_ids,
        device_ids=device_ids,
        plan_ids=plan_ids,
        slot_a=slot_a,
        slot_b=slot_b,
        planned=planned,
        planning_s=time.perf_counter() - planning,
    )


async def move_slot(
    engine: AsyncEngine, world: World, slot: datetime, due: datetime, window_min: int
) -> int:
    """Move one planned slot of the run's plans to ``due`` (window kept); return how many."""
    prompt = alerts.CheckinPrompt
    async with engine.begin() as connection:
        result = await connection.execute(
            update(prompt)
            .where(col(prompt.plan_id).in_(world.plan_ids), col(prompt.slot_at) == slot)
            .values(slot_at=due, closes_at=due + timedelta(minutes=window_min), remind_at=None)
        )
    return int(result.rowcount)


@dataclass(frozen=True)
class PromptRow:
    """A prompt of the run as the database has it at the end."""

    id: int
    resident_id: int
    plan_id: int
    slot_at: datetime
    closes_at: datetime
    status: str
    sent_at: datetime | None
    closed_at: datetime | None


def _aware(value: datetime | None) -> datetime | None:
    """A UTC datetime, also from a naive one (read as UTC)."""
    return None if value is None else care.as_utc(value)


async def prompts_of(engine: AsyncEngine, world: World, slots: list[datetime]) -> list[PromptRow]:
    """The run's prompts of the given slots."""
    prompt = alerts.CheckinPrompt
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(
                    col(prompt.id),
                    col(prompt.resident_id),
                    col(prompt.plan_id),
                    col(prompt.slot_at),
                    col(prompt.closes_at),
                    col(prompt.status),
                    col(prompt.sent_at),
                    col(prompt.closed_at),
                ).where(col(prompt.plan_id).in_(world.plan_ids), col(prompt.slot_at).in_(slots))
            )
        ).all()
    return [
        PromptRow(
            id=int(row[0] or 0),
            resident_id=row[1],
            plan_id=row[2],
            slot_at=_aware(row[3]) or row[3],
            closes_at=_aware(row[4]) or row[4],
            status=str(row[5]),
            sent_at=_aware(row[6]),
            closed_at=_aware(row[7]),
        )
        for row in rows
    ]


async def slot_duplicates(engine: AsyncEngine, world: World) -> int:
    """Prompts beyond the first for any (plan, slot) of the run."""
    prompt = alerts.CheckinPrompt
    async with engine.connect() as connection:
        counts = (
            await connection.execute(
                select(func.count())
                .where(col(prompt.plan_id).in_(world.plan_ids))
                .group_by(col(prompt.plan_id), col(prompt.slot_at))
                .having(func.count() > 1)
            )
        ).all()
    return sum(int(row[0]) - 1 for row in counts)


async def missed_alerts(engine: AsyncEngine, world: World) -> dict[int, datetime]:
    """When each of the run's residents got a missed-check-in alert."""
    alert = alerts.Alert
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(col(alert.resident_id), col(alert.first_seen_at)).where(
                    col(alert.kind) == "checkin_missed",
                    col(alert.resident_id).in_(world.resident_ids),
                )
            )
        ).all()
    return {int(row[0] or 0): _aware(row[1]) or row[1] for row in rows}
