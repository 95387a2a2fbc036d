"""The MQTT contract v1: topics, readings, events and status, and docs/mqtt.md kept true to it."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware_bridge
from devices import EXPECTED_INTERVAL_S
from devices.contract import (
    CLOCK_SKEW_LIMIT,
    EVENT_TYPES,
    MAX_BATCH,
    MAX_PAYLOAD_BYTES,
    READING_TYPES,
    ContractError,
    EventIn,
    FieldSpec,
    ReadingIn,
    Rejected,
    StatusIn,
    TopicParts,
    event_json_schema,
    parse_event,
    parse_readings,
    parse_status,
    parse_topic,
    raw_message_id,
    reading_json_schema,
    status_json_schema,
)
from devices.errors import DevicesError
from devices.topics import device_may_publish

DOC = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"
DEVICE = "home-8d41c07a2e"
PROPERTY = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode(document: object) -> bytes:
    """A payload as a device would send it."""
    return json.dumps(document).encode()


def reading(type_: str = "blood_pressure", **overrides: Any) -> dict[str, Any]:
    """A valid reading of ``type_`` (required values at mid-range), changed by ``overrides``."""
    spec = READING_TYPES[type_]
    values: dict[str, float | int] = {
        key: field.minimum + (field.maximum - field.minimum) / 2
        for key, field in spec.fields.items()
        if field.required
    }
    if type_ == "steps":
        values = {"steps": 4200}
    if type_ == "blood_pressure":
        values = {"systolic": 142, "diastolic": 91, "pulse": 71}
    document: dict[str, Any] = {
        "id": "b17-000041",
        "ts": "2025-03-01T08:30:05Z",
        "type": type_,
        "values": values,
    }
    document.update(overrides)
    return document


def only(payload: bytes) -> ReadingIn | Rejected:
    """The single result of a one-reading payload."""
    results = parse_readings(payload)
    assert len(results) == 1
    return results[0]


def accepted(payload: bytes) -> ReadingIn:
    """The reading of a payload that must be valid."""
    result = only(payload)
    assert isinstance(result, ReadingIn), result
    return result


def rejected(payload: bytes) -> Rejected:
    """The rejection of a one-reading payload that must be invalid."""
    result = only(payload)
    assert isinstance(result, Rejected), result
    return result


def refused(parse: Any, payload: bytes) -> ContractError:
    """The ContractError a parser must raise for a payload."""
    with pytest.raises(ContractError) as caught:
        parse(payload)
    return caught.value


# --- topics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("reading", TopicParts(DEVICE, "reading", None)),
        ("event", TopicParts(DEVICE, "event", None)),
        ("status", TopicParts(DEVICE, "status", None)),
        ("raw/gatt-2a35", TopicParts(DEVICE, "raw", "gatt-2a35")),
        ("raw/z2m", TopicParts(DEVICE, "raw", "z2m")),
    ],
)
def test_device_topics_are_taken_apart(channel: str, expected: TopicParts) -> None:
    topic = f"vaki/v1/d/{DEVICE}/{channel}"
    assert parse_topic(topic) == expected
    # What the contract accepts, the broker's ACL lets the device publish.
    assert device_may_publish(DEVICE, topic)


@pytest.mark.parametrize("channel", ["ack", "cmd"])
def test_server_topics_are_refused(channel: str) -> None:
    with pytest.raises(ContractError, match=r"^topic is server-to-device$"):
        parse_topic(f"vaki/v1/d/{DEVICE}/{channel}")


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("vaki/v2/d/home-8d41c07a2e/reading", "is not under vaki/v1/d/"),
        ("home/livingroom/temperature", "is not under vaki/v1/d/"),
        ("vaki/v1/d/ab/reading", "device id 'ab'"),
        ("vaki/v1/d/+/reading", "device id '+'"),
        ("vaki/v1/d/home 1/reading", "device id 'home 1'"),
        ("vaki/v1/d/home-1\n/reading", "device id"),
        ("vaki/v1/d/home-8d41c07a2e", "no channel"),
        ("vaki/v1/d/home-8d41c07a2e/", "no channel"),
        ("vaki/v1/d/home-8d41c07a2e/readings", "unknown channel 'readings'"),
        ("vaki/v1/d/home-8d41c07a2e/reading/", "unknown channel"),
        ("vaki/v1/d/home-8d41c07a2e/status/x", "unknown channel"),
        ("vaki/v1/d/home-8d41c07a2e/raw", "unknown channel 'raw'"),
        ("vaki/v1/d/home-8d41c07a2e/raw/", "codec ''"),
        ("vaki/v1/d/home-8d41c07a2e/raw/gatt/2a35", "codec 'gatt/2a35'"),
        ("vaki/v1/d/home-8d41c07a2e/raw/#", "codec '#'"),
    ],
)
def test_topics_outside_the_contract_are_refused(topic: str, reason: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_topic(topic)
    assert reason in caught.value.reason


def test_contract_error_is_a_devices_error_with_its_reason() -> None:
    error = ContractError("batch is empty", message_id="b17-1")
    assert isinstance(error, DevicesError)
    assert (str(error), error.reason, error.message_id) == (
        "batch is empty",
        "batch is empty",
        "b17-1",
    )
    assert ContractError("x").message_id is None


# --- readings -----------------------------------------------------------------------------


def test_a_reading_is_parsed_with_its_time_in_utc() -> None:
    result = accepted(encode(reading(ts="2025-03-01T08:30:05.250+01:00")))
    assert result == ReadingIn(
        message_id="b17-000041",
        type="blood_pressure",
        values={"systolic": 142, "diastolic": 91, "pulse": 71},
        device_ts=datetime(2025, 3, 1, 7, 30, 5, 250_000, tzinfo=UTC),
    )
    assert result.device_ts is not None
    assert result.device_ts.utcoffset() is not None


def test_numbers_are_kept_as_sent() -> None:
    values = accepted(encode(reading("weight", values={"weight": 81, "bmi": 24.5}))).values
    assert values == {"weight": 81, "bmi": 24.5}
    assert type(values["weight"]) is int
    assert type(values["bmi"]) is float


@pytest.mark.parametrize("ts", [None, "absent"])
def test_a_reading_without_ts_has_no_device_time(ts: str | None) -> None:
    document = reading(ts=ts)
    if ts == "absent":
        del document["ts"]
    assert accepted(encode(document)).device_ts is None


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2025-03-01T08:30:05Z", datetime(2025, 3, 1, 8, 30, 5, tzinfo=UTC)),
        ("2025-03-01t08:30:05z", datetime(2025, 3, 1, 8, 30, 5, tzinfo=UTC)),
        ("2025-03-01 08:30:05+00:00", datetime(2025, 3, 1, 8, 30, 5, tzinfo=UTC)),
        ("2025-03-01T00:30:05-08:00", datetime(2025, 3, 1, 8, 30, 5, tzinfo=UTC)),
        ("2025-03-01T08:30:05.123456789Z", datetime(2025, 3, 1, 8, 30, 5, 123456, tzinfo=UTC)),
        ("2025-03-01T08:30:05.1Z", datetime(2025, 3, 1, 8, 30, 5, 100_000, tzinfo=UTC)),
    ],
)
def test_rfc_3339_forms_are_accepted(ts: str, expected: datetime) -> None:
    device_ts = accepted(encode(reading(ts=ts))).device_ts
    assert device_ts == expected
    assert device_ts is not None
    assert device_ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("2025-03-01T08:30:05", "ts has no time zone offset"),
        ("2025-03-01T08:30:05.5", "ts has no time zone offset"),
        ("2025-02-30T08:30:05Z", "ts '2025-02-30T08:30:05Z' is not a real date and time"),
        ("2025-03-01T24:00:00Z", "is not a real date and time"),
        ("2025-03-01T08:30:60Z", "is not a real date and time"),
        ("2025-03-01T08:30:05+24:00", "is not a real date and time"),
        ("9999-12-31T23:59:59-01:00", "is not a real date and time"),
        ("2025-03-01", "is not an RFC 3339 time"),
        ("20250301T083005Z", "is not an RFC 3339 time"),
        ("2025-03-01T08:30Z", "is not an RFC 3339 time"),
        ("2025-03-01T08:30:05+0100", "is not an RFC 3339 time"),
        ("2025-03-01T08:30:05Z\n", "is not an RFC 3339 time"),
        ("２０２５-03-01T08:30:05Z", "is not an RFC 3339 time"),
        ("yesterday", "is not an RFC 3339 time"),
        (1740817805, "ts must be a string"),
    ],
)
def test_bad_timestamps_reject_the_reading_but_keep_its_id(ts: object, reason: str) -> None:
    result = rejected(encode(reading(ts=ts)))
    assert reason in result.reason
    assert result.message_id == "b17-000041"


def test_an_unknown_reading_type_is_rejected_by_name() -> None:
    result = rejected(encode(reading(type="bloodpressure")))
    assert result.reason == "unknown reading type 'bloodpressure'"
    assert result.message_id == "b17-000041"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": None}, "type is missing"),
        ({"type": 7}, "type must be a string, got 7"),
        ({"values": None}, "values must be an object, got null"),
        ({"values": [142, 91]}, "values must be an object, got a list"),
        ({"values": {"diastolic": 91}}, "values.systolic is missing"),
        ({"values": {"systolic": 142, "diastolic": 91, "heart": 7}}, "unknown field values.heart"),
        ({"timestamp": "2025-03-01T08:30:05Z"}, "unknown field timestamp"),
        ({"values": {"systolic": "142", "diastolic": 91}}, "values.systolic must be a number"),
        ({"values": {"systolic": True, "diastolic": 91}}, "values.systolic must be a number"),
        ({"values": {"systolic": [142], "diastolic": 91}}, "values.systolic must be a number"),
    ],
)
def test_malformed_readings_are_rejected_naming_the_field(
    change: dict[str, Any], reason: str
) -> None:
    document = reading(**change)
    if document["type"] is None:
        del document["type"]
    result = rejected(encode(document))
    assert reason in result.reason
    assert result.message_id == "b17-000041"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_values_are_rejected(number: str) -> None:
    payload = (
        '{"id": "t-1", "type": "temperature", "values": {"temperature": ' + number + "}}"
    ).encode()
    result = rejected(payload)
    assert "values.temperature must be a finite number" in result.reason


@pytest.mark.parametrize(
    ("type_", "values", "reason"),
    [
        ("spo2", {"spo2": 150}, "implausible value: spo2 150 % is outside 50–100 %"),
        (
            "spo2",
            {"spo2": 97, "pulse": 19.5},
            "implausible value: pulse 19.5 bpm is outside 20–250 bpm",
        ),
        (
            "temperature",
            {"temperature": 98.6},
            "implausible value: temperature 98.6 °C is outside 25–45 °C",
        ),
        (
            "weight",
            {"weight": 81, "height": 181},
            "implausible value: height 181 m is outside 0.5–2.5 m",
        ),
        ("glucose", {"glucose": 0}, "implausible value: glucose 0 mmol/L is outside 0.5–50 mmol/L"),
        ("steps", {"steps": -1}, "implausible value: steps -1 is outside 0–100000"),
        ("steps", {"steps": 100_001}, "implausible value: steps 100001 is outside 0–100000"),
    ],
)
def test_physically_impossible_values_are_rejected(
    type_: str, values: dict[str, float], reason: str
) -> None:
    assert rejected(encode(reading(type_, values=values))).reason == reason


def _extremes() -> list[tuple[str, str, FieldSpec]]:
    """Every value field of every reading type."""
    return [
        (type_, key, field)
        for type_, spec in READING_TYPES.items()
        for key, field in spec.fields.items()
    ]


@pytest.mark.parametrize(("type_", "key", "field"), _extremes())
def test_range_ends_are_plausible_and_beyond_them_is_not(
    type_: str, key: str, field: FieldSpec
) -> None:
    base = reading(type_)["values"]
    if type_ == "blood_pressure":
        # Keep systolic above diastolic whichever end is being tried.
        base = {"systolic": 300, "diastolic": 20}
    for edge in (field.minimum, field.maximum):
        assert accepted(encode(reading(type_, values={**base, key: edge}))).values[key] == edge
    step = 1 if field.integer else 0.001
    for outside in (field.minimum - step, field.maximum + step):
        result = rejected(encode(reading(type_, values={**base, key: outside})))
        assert result.reason.startswith(f"implausible value: {key} ")


@pytest.mark.parametrize(("systolic", "diastolic"), [(90, 90), (80, 95)])
def test_systolic_must_be_above_diastolic(systolic: int, diastolic: int) -> None:
    result = rejected(encode(reading(values={"systolic": systolic, "diastolic": diastolic})))
    assert result.reason == (
        f"implausible value: systolic {systolic} mmHg is not above diastolic {diastolic} mmHg"
    )


@pytest.mark.parametrize("steps", [4200.5, 4200.0])
def test_steps_are_whole_numbers(steps: float) -> None:
    result = rejected(encode(reading("steps", values={"steps": steps})))
    assert result.reason == f"values.steps must be a whole number, got {steps!r}"


def test_optional_values_sent_as_null_are_left_out() -> None:
    document = reading(values={"systolic": 142, "diastolic": 91, "pulse": None})
    assert accepted(encode(document)).values == {"systolic": 142, "diastolic": 91}


@pytest.mark.parametrize("message_id", ["", "x" * 65, "b17 000041", "b17/000041", "bä-1", 41, None])
def test_unusable_ids_reject_the_reading_without_an_id(message_id: object) -> None:
    result = rejected(encode(reading(id=message_id)))
    assert result.message_id is None
    assert "id must be 1–64 characters" in result.reason or "id is missing" in result.reason


@pytest.mark.parametrize(
    "message_id", ["x" * 64, "6f1c2a4e-3b9d-4f7a-9c1e-0d2b5a8e7f31", "a.b_c:d-e"]
)
def test_ids_of_the_allowed_characters_are_accepted(message_id: str) -> None:
    assert accepted(encode(reading(id=message_id))).message_id == message_id


def test_a_batch_keeps_good_items_and_rejects_bad_ones_one_by_one() -> None:
    items: list[Any] = [
        reading("weight", id="b17-000042", values={"weight": 81.4}),
        reading("spo2", id="b17-000043", values={"spo2": 196}),
        "not a reading",
        reading("heart_rate", id="b17-000044", ts=None, values={"heart_rate": 64}),
    ]
    results = parse_readings(encode({"batch": items}))
    assert [type(result) for result in results] == [ReadingIn, Rejected, Rejected, ReadingIn]
    assert [result.message_id for result in results] == [
        "b17-000042",
        "b17-000043",
        None,
        "b17-000044",
    ]
    bad = results[1]
    assert isinstance(bad, Rejected)
    assert bad.reason == "implausible value: spo2 196 % is outside 50–100 %"
    # The raw bytes are that item alone, ready for a dead letter.
    assert bad.raw == json.dumps(items[1]).encode()
    assert (
        json.loads(results[2].raw if isinstance(results[2], Rejected) else b"") == "not a reading"
    )


def test_an_id_twice_in_one_batch_is_stored_once() -> None:
    first = reading(id="b17-7")
    second = reading(id="b17-7", values={"systolic": 150, "diastolic": 95})
    results = parse_readings(encode({"batch": [first, second]}))
    assert isinstance(results[0], ReadingIn)
    assert isinstance(results[1], Rejected)
    assert results[1].message_id == "b17-7"
    assert results[1].reason == "id 'b17-7' appears more than once in this batch"


def test_a_full_batch_is_accepted() -> None:
    items = [
        {"id": f"b{i}", "type": "heart_rate", "values": {"heart_rate": 60}}
        for i in range(MAX_BATCH)
    ]
    payload = json.dumps({"batch": items}, separators=(",", ":")).encode()
    assert len(payload) <= MAX_PAYLOAD_BYTES
    results = parse_readings(payload)
    assert len(results) == MAX_BATCH
    assert all(isinstance(result, ReadingIn) for result in results)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "payload is empty"),
        (b"\xff\xfe{}", "payload is not valid UTF-8: invalid start byte at byte 0"),
        (b"nope", "payload is not valid JSON: Expecting value at line 1 column 1"),
        (b'{"id": "b17-1",', "payload is not valid JSON: Expecting property name enclosed"),
        (b"[1, 2]", "a reading payload must be a JSON object, got a list"),
        (b'"hello"', "a reading payload must be a JSON object, got 'hello'"),
        (b'{"batch": {}}', "batch must be a list, got an object"),
        (b'{"batch": []}', "batch is empty"),
        (b'{"batch": [], "seq": 4}', "a batch payload has only the key 'batch', not 'seq'"),
        (b"[" * 5000 + b"]" * 5000, "payload is not valid JSON"),
        (b"1" * 5000, "payload is not valid JSON: a number has too many digits"),
        (encode({"batch": [{}] * (MAX_BATCH + 1)}), "batch has 501 items; the limit is 500"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), "payload is 65537 bytes; the limit is 65536 bytes"),
    ],
)
def test_unreadable_reading_payloads_are_refused_whole(payload: bytes, reason: str) -> None:
    error = refused(parse_readings, payload)
    assert error.reason.startswith(reason)
    assert error.message_id is None


def test_a_payload_of_exactly_the_limit_is_read() -> None:
    document = encode(reading())
    payload = document + b" " * (MAX_PAYLOAD_BYTES - len(document))
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert isinstance(only(payload), ReadingIn)


# --- events -------------------------------------------------------------------------------


def event(type_: str = "panic", **overrides: Any) -> dict[str, Any]:
    """An event document, changed by ``overrides``."""
    document: dict[str, Any] = {"id": "b17-000045", "ts": "2025-03-01T08:41:17Z", "type": type_}
    document.update(overrides)
    return document


def test_a_panic_event_without_data_has_empty_data() -> None:
    assert parse_event(encode(event())) == EventIn(
        message_id="b17-000045",
        type="panic",
        data={},
        device_ts=datetime(2025, 3, 1, 8, 41, 17, tzinfo=UTC),
    )


def test_known_data_is_checked_and_unknown_data_is_kept() -> None:
    data = {"confidence": 0.93, "pendant_battery": 41, "vendor": {"code": "F2"}}
    assert parse_event(encode(event("fall", data=data))).data == data


def test_the_alarm_event_types_are_exactly_the_alarms_of_the_contract() -> None:
    alarms = {type_ for type_, spec in EVENT_TYPES.items() if spec.alarm}
    assert alarms == {"panic", "fall", "help_request", "smoke", "water_leak"}
    assert set(EVENT_TYPES) == alarms | {
        "door_open",
        "door_closed",
        "motion",
        "bed_exit",
        "bed_enter",
        "checkin_answer",
        "reminder_ack",
        "call_request",
    }


def test_a_checkin_answer_carries_its_prompt() -> None:
    data = {"prompt_id": "c-5521", "answer": "good", "answers": {"slept": "well"}}
    parsed = parse_event(encode(event("checkin_answer", data=data)))
    assert (parsed.type, parsed.data) == ("checkin_answer", data)


def test_an_event_with_an_unknown_top_level_key_is_still_that_event() -> None:
    """An alarm must not turn into an unreadable event because firmware added a key."""
    parsed = parse_event(encode(event("panic", room="hall")))
    assert parsed.type == "panic"
    assert parsed.message_id == "b17-000045"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (event("foo"), "unknown event type 'foo'"),
        (event("checkin_answer"), "data is missing"),
        (event("checkin_answer", data={"answer": "good"}), "data.prompt_id is missing"),
        (
            event("reminder_ack", data={"prompt_id": 5521}),
            "data.prompt_id must be a string, got 5521",
        ),
        (event("door_open", data={"door": 3}), "data.door must be a string, got 3"),
        (event("fall", data={"confidence": 1.5}), "data.confidence must be at most 1"),
        (event("fall", data={"confidence": True}), "data.confidence must be a number, got true"),
        (
            event("checkin_answer", data={"prompt_id": "p", "answer": "ok", "answers": []}),
            "data.answers must be an object",
        ),
        (event(data=[]), "data must be an object, got a list"),
        (event(data=None), "data must be an object, got null"),
        (event(ts="2025-03-01T08:41:17"), "ts has no time zone offset"),
        (event(type=None), "type is missing"),
        (event("motion", data={"room": "hall\u0000"}), "data.room contains a NUL character"),
        ({"id": "b17-000045", "batch": [event()]}, "events are never batched"),
    ],
)
def test_unusable_events_are_refused_with_their_id(document: dict[str, Any], reason: str) -> None:
    if document.get("type", "") is None:
        del document["type"]
    error = refused(parse_event, encode(document))
    assert reason in error.reason
    # The server still acks the id and raises an "unreadable event" alarm.
    assert error.message_id == "b17-000045"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"PANIC", "payload is not valid JSON"),
        (b"\xc3\x28", "payload is not valid UTF-8"),
        (b"[]", "an event payload must be a JSON object, got a list"),
        (encode(event(id="bad id")), "id must be 1–64 characters"),
        (encode(event(id=None)), "id must be 1–64 characters"),
    ],
)
def test_events_without_a_usable_id_are_refused_without_one(payload: bytes, reason: str) -> None:
    error = refused(parse_event, payload)
    assert reason in error.reason
    assert error.message_id is None


# --- status -------------------------------------------------------------------------------


def test_a_status_keeps_unknown_keys_as_extra() -> None:
    payload = encode({"online": True, "battery": 87, "fw": "1.4.2", "rssi": -61, "up": 3600})
    assert parse_status(payload) == StatusIn(
        online=True, battery=87, firmware="1.4.2", extra={"rssi": -61, "up": 3600}
    )


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"online": False}, StatusIn(online=False, battery=None, firmware=None, extra={})),
        ({}, StatusIn(online=None, battery=None, firmware=None, extra={})),
        ({"battery": 0, "fw": None}, StatusIn(online=None, battery=0, firmware=None, extra={})),
        ({"battery": 100}, StatusIn(online=None, battery=100, firmware=None, extra={})),
    ],
)
def test_every_status_field_is_optional(document: dict[str, Any], expected: StatusIn) -> None:
    assert parse_status(encode(document)) == expected


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"online": "yes"}, "online must be true or false, got 'yes'"),
        ({"online": 1}, "online must be true or false, got 1"),
        ({"battery": 101}, "battery must be at most 100, got 101"),
        ({"battery": -1}, "battery must be at least 0, got -1"),
        ({"battery": 50.5}, "battery must be a whole number, got 50.5"),
        ({"battery": True}, "battery must be a whole number, got true"),
        ({"fw": 142}, "fw must be a string, got 142"),
        ({"fw": "1" * 65}, "fw must be at most 64 characters"),
        ({"note": "a\u0000b"}, "note contains a NUL character"),
        ([], "a status payload must be a JSON object, got a list"),
    ],
)
def test_unusable_status_is_refused(document: object, reason: str) -> None:
    assert reason in refused(parse_status, encode(document)).reason


def test_several_problems_are_reported_together_and_briefly() -> None:
    document = {"online": 1, "battery": "full", "fw": 2, "extra": 1}
    reason = refused(parse_status, encode(document)).reason
    assert reason == (
        "online must be true or false, got 1; battery must be a whole number, got 'full'; "
        "fw must be a string, got 2"
    )
    values = {f"v{i}": i for i in range(10)}
    many = rejected(encode(reading("heart_rate", values=values))).reason
    assert many.endswith("and 8 more problems")


# --- never anything but a result or ContractError -----------------------------------------

PARSERS = (parse_readings, parse_event, parse_status)

message_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
value_keys = sorted({key for spec in READING_TYPES.values() for key in spec.fields})
near_values = st.dictionaries(
    st.sampled_from(value_keys) | st.text(max_size=4),
    st.floats() | st.integers(min_value=-(10**6), max_value=10**6) | json_values,
    max_size=5,
)
timestamps = (
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat())
    | st.datetimes().map(lambda moment: moment.isoformat())
    | json_values
)
near_readings = st.fixed_dictionaries(
    {
        "id": message_ids | json_values,
        "type": st.sampled_from(sorted(READING_TYPES)) | json_values,
        "values": near_values,
    },
    optional={"ts": timestamps, "extra": json_values},
)
near_events = st.fixed_dictionaries(
    {
        "id": message_ids | json_values,
        "type": st.sampled_from(sorted(EVENT_TYPES)) | json_values,
    },
    optional={
        "ts": timestamps,
        "data": st.dictionaries(
            st.sampled_from(["confidence", "door", "room", "prompt_id", "answer", "answers"])
            | st.text(max_size=4),
            json_values,
            max_size=4,
        )
        | json_values,
    },
)


def outcome(parse: Any, payload: bytes) -> object:
    """What a parser makes of a payload; anything but ContractError fails the test."""
    try:
        return parse(payload)
    except ContractError as err:
        assert err.reason
        assert err.reason.isprintable()
        assert len(err.reason) <= 500
        return err


def check_readings(results: object) -> None:
    """Accepted readings are within the contract; rejections carry their item's JSON."""
    if isinstance(results, ContractError):
        return
    assert isinstance(results, list)
    for result in results:
        if isinstance(result, Rejected):
            assert result.reason.isprintable()
            assert len(result.reason) <= 500
            json.loads(result.raw)
            continue
        assert isinstance(result, ReadingIn)
        spec = READING_TYPES[result.type]
        for key, value in result.values.items():
            field = spec.fields[key]
            assert not isinstance(value, bool)
            assert field.minimum <= value <= field.maximum
        assert result.device_ts is None or result.device_ts.tzinfo is UTC


