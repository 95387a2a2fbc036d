"""Raw vendor payloads: decoded by firmware_bridge, and from alarm sensors never lost.

From a panic button, fall detector, smoke or water-leak sensor, a raw payload that is too
long, does not decode, decodes to nothing or carries keys nobody reads may have been an
alarm: it raises ``unreadable_event`` (one per device per short window), and is kept as a
dead letter with its reason either way.
"""

from __future__ import annotations

import json
from datetime import datetime

import firmware_bridge
from devices.contract import (
    MAX_PAYLOAD_BYTES,
    ContractError,
    Rejected,
    StatusIn,
    parse_event,
    parse_readings,
    raw_message_id,
)
from devices.ingest.metrics import _count
from devices.ingest.rows import _DeviceInfo, _event_row, _Plan, _reading_row, _unreadable_row
from devices.mqtt import InboundMessage
from devices.raw_alarms import UnreadableWindow, unusable_reason


class _RawPlanning:
    """Sorting ``raw/{codec}`` messages into rows, dead letters and alarms."""

    _unreadable: UnreadableWindow

    def _plan_raw(
        self,
        plan: _Plan,
        message: InboundMessage,
        *,
        device_id: str,
        device: _DeviceInfo,
        received_at: datetime,
        codec: str,
    ) -> None:
        """Vendor bytes through firmware_bridge into canonical readings, events and status.

        From an alarm sensor, bytes that are too long, do not decode, decode to nothing or
        carry keys nobody knows raise ``unreadable_event``: they may have been an alarm.
        """

        def set_aside(reason: str) -> None:
            """Dead-letter this message; from an alarm sensor, raise ``unreadable_event``."""
            self._unusable_raw(
                plan,
                message,
                device_id=device_id,
                device=device,
                received_at=received_at,
                reason=reason,
            )

        if len(message.payload) > MAX_PAYLOAD_BYTES:
            set_aside(
                f"payload is {len(message.payload)} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes"
            )
            return
        try:
            decoded = firmware_bridge.decode(codec, message.payload)
        except firmware_bridge.FirmwareBridgeError as err:
            set_aside(f"cannot decode {codec}: {err}")
            return
        if device.alarm_capable:
            unusable = unusable_reason(codec, message.payload, decoded)
            if unusable is not None:
                set_aside(unusable)
                return
        message_id = raw_message_id(message.payload)
        for index, output in enumerate(decoded):
            item_id = message_id if len(decoded) == 1 else f"{message_id}.{index}"
            if isinstance(output, firmware_bridge.DecodedStatus):
                plan.statuses[device_id] = StatusIn(
                    online=True, battery=output.battery, firmware=None, extra={}
                )
                continue
            # Decoded values pass the same contract as JSON ones: a vendor's 20,000 mmHg is
            # as implausible as anybody's. GATT time stamps carry no zone, so none is kept.
            if isinstance(output, firmware_bridge.DecodedReading):
                document = {"id": item_id, "type": output.type, "values": dict(output.values)}
                encoded = json.dumps(document).encode()
                (item,) = parse_readings(encoded)
                if isinstance(item, Rejected):
                    if device.alarm_capable:
                        # From an alarm sensor, a message we cannot use may hide an alarm.
                        set_aside(f"{codec}: {item.reason}")
                        return
                    _count("raw", "dead_letter")
                    plan.dead_letter(message, f"{codec}: {item.reason}", device_id, encoded)
                    continue
                plan.readings.append(_reading_row(item, device_id, device, received_at))
            else:
                document = {"id": item_id, "type": output.type, "data": dict(output.data)}
                try:
                    event = parse_event(json.dumps(document).encode())
                except ContractError as err:
                    reason = f"{codec}: {err.reason}"
                    if device.alarm_capable:
                        set_aside(reason)
                        return
                    _count("raw", "dead_letter")
                    plan.dead_letter(message, reason, device_id, message.payload)
                    continue
                plan.events.append(_event_row(event, device_id, device, received_at))
        _count("raw", "stored")
        plan.ack(device_id, message_id)

    def _unusable_raw(
        self,
        plan: _Plan,
        message: InboundMessage,
        *,
        device_id: str,
        device: _DeviceInfo,
        received_at: datetime,
        reason: str,
    ) -> None:
        """Dead-letter an unusable raw message, acked; from an alarm sensor, raise an alarm.

        One ``unreadable_event`` per device per window: the first one's alert is still open.
        """
        message_id = raw_message_id(message.payload)
        plan.ack(device_id, message_id)
        if not device.alarm_capable:
            _count("raw", "dead_letter")
            plan.dead_letter(message, reason, device_id, message.payload)
            return
        if device_id in plan.unreadable_raised or not self._unreadable.is_open(device_id):
            _count("raw", "unreadable_suppressed")
            plan.dead_letter(
                message,
                f"{reason} (an unreadable_event alarm of this device is already raised)",
                device_id,
                message.payload,
            )
            return
        _count("raw", "unreadable")
        plan.dead_letter(message, f"{reason} (raised unreadable_event)", device_id, message.payload)
        plan.unreadable_raised.add(device_id)
        plan.events.append(
            _unreadable_row(
                f"raw-{message_id}",
                device_id,
                device,
                received_at,
                {"reason": reason[:500], "topic": message.topic[:200]},
            )
        )
