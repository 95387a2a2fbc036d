"""Virtual homes with realistic daily rhythms, publishing to Vaki as real devices would.

Each home lives a resident's day in its own time zone: getting up, measuring blood pressure,
weight, SpO2, temperature and glucose on a schedule, moving about (more around meals),
going out through the front door, going to bed, now and then getting up at night. Values
come from per-home baselines plus noise and always lie in the ranges of docs/mqtt.md.
Scenarios add a fall at 03:00, a hypertensive crisis, panic presses, or a device whose
battery dies.

Every device is a :class:`~homesim.device.VirtualDevice`, so the simulator exercises
the whole contract: outbox, acks, resends, status and Last Will. All devices share one event
loop and no device has a thread of its own (see the virtual device's module docstring); the
one scheduler below walks a single heap of planned actions for all homes.

Simulated time runs ``speed`` times faster than real time. Timestamps are simulated time,
so at any speed but 1 the server flags readings as having a skewed clock (they are stored
all the same); the server's "last seen" runs on real time, which is why status heartbeats
are also sent by real time.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from homesim.contract import EXPECTED_INTERVAL_S, utc_now
from homesim.device import MqttVersion, VirtualDevice
from homesim.homes import SimulatedHome
from homesim.planner import Action, Baseline, DayPlanner, DeviceState, HomeState

log = logging.getLogger(__name__)

# Status messages of one device are at least this many real seconds apart, and a heartbeat
# due in simulated time at least this fraction of the kind's interval: at speed 60 and up
# the simulated heartbeats would otherwise flood the service with status messages that the
# real-time silence alarm does not need.
_MIN_STATUS_GAP_S = 1.0
_MIN_HEARTBEAT_FRACTION = 0.05


@dataclass
class SimulatorStats:
    """Messages published and acked per type (reading or event type, and "status")."""

    published: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)
    # Readings and events (not status) published per device id.
    published_by_device: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class PlannedAction:
    """One thing a simulated device will do: a reading, an event, a low battery or silence."""

    at: datetime
    device_id: str
    kind: str
    operation: Literal["reading", "event", "low_battery", "silence"]
    type: str = ""
    content: Mapping[str, Any] = field(default_factory=dict)


class Simulator:
    """Runs simulated homes against a broker, all on one event loop."""

    def __init__(
        self,
        homes: Sequence[SimulatedHome],
        host: str,
        port: int,
        *,
        speed: float = 60.0,
        outbox_dir: Path | None = None,
        seed: int = 0,
        clock: Callable[[], datetime] = utc_now,
        start: datetime | None = None,
        protocol: MqttVersion = "3.1.1",
        tick_s: float = 0.05,
        settle_s: float = 10.0,
        connect_wait_s: float = 30.0,
        resend_first_s: float = 30.0,
        resend_max_s: float = 600.0,
    ) -> None:
        """Set up the homes' devices; nothing connects before run()."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        ids = [d.device_id for home in homes for d in home.devices]
        if len(ids) != len(set(ids)):
            raise ValueError("a device id appears twice: one connection per device id")
        self.speed = speed
        self.start_at = start or clock()
        if self.start_at.tzinfo is None:
            raise ValueError("start needs a time zone")
        self._tick_s, self._settle_s, self._connect_wait_s = tick_s, settle_s, connect_wait_s
        self._stats = SimulatorStats()
        self._heap: list[Action] = []
        self._seq = itertools.count()
        self._real_start: float | None = None
        self._ran = False
        self.silenced: dict[str, datetime] = {}
        # Seeded, reproducible, not security relevant.
        master = random.Random(seed)  # noqa: S311
        self._homes: list[HomeState] = []
        self._states: list[DeviceState] = []
        for home_index, home in enumerate(homes):
            zone = ZoneInfo(home.time_zone)
            rng = random.Random(master.getrandbits(64))  # noqa: S311
            by_kind: dict[str, list[int]] = {}
            for spec in home.devices:
                by_kind.setdefault(spec.kind, []).append(len(self._states))
                device_index = len(self._states)
                device = VirtualDevice(
                    spec.device_id,
                    spec.password,
                    host,
                    port,
                    outbox_path=outbox_dir / f"{spec.device_id}.db" if outbox_dir else None,
                    protocol=protocol,
                    clock=self.now,
                    resend_first_s=resend_first_s,
                    resend_max_s=resend_max_s,
                    battery=None,  # set below, once the drain model is known
                    fw=f"sim-{spec.kind}-1.0",
                    on_ack=functools.partial(self._acked, device_index),
                    rng=random.Random(master.getrandbits(64)),  # noqa: S311
                )
                state = DeviceState(
                    spec=spec,
                    home=home_index,
                    device=device,
                    battery_start=master.uniform(60, 100),
                    rssi=master.randint(-78, -45),
                )
                state.last_battery = state.battery(0)
                device.publish_status(battery=state.last_battery, extra=self._extra(state))
                self._states.append(state)
            local_start = self.start_at.astimezone(zone)
            self._homes.append(
                HomeState(
                    spec=home,
                    zone=zone,
                    rng=rng,
                    baseline=Baseline.draw(rng),
                    by_kind=by_kind,
                    next_day=local_start.date(),
                    planned_until=self.start_at,
                )
            )

    @property
    def stats(self) -> SimulatorStats:
        """Published and acked counts per message type, live."""
        return self._stats

    @property
    def devices(self) -> Mapping[str, VirtualDevice]:
        """The virtual devices by id."""
        return {state.spec.device_id: state.device for state in self._states}

    def planned(self, until: datetime) -> list[PlannedAction]:
        """What the homes will do from the start until a simulated time (batches as readings)."""
        # Days are planned whole, each home from its own random stream, so asking early
        # changes nothing: the same seed always gives the same days.
        self._plan_until(until)
        found: list[PlannedAction] = []
        for action in sorted(self._heap):
            if action.at > until:
                break
            spec = self._states[action.device].spec
            if action.operation == "batch":
                found.extend(
                    PlannedAction(ts, spec.device_id, spec.kind, "reading", type, values)
                    for type, values, ts in action.batch
                )
            else:
                found.append(
                    PlannedAction(
                        action.at,
                        spec.device_id,
                        spec.kind,
                        action.operation,
                        action.type,
                        action.content,
                    )
                )
        return found

    def now(self) -> datetime:
        """The simulated time: the start plus real time elapsed times speed."""
        if self._real_start is None:
            return self.start_at
        elapsed = asyncio.get_running_loop().time() - self._real_start
        return self.start_at + timedelta(seconds=elapsed * self.speed)

    async def run(self, duration_s: float | None = None) -> None:
        """Run until cancelled, or for duration_s real seconds and then until acked (settle_s)."""
        if self._ran:
            raise RuntimeError("a simulator runs once")
        self._ran = True
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(state.device.start() for state in self._states))
        try:
            await self._wait_connected()
            self._real_start = loop.time()
            while duration_s is None or loop.time() - self._real_start < duration_s:
                await self._tick(loop.time())
                await asyncio.sleep(self._tick_s)
            await self._settle()
        finally:
            live = [s.device for s in self._states if not s.silent]
            await asyncio.gather(*(device.stop() for device in live))

    async def _tick(self, real_now: float) -> None:
        """Do everything due by now: planned actions, status heartbeats, commands."""
        sim_now = self.now()
        # Plan ahead by a tick's worth of simulated time so nothing is planned in the past.
        await self._plan_until_yielding(
            sim_now + timedelta(seconds=max(3600, 4 * self._tick_s * self.speed))
        )
        while self._heap and self._heap[0].at <= sim_now:
            await self._perform(heapq.heappop(self._heap), real_now)
        for state in self._states:
            if not state.silent:
                self._heartbeat(state, sim_now, real_now)
                if not state.device.commands.empty():
                    await self._answer_commands(state)

    def _plan_until(self, horizon: datetime) -> None:
        """Plan every home's days until the horizon."""
        for home in self._homes:
            while self._plan_day(home, horizon):
                pass

    async def _plan_until_yielding(self, horizon: datetime) -> None:
        """Plan like _plan_until, but let the loop run between days: 100 homes take ~0.3 s."""
        for home in self._homes:
            planned = self._plan_day(home, horizon)
            while planned:
                await asyncio.sleep(0)
                planned = self._plan_day(home, horizon)

    def _plan_day(self, home: HomeState, horizon: datetime) -> bool:
        """Plan the home's next local day if it starts before the horizon; False if not."""
        if home.planned_until >= horizon:
            return False
        day = home.next_day
        planner = DayPlanner(home, day, self.start_at, self._seq)
        for action in planner.plan():
            heapq.heappush(self._heap, action)
        home.next_day = day + timedelta(days=1)
        home.planned_until = planner.at(24)
        return True

    async def _perform(self, action: Action, real_now: float) -> None:
        """Have a device do a planned action."""
        state = self._states[action.device]
        if state.silent:
            return
        device = state.device
        if action.operation == "silence":
            # A dead battery says no goodbye: the broker publishes the Last Will.
            state.silent = True
            self.silenced[state.spec.device_id] = action.at
            await device.stop(graceful=False)
            return
        if action.operation == "low_battery":
            state.battery_override = 2
            self._publish_status(state, real_now)
            return
        sent: list[tuple[str, str]] = []
        if action.operation == "reading":
            values = dict(action.content)
            sent.append((await device.send_reading(action.type, values, action.at), action.type))
        elif action.operation == "event":
            sent.append(
                (await device.send_event(action.type, action.content, action.at), action.type)
            )
        else:
            ids = await device.send_batch(action.batch)
            sent.extend((i, item[0]) for i, item in zip(ids, action.batch, strict=True))
        for message_id, type in sent:
            state.pending[message_id] = type
            self._stats.published[type] += 1
            self._stats.published_by_device[state.spec.device_id] += 1
        state.last_publish_real = real_now

    def _acked(self, device_index: int, ids: Sequence[str]) -> None:
        """Count acks by type."""
        state = self._states[device_index]
        for message_id in ids:
            type = state.pending.pop(message_id, None)
            if type is not None:
                self._stats.acked[type] += 1

    def _extra(self, state: DeviceState) -> dict[str, Any]:
        """Status fields beyond battery: signal strength, and uptime for tablet and hub."""
        extra: dict[str, Any] = {"rssi": state.rssi}
        if state.spec.kind in ("tablet", "home_hub"):
            elapsed = (self.now() - self.start_at).total_seconds()
            extra["uptime_s"] = int(elapsed)
        return extra

    def _heartbeat(self, state: DeviceState, sim_now: datetime, real_now: float) -> None:
        """Status when due in simulated time or when the battery changed, never too often."""
        interval = EXPECTED_INTERVAL_S[state.spec.kind]
        elapsed_h = (sim_now - self.start_at).total_seconds() / 3600
        battery = state.battery(elapsed_h)
        due = state.next_status_at is None or sim_now >= state.next_status_at
        # The server's silence alarm runs on real time: slow runs need real-time heartbeats.
        overdue = real_now - max(state.last_publish_real, state.last_status_real) > interval / 2
        since = real_now - state.last_status_real
        spaced = since >= _MIN_STATUS_GAP_S
        heartbeat = due and since >= interval * _MIN_HEARTBEAT_FRACTION
        if heartbeat or (battery != state.last_battery and spaced) or overdue:
            state.last_battery = battery
            state.next_status_at = sim_now + timedelta(seconds=interval)
            self._publish_status(state, real_now)

    def _publish_status(self, state: DeviceState, real_now: float) -> None:
        """Publish a device's status now (only when connected; it goes out on connect anyway)."""
        elapsed_h = (self.now() - self.start_at).total_seconds() / 3600
        if state.device.publish_status(battery=state.battery(elapsed_h), extra=self._extra(state)):
            self._stats.published["status"] += 1
            state.last_status_real = real_now

    async def _answer_commands(self, state: DeviceState) -> None:
        """The resident answers check-ins and confirms reminders on the tablet."""
        while not state.device.commands.empty():
            command = state.device.commands.get_nowait()
            command_id, kind = command.get("id"), command.get("type")
            if state.spec.kind != "tablet" or not isinstance(command_id, str):
                continue
            if kind == "checkin_prompt":
                data = {"prompt_id": command.get("prompt_id", command_id), "answer": "fine"}
                message_id = await state.device.send_event("checkin_answer", data)
                state.pending[message_id] = "checkin_answer"
                self._stats.published["checkin_answer"] += 1
                self._stats.published_by_device[state.spec.device_id] += 1
            elif kind == "reminder":
                message_id = await state.device.send_event(
                    "reminder_ack", {"prompt_id": command.get("prompt_id", command_id)}
                )
                state.pending[message_id] = "reminder_ack"
                self._stats.published["reminder_ack"] += 1
                self._stats.published_by_device[state.spec.device_id] += 1

    async def _wait_connected(self) -> None:
        """Let the homes come online before their day starts (up to connect_wait_s)."""
        waiting = [s.device.wait_connected(self._connect_wait_s) for s in self._states]
        results = await asyncio.gather(*waiting, return_exceptions=True)
        late = sum(isinstance(result, TimeoutError) for result in results)
        if late:
            log.warning("%d of %d devices are not connected; starting anyway", late, len(results))

    async def _settle(self) -> None:
        """After the run, wait (up to settle_s) until every live device's outbox is acked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle_s
        while loop.time() < deadline:
            if all(s.silent or s.device.outbox_size == 0 for s in self._states):
                return
            await asyncio.sleep(0.05)
        waiting = sum(s.device.outbox_size for s in self._states if not s.silent)
        log.warning("simulator stopped with %d messages not acked", waiting)
