"""Decoder for the JSON state objects zigbee2mqtt publishes for a device."""

import json

from .errors import DecodeError
from .types import Decoded, DecodedEvent, DecodedStatus

# Key, the value that means "it happened", and the event it becomes; other values are no event.
_ALARM_KEYS = (("occupancy", "motion"), ("water_leak", "water_leak"), ("smoke", "smoke"))
_LINK_QUALITY_MAX = 255


def _reject_constant(name: str) -> object:
    """Refuse NaN and Infinity, which Python's json accepts but JSON does not."""
    raise DecodeError(f"payload is not JSON: {name} is not a JSON value")


def _parse_object(payload: bytes) -> dict[str, object]:
    """Parse the payload as a UTF-8 JSON object."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DecodeError(f"payload is not UTF-8: {err.reason} at byte {err.start}") from err
    try:
        document: object = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        raise DecodeError(f"payload is not JSON: {err}") from err
    if not isinstance(document, dict):
        raise DecodeError(f"payload is JSON {type(document).__name__}, not an object")
    return document


def _optional_bool(document: dict[str, object], key: str) -> bool | None:
    """Return a boolean field; absent or null is None, any other type is a DecodeError."""
    value = document.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise DecodeError(f"{key} must be true or false, got {json.dumps(value)[:40]}")


def _battery(document: dict[str, object]) -> int | None:
    """Return the battery percentage; a number outside 0-100 is dropped rather than trusted."""
    value = document.get("battery")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"battery must be a number, got {json.dumps(value)[:40]}")
    # Some converters report nonsense such as 200 or -1; that must not void the payload's events.
    # Comparing first also keeps huge integers away from float conversion; inf fails it too.
    if not 0 <= value <= 100:
        return None
    return round(value)


def _link_quality(document: dict[str, object]) -> int | None:
    """Return linkquality (0-255) if it is a plausible integer; it is informational only."""
    value = document.get("linkquality")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _LINK_QUALITY_MAX:
        return value
    return None


def decode_zigbee2mqtt(payload: bytes) -> list[Decoded]:
    """Decode a zigbee2mqtt device state into events (door, motion, leak, smoke) and status.

    ``contact`` false is door_open and true door_closed; ``occupancy``, ``water_leak`` and
    ``smoke`` are events only when true; ``battery`` or ``battery_low`` give a status update.
    A field of the wrong JSON type is a DecodeError: the device is not what the codec expects.
    """
    document = _parse_object(payload)
    outputs: list[Decoded] = []
    contact = _optional_bool(document, "contact")
    if contact is not None:
        outputs.append(
            DecodedEvent("door_closed" if contact else "door_open", {"contact": contact})
        )
    for key, event_type in _ALARM_KEYS:
        if _optional_bool(document, key):
            outputs.append(DecodedEvent(event_type, {key: True}))

    battery = _battery(document)
    battery_low = _optional_bool(document, "battery_low")
    if battery is not None or battery_low is not None:
        outputs.append(DecodedStatus(battery, battery_low, _link_quality(document)))
    return outputs