@PROPERTY
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_a_result_or_a_contract_error(payload: bytes) -> None:
    check_readings(outcome(parse_readings, payload))
    outcome(parse_event, payload)
    outcome(parse_status, payload)


@PROPERTY
@given(json_values)
def test_arbitrary_json_gives_a_result_or_a_contract_error(document: object) -> None:
    payload = json.dumps(document).encode()
    check_readings(outcome(parse_readings, payload))
    check_readings(outcome(parse_readings, json.dumps({"batch": [document]}).encode()))
    outcome(parse_event, payload)
    outcome(parse_status, payload)


@PROPERTY
@given(st.lists(near_readings, min_size=1, max_size=20))
def test_almost_valid_readings_give_a_result_per_item(items: list[dict[str, Any]]) -> None:
    results = outcome(parse_readings, json.dumps({"batch": items}).encode())
    check_readings(results)
    assert isinstance(results, list)
    assert len(results) == len(items)


@PROPERTY
@given(near_events)
def test_almost_valid_events_give_an_event_or_a_contract_error(document: dict[str, Any]) -> None:
    result = outcome(parse_event, json.dumps(document).encode())
    if isinstance(result, EventIn):
        assert result.type in EVENT_TYPES
        assert result.message_id == document["id"]


# RFC 3339 offsets are whole minutes; historic zones (local mean time) are not.
zones = st.just(UTC) | st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@st.composite
def valid_readings(draw: st.DrawFn) -> dict[str, Any]:
    """Any reading the contract accepts, drawn from the type table."""
    type_ = draw(st.sampled_from(sorted(READING_TYPES)))
    values: dict[str, float | int] = {}
    for key, field in READING_TYPES[type_].fields.items():
        if not field.required and draw(st.booleans()):
            continue
        if field.integer:
            values[key] = draw(st.integers(int(field.minimum), int(field.maximum)))
        else:
            values[key] = draw(st.floats(field.minimum, field.maximum))
    if type_ == "blood_pressure":
        values["systolic"] = draw(st.floats(max(40.0, values["diastolic"] + 1), 300))
    moment = draw(st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1), timezones=zones))
    return {
        "id": draw(message_ids),
        "ts": moment.isoformat(),
        "type": type_,
        "values": values,
    }


