"""The zigbee2mqtt JSON decoder: events from contact/occupancy/leak/smoke, status from battery."""

import pytest

from firmware_bridge import DecodedEvent, DecodedStatus, DecodeError, decode, decode_zigbee2mqtt


def test_contact_false_is_door_open_with_battery_status() -> None:
    """One payload gives both the door event and the battery status."""
    payload = b'{"contact": false, "battery": 87, "linkquality": 120, "voltage": 3000}'
    assert decode_zigbee2mqtt(payload) == [
        DecodedEvent("door_open", {"contact": False}),
        DecodedStatus(battery=87, battery_low=None, link_quality=120),
    ]


def test_contact_true_is_door_closed() -> None:
    """contact true means the magnet is against the reed switch: the door is closed."""
    assert decode_zigbee2mqtt(b'{"contact": true}') == [
        DecodedEvent("door_closed", {"contact": True})
    ]


@pytest.mark.parametrize(
    ("key", "event"),
    [("occupancy", "motion"), ("water_leak", "water_leak"), ("smoke", "smoke")],
)
def test_alarm_keys_true_are_events(key: str, event: str) -> None:
    """occupancy, water_leak and smoke set to true are events."""
    assert decode_zigbee2mqtt(f'{{"{key}": true}}'.encode()) == [DecodedEvent(event, {key: True})]


@pytest.mark.parametrize("key", ["occupancy", "water_leak", "smoke"])
def test_alarm_keys_false_are_not_events(key: str) -> None:
    """The all-clear for occupancy, water_leak and smoke is no event."""
    assert decode_zigbee2mqtt(f'{{"{key}": false}}'.encode()) == []


def test_several_events_in_one_payload() -> None:
    """A multi-sensor can report smoke and a leak at once; order is contact, motion, leak, smoke."""
    payload = b'{"smoke": true, "water_leak": true, "occupancy": true, "battery_low": true}'
    assert decode_zigbee2mqtt(payload) == [
        DecodedEvent("motion", {"occupancy": True}),
        DecodedEvent("water_leak", {"water_leak": True}),
        DecodedEvent("smoke", {"smoke": True}),
        DecodedStatus(battery=None, battery_low=True, link_quality=None),
    ]


def test_null_values_are_absent() -> None:
    """zigbee2mqtt publishes null for states it does not know yet."""
    assert decode_zigbee2mqtt(b'{"contact": null, "battery": null, "linkquality": 90}') == []


def test_fractional_battery_is_rounded() -> None:
    """Some converters report a fractional percentage."""
    assert decode_zigbee2mqtt(b'{"battery": 67.4}') == [DecodedStatus(battery=67)]


@pytest.mark.parametrize("battery", ["150", "-1", "1e400", "-1e400", "9" * 400])
def test_out_of_range_battery_is_dropped_but_events_are_kept(battery: str) -> None:
    """A nonsensical battery value must not cost the smoke event it came with."""
    payload = f'{{"smoke": true, "battery": {battery}}}'.encode()
    assert decode_zigbee2mqtt(payload) == [DecodedEvent("smoke", {"smoke": True})]


def test_unrelated_payload_gives_nothing() -> None:
    """A state with none of the known keys decodes to no output."""
    assert decode_zigbee2mqtt(b'{"linkquality": 100, "temperature": 21.5}') == []


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"", "payload is not JSON"),
        (b"{contact: false}", "payload is not JSON"),
        (b"\xff\xfe{}", "payload is not UTF-8"),
        (b'{"battery": NaN}', "NaN is not a JSON value"),
        (b"[1, 2]", "payload is JSON list, not an object"),
        (b'"door"', "payload is JSON str, not an object"),
        (b'{"contact": "OFF"}', 'contact must be true or false, got "OFF"'),
        (b'{"occupancy": 1}', "occupancy must be true or false, got 1"),
        (b'{"battery": true}', "battery must be a number, got true"),
        (b'{"battery": "87"}', 'battery must be a number, got "87"'),
        (b"[" * 100_000, "payload is not JSON"),
    ],
)
def test_malformed_payloads(payload: bytes, fragment: str) -> None:
    """Malformed JSON and wrongly typed fields are DecodeErrors, never json or Unicode errors."""
    with pytest.raises(DecodeError) as caught:
        decode("z2m", payload)
    assert fragment in caught.value.reason
    assert str(caught.value).startswith("z2m: ")
