"""Each message of a batch checked against the contract and sorted into rows, dead letters, acks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from devices.contract import (
    ContractError,
    Rejected,
    parse_event,
    parse_readings,
    parse_status,
    parse_topic,
    raw_message_id,
)
from devices.ingest.metrics import _count
from devices.ingest.raw import _RawPlanning
from devices.ingest.rows import (
    _device_id_of,
    _DeviceInfo,
    _event_row,
    _Plan,
    _reading_row,
    _unreadable_row,
)
from devices.mqtt import InboundMessage


class _Planning(_RawPlanning):
    """Sorting a batch of messages into the rows, dead letters and acks of one write.

    Planning may run on a worker thread while the event loop goes on, so it reads only what
    it is handed (the batch's senders and the topics being cleared, copied on the loop) and
    writes only into its own plan; the loop applies the plan's changes after the commit.
    """

    _clock: Callable[[], datetime]

    def _plan(
        self,
        batch: Iterable[InboundMessage],
        devices: Mapping[str, _DeviceInfo],
        cleared: frozenset[str],
    ) -> _Plan:
        """Sort each message into rows, dead letters and acks."""
        plan = _Plan()
        for message in batch:
            self._plan_message(plan, message, devices, cleared)
        return plan

    def _plan_message(
        self,
        plan: _Plan,
        message: InboundMessage,
        devices: Mapping[str, _DeviceInfo],
        cleared: frozenset[str],
    ) -> None:
        """One message: check topic and sender, then its channel's payload."""
        received_at = self._clock()
        try:
            topic = parse_topic(message.topic)
        except ContractError as err:
            _count("unknown", "dead_letter")
            plan.dead_letter(message, err.reason, _device_id_of(message.topic), message.payload)
            return
        if topic.channel != "status":
            if message.retain:
                # A retained reading or event replays to every new subscriber: it is stale.
                # Clear it from the broker and keep nothing.
                _count(topic.channel, "retained_ignored")
                plan.retained_to_clear.append(message.topic)
                return
            if not message.payload and message.topic in cleared:
                # The broker's echo of our own clearing of a retained message.
                plan.echoes.append(message.topic)
                return
        device_id = topic.device_id
        device = devices.get(device_id)
        if device is None and message.retain:
            # A retained status of a device that was never registered here (or was deleted)
            # replays on every start; one dead letter per start would say nothing new.
            _count(topic.channel, "retained_unknown")
            return
        if device is None or device.revoked:
            _count(topic.channel, "dead_letter")
            reason = "unknown device" if device is None else "device is revoked"
            plan.dead_letter(message, reason, device_id, message.payload)
            return
        if topic.channel != "status":
            plan.seen[device_id] = received_at
        if topic.channel == "reading":
            self._plan_readings(
                plan, message, device_id=device_id, device=device, received_at=received_at
            )
        elif topic.channel == "event":
            self._plan_event(
                plan, message, device_id=device_id, device=device, received_at=received_at
            )
        elif topic.channel == "status":
            self._plan_status(plan, message, device_id=device_id, received_at=received_at)
        else:
            self._plan_raw(
                plan,
                message,
                device_id=device_id,
                device=device,
                received_at=received_at,
                codec=topic.codec or "",
            )

    def _plan_status(
        self, plan: _Plan, message: InboundMessage, *, device_id: str, received_at: datetime
    ) -> None:
        """A status: online, battery, firmware; a Last Will is not a sign of life."""
        try:
            status = parse_status(message.payload)
        except ContractError as err:
            _count("status", "dead_letter")
            plan.dead_letter(message, err.reason, device_id, message.payload)
            return
        _count("status", "stored")
        plan.statuses[device_id] = status
        # A Last Will is the broker speaking for a device that is gone: not a sign of life.
        if status.online is not False:
            plan.seen[device_id] = received_at

    def _plan_readings(
        self,
        plan: _Plan,
        message: InboundMessage,
        device_id: str,
        device: _DeviceInfo,
        received_at: datetime,
    ) -> None:
        """A reading or a batch of readings; bad items become dead letters, still acked."""
        try:
            items = parse_readings(message.payload)
        except ContractError as err:
            _count("reading", "dead_letter")
            plan.dead_letter(message, err.reason, device_id, message.payload)
            return
        for item in items:
            if isinstance(item, Rejected):
                _count("reading", "dead_letter")
                plan.dead_letter(message, item.reason, device_id, item.raw)
                plan.ack(device_id, item.message_id)
                continue
            _count("reading", "stored")
            plan.readings.append(_reading_row(item, device_id, device, received_at))
            plan.ack(device_id, item.message_id)

    def _plan_event(
        self,
        plan: _Plan,
        message: InboundMessage,
        device_id: str,
        device: _DeviceInfo,
        received_at: datetime,
    ) -> None:
        """An event; an unreadable one is stored as ``unreadable_event`` so the alarm stays."""
        try:
            event = parse_event(message.payload)
        except ContractError as err:
            _count("event", "unreadable")
            plan.dead_letter(message, err.reason, device_id, message.payload)
            message_id = err.message_id or raw_message_id(message.payload)
            plan.events.append(
                _unreadable_row(message_id, device_id, device, received_at, {"reason": err.reason})
            )
            plan.ack(device_id, err.message_id)
            return
        _count("event", "stored")
        plan.events.append(_event_row(event, device_id, device, received_at))
        plan.ack(device_id, event.message_id)
