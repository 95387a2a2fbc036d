"""Which raw vendor payloads are unusable on an alarm path, and how often that raises an alarm.

A panic button, fall detector, smoke detector or water-leak sensor that sends vendor bytes
nobody can read may have been raising an alarm: the contract promises that such a message
raises ``unreadable_event`` instead of vanishing. One per device per short window, so a
device spewing garbage makes one alarm, not a flood.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence

import firmware_bridge
from devices.models import DeviceKind

ALARM_KINDS = frozenset(
    {
        DeviceKind.PANIC_BUTTON,
        DeviceKind.FALL_DETECTOR,
        DeviceKind.SMOKE_DETECTOR,
        DeviceKind.WATER_LEAK_SENSOR,
    }
)
# Further unusable messages from the same device within this window are dead-lettered only:
# the first one's alert is still open and ringing.
UNREADABLE_WINDOW_S = 30.0

# The keys of a zigbee2mqtt state the decoder reads, and those it may ignore safely
# (diagnostics every converter adds). Anything else from an alarm sensor is not understood.
Z2M_STATE_KEYS = frozenset(
    {"contact", "occupancy", "water_leak", "smoke", "battery", "battery_low"}
)
Z2M_HARMLESS_KEYS = frozenset(
    {
        "linkquality",
        "voltage",
        "tamper",
        "last_seen",
        "device_temperature",
        "temperature",
        "humidity",
        "power_outage_count",
        "update",
        "update_available",
        "smoke_density",
        "test",
    }
)


def unusable_reason(
    codec: str, payload: bytes, decoded: Sequence[firmware_bridge.Decoded]
) -> str | None:
    """Why a payload that decoded is still unusable from an alarm sensor, or None.

    Decoding to nothing at all, or a zigbee2mqtt state with keys nobody knows (an alarm
    spelled in a way we do not read), is unusable; a known state that reports no alarm
    (``{"water_leak": false}``) is the all-clear and fine.
    """
    if codec.lower() == "z2m":
        document = json.loads(payload)
        unknown = set(document) - Z2M_STATE_KEYS - Z2M_HARMLESS_KEYS
        if unknown:
            return f"z2m state with unknown keys {sorted(unknown)[:10]}"
        if not decoded and not set(document) & Z2M_STATE_KEYS:
            return "z2m state with no alarm, contact or battery field"
        return None
    if not decoded:
        return f"{codec} payload decodes to nothing"
    return None


class UnreadableWindow:
    """Remembers when each device last raised ``unreadable_event``."""

    def __init__(
        self, window_s: float = UNREADABLE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``window_s`` seconds between two alarms of one device."""
        self.window_s = window_s
        self._clock = clock
        self._raised: dict[str, float] = {}

    def is_open(self, device_id: str) -> bool:
        """True when this device may raise an alarm now (none in the last window)."""
        last = self._raised.get(device_id)
        return last is None or self._clock() - last >= self.window_s

    def record(self, device_ids: Iterable[str]) -> None:
        """These devices' alarms are committed: the window starts now."""
        now = self._clock()
        for device_id in device_ids:
            self._raised[device_id] = now
        if len(self._raised) > 10_000:
            self._raised = {d: t for d, t in self._raised.items() if now - t < self.window_s}