@PROPERTY
@given(valid_readings())
def test_every_valid_reading_is_accepted_unchanged(document: dict[str, Any]) -> None:
    result = accepted(encode(document))
    assert result.message_id == document["id"]
    assert result.values == document["values"]
    assert result.device_ts == datetime.fromisoformat(document["ts"])


@PROPERTY
@given(
    st.text(max_size=80)
    | st.from_regex(r"vaki/v1/d/[A-Za-z0-9_-]{1,66}/[a-z/2-9-]{0,20}", fullmatch=True)
)
def test_arbitrary_topics_give_parts_or_a_contract_error(topic: str) -> None:
    try:
        parts = parse_topic(topic)
    except ContractError as err:
        assert err.reason
        return
    assert device_may_publish(parts.device_id, topic)


@pytest.mark.parametrize("depth", range(900, 1100, 7))
def test_deep_nesting_is_handled_at_any_depth(depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    check_readings(outcome(parse_readings, b'{"batch": [' + nested + b"]}"))
    event_payload = b'{"id": "e-1", "type": "panic", "data": {"x": ' + nested + b"}}"
    outcome(parse_event, event_payload)
    outcome(parse_status, b'{"x": ' + nested + b"}")


# --- JSON Schemas -------------------------------------------------------------------------


def test_a_reading_schema_describes_the_reading_and_is_a_fresh_copy() -> None:
    schema = reading_json_schema("spo2")
    assert schema["properties"]["type"]["const"] == "spo2"
    assert schema["required"] == ["id", "type", "values"]
    assert schema["additionalProperties"] is False
    values = schema["$defs"]["Spo2Values"]
    assert values["properties"]["spo2"]["minimum"] == 50
    assert values["properties"]["spo2"]["maximum"] == 100
    assert values["required"] == ["spo2"]
    schema["title"] = "changed"
    assert reading_json_schema("spo2")["title"] == "Spo2Reading"


def test_event_and_status_schemas_keep_unknown_keys_open() -> None:
    checkin = event_json_schema("checkin_answer")
    assert checkin["required"] == ["id", "type", "data"]
    assert checkin["$defs"]["CheckinAnswerData"]["additionalProperties"] is True
    assert "data" not in event_json_schema("panic")["required"]
    status = status_json_schema()
    assert status["additionalProperties"] is True
    assert status["properties"]["fw"]["anyOf"][0]["maxLength"] == 64


def test_unknown_types_have_no_schema() -> None:
    with pytest.raises(KeyError):
        reading_json_schema("bloodpressure")
    with pytest.raises(KeyError):
        event_json_schema("alarm")


# --- docs/mqtt.md stays true --------------------------------------------------------------

SCHEMA_BLOCK = re.compile(r"<!-- schema: (\w+)(?: (\w+))? -->\n```json\n(.*?)\n```", re.DOTALL)


def schema_targets() -> list[tuple[str, str | None, dict[str, Any]]]:
    """Every schema the document must show, in its order."""
    return [
        *(("reading", type_, reading_json_schema(type_)) for type_ in READING_TYPES),
        *(("event", type_, event_json_schema(type_)) for type_ in EVENT_TYPES),
        ("status", None, status_json_schema()),
    ]


def render_schemas() -> str:
    """The document's JSON Schemas section body, as it should read."""
    blocks = []
    for kind, type_, schema in schema_targets():
        title = f"### {kind.capitalize()} `{type_}`" if type_ else f"### {kind.capitalize()}"
        marker = f"<!-- schema: {kind} {type_} -->" if type_ else f"<!-- schema: {kind} -->"
        body = json.dumps(schema, indent=2, ensure_ascii=False)
        blocks.append(f"{title}\n\n{marker}\n```json\n{body}\n```\n")
    return "\n".join(blocks)


def test_the_document_shows_exactly_the_schemas_the_server_validates_with() -> None:
    doc = DOC.read_text(encoding="utf-8")
    shown = {
        (kind, type_ or None): json.loads(body) for kind, type_, body in SCHEMA_BLOCK.findall(doc)
    }
    expected = {(kind, type_): schema for kind, type_, schema in schema_targets()}
    assert shown == expected, (
        "docs/mqtt.md is out of date; replace its schema blocks with:\n\n" + render_schemas()
    )


def test_the_document_tables_match_the_type_tables() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for type_, spec in READING_TYPES.items():
        for index, (key, field) in enumerate(spec.fields.items()):
            unit = f"{field.unit}, whole number" if field.integer else field.unit
            # The type is named on its first row only.
            first = f"| `{type_}` |" if index == 0 else "| |"
            row = (
                f"{first} `{key}` | {unit} | {field.minimum:g}–{field.maximum:g} | "
                f"{'yes' if field.required else 'no'} |"
            )
            assert f"\n{row}\n" in doc, row
    for type_, event_spec in EVENT_TYPES.items():
        fields = "; ".join(
            f"`{key}`: {field.kind}"
            + (
                f" {field.minimum:g}–{field.maximum:g}"
                if field.minimum is not None and field.maximum is not None
                else ""
            )
            + (", required" if field.required else "")
            for key, field in event_spec.fields.items()
        )
        row = f"| `{type_}` | {fields or '—'} | {'**yes**' if event_spec.alarm else 'no'} |"
        assert f"\n{row}\n" in doc, row
    for kind, seconds in EXPECTED_INTERVAL_S.items():
        assert f"\n| `{kind.value}` | {seconds // 60} min |\n" in doc
    codecs = re.findall(
        r"^\| `([a-z0-9-]+)` \| (?:Bluetooth GATT|a Zigbee2MQTT)", doc, re.MULTILINE
    )
    assert codecs == list(firmware_bridge.CODECS)


def test_the_document_states_the_limits_and_the_raw_id_rule() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert f"| payload size | 64 KiB ({MAX_PAYLOAD_BYTES:,} bytes) on every topic" in doc
    assert f"| items in one batch | {MAX_BATCH} |" in doc
    assert f"more than **{CLOCK_SKEW_LIMIT.seconds // 60} minutes** apart" in doc
    example = bytes.fromhex("048e005b006c004700")
    assert raw_message_id(example) == hashlib.sha256(example).hexdigest()[:32]
    assert f"has the id `{raw_message_id(example)}`" in doc
    assert f"it is acked as {raw_message_id(example)}" in doc


def test_the_document_examples_are_valid_and_its_reasons_are_real() -> None:
    doc = DOC.read_text(encoding="utf-8")
    checked = 0
    for example in re.findall(r"```json\n\s*(\{.*?)\n\s*```", doc, re.DOTALL):
        document, payload = json.loads(example), example.encode()
        if "values" in document or "batch" in document:
            results = parse_readings(payload)
            # The worked example's third batch item is the one meant to be refused.
            refused_ids = {item.message_id for item in results if isinstance(item, Rejected)}
            assert refused_ids <= {"b17-000044"}, results
        elif document.get("type") in EVENT_TYPES:
            assert parse_event(payload).type == document["type"]
        elif "online" in document:
            assert parse_status(payload).online == document["online"]
        else:
            continue
        checked += 1
    assert checked >= 8
    produced = [
        refused(parse_readings, b"nope").reason,
        rejected(encode(reading(type="bloodpressure"))).reason,
        rejected(encode(reading(values={"systolic": 142}))).reason,
        rejected(encode(reading("heart_rate", values={"heart_rate": 60, "heartrate": 60}))).reason,
        rejected(encode(reading(values={"systolic": "142", "diastolic": 91}))).reason,
        rejected(encode(reading("temperature", values={"temperature": 98.6}))).reason,
        rejected(encode(reading(ts="2025-03-01T08:30:05"))).reason,
        refused(parse_readings, encode({"batch": [{}] * 612})).reason,
        rejected(encode(reading("spo2", values={"spo2": 196}))).reason,
    ]
    assert produced[2] == "values.diastolic is missing"
    for reason in produced:
        assert reason in doc, reason
