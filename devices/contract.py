"""The MQTT contract v1 as code: topics and the JSON that devices publish, validated without I/O.

Every ``parse_*`` function turns bytes from the broker into typed values or raises
``ContractError`` with a short reason a firmware developer can act on; nothing else escapes.
The pydantic models built here at import are both the validators and the published JSON Schemas.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError

from devices.errors import DevicesError
from devices.topics import DEVICE_ID_PATTERN, DEVICE_PREFIX

__all__ = [
    "CLOCK_SKEW_LIMIT",
    "EVENT_TYPES",
    "MAX_BATCH",
    "MAX_PAYLOAD_BYTES",
    "MESSAGE_ID_PATTERN",
    "READING_TYPES",
    "ContractError",
    "DataFieldSpec",
    "EventIn",
    "EventSpec",
    "FieldSpec",
    "ReadingIn",
    "ReadingSpec",
    "Rejected",
    "StatusIn",
    "TopicParts",
    "event_json_schema",
    "parse_event",
    "parse_readings",
    "parse_status",
    "parse_topic",
    "raw_message_id",
    "reading_json_schema",
    "status_json_schema",
]

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_BATCH = 500
# Beyond this the device's clock is flagged as wrong; the server's receive time is kept anyway.
CLOCK_SKEW_LIMIT = timedelta(minutes=5)
_MESSAGE_ID_CHARS = "A-Za-z0-9._:-"
MESSAGE_ID_PATTERN = re.compile(f"[{_MESSAGE_ID_CHARS}]{{1,64}}")
MAX_FIRMWARE_LENGTH = 64
# DeadLetter.reason holds 500 characters; a reason never needs more than a sentence or three.
MAX_REASON_LENGTH = 500

Channel = Literal["reading", "event", "status", "raw"]
_DEVICE_CHANNELS: Mapping[str, Channel] = {
    "reading": "reading",
    "event": "event",
    "status": "status",
}
_SERVER_CHANNELS = frozenset({"ack", "cmd"})
_CODEC_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ID_RULE = "id must be 1–64 characters from A–Z, a–z, 0–9 and . _ : -"
# Shown in a reason instead of a long string or a deep structure the device sent.
_CLIP = 40
_MAX_ERRORS_SHOWN = 3


class ContractError(DevicesError):
    """A message that breaks the contract as a whole; ``reason`` says why in plain English."""

    def __init__(self, reason: str, *, message_id: str | None = None) -> None:
        reason = _limit(reason)
        super().__init__(reason)
        self.reason = reason
        # The message's own id when it could be read, so the server can still ack it.
        self.message_id = message_id


# --- what parsing returns -----------------------------------------------------------------


@dataclass(frozen=True)
class TopicParts:
    """A device topic taken apart: whose it is, which channel, and the codec of ``raw/{codec}``."""

    device_id: str
    channel: Channel
    codec: str | None


@dataclass(frozen=True)
class ReadingIn:
    """One valid reading, values in the contract's units, ``device_ts`` in UTC when sent."""

    message_id: str
    type: str
    values: dict[str, float | int]
    device_ts: datetime | None


@dataclass(frozen=True)
class EventIn:
    """One valid event; ``data`` keeps every key sent, known ones checked."""

    message_id: str
    type: str
    data: dict[str, Any]
    device_ts: datetime | None


@dataclass(frozen=True)
class StatusIn:
    """A device's retained status; ``None`` where a field was not sent."""

    online: bool | None
    battery: int | None
    firmware: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """One unusable item of an otherwise readable payload, kept for a dead letter."""

    message_id: str | None
    reason: str
    raw: bytes


# --- the reading and event types ----------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One value of a reading: its unit and the range that is physically possible."""

    unit: str
    minimum: float
    maximum: float
    required: bool
    description: str
    # Counts (steps) are whole numbers; everything else may have decimals.
    integer: bool = False


@dataclass(frozen=True)
class ReadingSpec:
    """A reading type and its value fields."""

    type: str
    description: str
    fields: Mapping[str, FieldSpec]


@dataclass(frozen=True)
class DataFieldSpec:
    """One known key of an event's ``data``."""

    kind: Literal["string", "number", "object"]
    required: bool
    description: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class EventSpec:
    """An event type, whether it is an alarm, and the known keys of its ``data``."""

    type: str
    description: str
    alarm: bool
    fields: Mapping[str, DataFieldSpec]


def _reading(type_: str, description: str, **fields: FieldSpec) -> ReadingSpec:
    """A reading type with its fields in the order firmware developers read them."""
    return ReadingSpec(type_, description, MappingProxyType(fields))


def _event(type_: str, description: str, *, alarm: bool, **fields: DataFieldSpec) -> EventSpec:
    """An event type with the known keys of its data."""
    return EventSpec(type_, description, alarm, MappingProxyType(fields))


# Plausibility ranges say what a body or a device can physically produce, so that a unit
# mix-up (kPa for mmHg, lb for kg, °F for °C) is caught; they are not clinical thresholds.
_PULSE = FieldSpec("bpm", 20, 250, required=False, description="Pulse rate")
READING_TYPES: Mapping[str, ReadingSpec] = MappingProxyType(
    {
        spec.type: spec
        for spec in (
            _reading(
                "blood_pressure",
                "A blood pressure measurement; systolic must be above diastolic.",
                systolic=FieldSpec("mmHg", 40, 300, required=True, description="Systolic pressure"),
                diastolic=FieldSpec(
                    "mmHg", 20, 200, required=True, description="Diastolic pressure"
                ),
                pulse=_PULSE,
                mean_arterial=FieldSpec(
                    "mmHg", 30, 250, required=False, description="Mean arterial pressure"
                ),
            ),
            _reading(
                "weight",
                "A body weight measurement from a scale.",
                weight=FieldSpec("kg", 20, 350, required=True, description="Body weight"),
                bmi=FieldSpec("kg/m²", 8, 90, required=False, description="Body mass index"),
                height=FieldSpec("m", 0.5, 2.5, required=False, description="Body height"),
            ),
            _reading(
                "spo2",
                "A blood oxygen saturation measurement from a pulse oximeter.",
                spo2=FieldSpec("%", 50, 100, required=True, description="Oxygen saturation"),
                pulse=_PULSE,
            ),
            _reading(
                "heart_rate",
                "A heart rate measurement.",
                heart_rate=FieldSpec("bpm", 20, 250, required=True, description="Heart rate"),
            ),
            _reading(
                "temperature",
                "A body temperature measurement.",
                temperature=FieldSpec("°C", 25, 45, required=True, description="Body temperature"),
            ),
            _reading(
                "glucose",
                "A blood glucose measurement.",
                glucose=FieldSpec(
                    "mmol/L", 0.5, 50, required=True, description="Blood glucose concentration"
                ),
            ),
            _reading(
                "steps",
                "Steps counted since the previous steps reading.",
                steps=FieldSpec(
                    "count",
                    0,
                    100_000,
                    required=True,
                    description="Number of steps",
                    integer=True,
                ),
            ),
        )
    }
)

_DOOR = DataFieldSpec("string", required=False, description='Which door, e.g. "front"')
_PROMPT_ID = DataFieldSpec(
    "string", required=True, description="The id of the prompt from the cmd topic"
)
EVENT_TYPES: Mapping[str, EventSpec] = MappingProxyType(
    {
        spec.type: spec
        for spec in (
            _event("panic", "The resident pressed a panic button or pendant.", alarm=True),
            _event(
                "fall",
                "A fall detector detected a fall.",
                alarm=True,
                confidence=DataFieldSpec(
                    "number",
                    required=False,
                    description="How sure the detector is, from 0 to 1",
                    minimum=0,
                    maximum=1,
                ),
            ),
            _event("help_request", 'The resident pressed "I need help" on the tablet.', alarm=True),
            _event("door_open", "A door was opened.", alarm=False, door=_DOOR),
            _event("door_closed", "A door was closed.", alarm=False, door=_DOOR),
            _event(
                "motion",
                "A motion sensor saw movement.",
                alarm=False,
                room=DataFieldSpec("string", required=False, description='Which room, e.g. "hall"'),
            ),
            _event("bed_exit", "The resident got out of bed.", alarm=False),
            _event("bed_enter", "The resident got into bed.", alarm=False),
            _event("smoke", "A smoke detector went off.", alarm=True),
            _event("water_leak", "A water leak sensor got wet.", alarm=True),
            _event(
                "checkin_answer",
                "The resident answered a check-in prompt on the tablet.",
                alarm=False,
                prompt_id=_PROMPT_ID,
                answer=DataFieldSpec(
                    "string", required=True, description='The answer chosen, e.g. "good"'
                ),
                answers=DataFieldSpec(
                    "object",
                    required=False,
                    description="Answers to the prompt's follow-up questions, by question id",
                ),
            ),
            _event(
                "reminder_ack",
                "The resident confirmed a reminder on the tablet.",
                alarm=False,
                prompt_id=_PROMPT_ID,
            ),
            _event("call_request", "The resident asked the care team to call.", alarm=False),
        )
    }
)


# --- pydantic models: the validators and the source of the JSON Schemas --------------------

# The shape RFC 3339 allows; datetime.fromisoformat alone would take other ISO 8601 forms too.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_TS_EXAMPLE = "2025-03-01T08:30:00Z"


def _parse_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp with a zone, as an aware UTC datetime."""
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp", f"ts must be a string such as {_TS_EXAMPLE}")
    if _RFC3339.fullmatch(value) is None:
        raise PydanticCustomError(
            "timestamp", f"ts {_quote(value)} is not an RFC 3339 time such as {_TS_EXAMPLE}"
        )
    try:
        # fromisoformat wants an upper-case T and Z; RFC 3339 allows either case.
        moment = datetime.fromisoformat(value.upper())
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError) as err:
        raise PydanticCustomError(
            "timestamp", f"ts {_quote(value)} is not a real date and time"
        ) from err
    raise PydanticCustomError("timestamp", "ts has no time zone offset")


Timestamp = Annotated[
    datetime,
    PlainValidator(_parse_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "When it happened, RFC 3339 with Z or an offset; UTC preferred",
        }
    ),
]
MessageId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=f"^[{_MESSAGE_ID_CHARS}]+$"),
    Field(description="Unique per device forever; the server acks it"),
]


class _Strict(BaseModel):
    """Base of the message models: exact JSON types, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid")


class _Open(BaseModel):
    """Base of the models that keep keys they do not know (event data, status)."""

    model_config = ConfigDict(strict=True, extra="allow")


class _Message(_Strict):
    """What readings and events share: the id the server acks and the device's time."""

    id: MessageId
    ts: Timestamp | None = None


class _EventMessage(_Message):
    """Events ignore top-level keys they do not know: a panic with an extra key is a panic."""

    model_config = ConfigDict(strict=True, extra="ignore")


def _camel(name: str) -> str:
    """``blood_pressure`` as ``BloodPressure``, for schema titles."""
    return "".join(part.capitalize() for part in name.split("_"))


def _value_annotation(field: FieldSpec) -> tuple[Any, str]:
    """The type of one reading value, a finite number in the plausible range, and its text."""
    if field.integer:
        kind: Any = Annotated[int, Field(ge=field.minimum, le=field.maximum)]
    else:
        kind = Annotated[float, Field(ge=field.minimum, le=field.maximum, allow_inf_nan=False)]
    return kind, f"{field.description}, in {field.unit}"


def _data_annotation(field: DataFieldSpec) -> tuple[Any, str]:
    """The type of one known key of an event's data, and its text."""
    kind: Any
    if field.kind == "string":
        kind = str
    elif field.kind == "object":
        kind = dict[str, Any]
    else:
        kind = Annotated[float, Field(ge=field.minimum, le=field.maximum, allow_inf_nan=False)]
    return kind, field.description


def _fields_of(
    specs: Mapping[str, Any], annotate: Callable[[Any], tuple[Any, str]]
) -> dict[str, Any]:
    """create_model field definitions; optional fields may be absent or null."""
    fields: dict[str, Any] = {}
    for key, spec in specs.items():
        kind, description = annotate(spec)
        if spec.required:
            fields[key] = (Annotated[kind, Field(description=description)], ...)
        else:
            fields[key] = (Annotated[kind | None, Field(description=description)], None)
    return fields


def _reading_model(spec: ReadingSpec) -> type[_Message]:
    """The model of one reading of a type, with its values as a nested model."""
    values = create_model(
        f"{_camel(spec.type)}Values",
        __base__=_Strict,
        __doc__=f"The values of a {spec.type} reading.",
        **_fields_of(spec.fields, _value_annotation),
    )
    return create_model(
        f"{_camel(spec.type)}Reading",
        __base__=_Message,
        __doc__=spec.description,
        type=(cast(Any, Literal)[spec.type], ...),
        values=(values, ...),
    )


def _event_model(spec: EventSpec) -> type[_Message]:
    """The model of one event of a type; data is required only when it has required keys."""
    data = create_model(
        f"{_camel(spec.type)}Data",
        __base__=_Open,
        __doc__=f"The data of a {spec.type} event; other keys are kept.",
        **_fields_of(spec.fields, _data_annotation),
    )
    needs_data = any(field.required for field in spec.fields.values())
    return create_model(
        f"{_camel(spec.type)}Event",
        __base__=_EventMessage,
        __doc__=spec.description,
        type=(cast(Any, Literal)[spec.type], ...),
        data=(data, ...) if needs_data else (data, Field(default_factory=dict)),
    )


class _StatusModel(_Open):
    """A device's status, published retained; other keys (rssi, ...) are kept."""

    model_config = ConfigDict(title="Status")

    online: bool | None = Field(default=None, description="false in the Last Will")
    battery: Annotated[int, Field(ge=0, le=100, description="Battery charge, in %")] | None = None
    fw: (
        Annotated[
            str,
            Field(max_length=MAX_FIRMWARE_LENGTH, description='Firmware version, e.g. "1.4.2"'),
        ]
        | None
    ) = None


_READING_MODELS: Mapping[str, type[_Message]] = {
    type_: _reading_model(spec) for type_, spec in READING_TYPES.items()
}
_EVENT_MODELS: Mapping[str, type[_Message]] = {
    type_: _event_model(spec) for type_, spec in EVENT_TYPES.items()
}
_STATUS_KEYS = frozenset(_StatusModel.model_fields)


def reading_json_schema(type_: str) -> dict[str, Any]:
    """The JSON Schema of one reading of ``type_``; KeyError for an unknown type."""
    return _schema_of(_READING_MODELS[type_])


def event_json_schema(type_: str) -> dict[str, Any]:
    """The JSON Schema of one event of ``type_``; KeyError for an unknown type."""
    return _schema_of(_EVENT_MODELS[type_])


def status_json_schema() -> dict[str, Any]:
    """The JSON Schema of a status payload."""
    return _schema_of(_StatusModel)


class _SchemaGenerator(GenerateJsonSchema):
    """pydantic's JSON Schema without the titles it derives from field names."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        """Never: "Mean Arterial" says less than the key ``mean_arterial`` beside it."""
        return False


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A fresh copy, so that a caller who edits it does not change the next answer."""
    schema: dict[str, Any] = json.loads(_schema_text(model))
    return schema


@cache
def _schema_text(model: type[BaseModel]) -> str:
    """The model's JSON Schema, serialised once."""
    return json.dumps(model.model_json_schema(schema_generator=_SchemaGenerator))


def raw_message_id(payload: bytes) -> str:
    """The id of a ``raw/{codec}`` message: the first 32 hex characters of its SHA-256."""
    return hashlib.sha256(payload).hexdigest()[:32]


# --- topics -------------------------------------------------------------------------------


def parse_topic(topic: str) -> TopicParts:
    """Split ``vaki/v1/d/{device_id}/{channel}``; ContractError for any other topic."""
    if not isinstance(topic, str) or not topic.startswith(DEVICE_PREFIX):
        raise ContractError(f"topic {_quote(topic)} is not under {DEVICE_PREFIX}")
    device_id, _, channel = topic.removeprefix(DEVICE_PREFIX).partition("/")
    if not DEVICE_ID_PATTERN.fullmatch(device_id):
        raise ContractError(f"device id {_quote(device_id)} in the topic is not valid")
    if channel in _DEVICE_CHANNELS:
        return TopicParts(device_id, _DEVICE_CHANNELS[channel], None)
    if channel in _SERVER_CHANNELS:
        raise ContractError("topic is server-to-device")
    if channel.startswith("raw/"):
        codec = channel.removeprefix("raw/")
        if not _CODEC_PATTERN.fullmatch(codec):
            raise ContractError(f"codec {_quote(codec)} in the topic is not valid")
        return TopicParts(device_id, "raw", codec)
    if not channel:
        raise ContractError("topic has no channel after the device id")
    raise ContractError(f"unknown channel {_quote(channel)}")


# --- payloads -----------------------------------------------------------------------------


def parse_readings(payload: bytes) -> list[ReadingIn | Rejected]:
    """One reading or a ``{"batch": [...]}``: each item valid or Rejected with its reason."""
    try:
        document = _load_object(payload, "a reading")
        if "batch" not in document:
            return [_reading_or_rejected(document)]
        items = document["batch"]
        if len(document) > 1:
            others = ", ".join(_quote(key) for key in document if key != "batch")
            raise ContractError(f"a batch payload has only the key 'batch', not {others}")
        if not isinstance(items, list):
            raise ContractError(f"batch must be a list{_got(items)}")
        if not items:
            raise ContractError("batch is empty")
        if len(items) > MAX_BATCH:
            raise ContractError(f"batch has {len(items)} items; the limit is {MAX_BATCH}")
        return _batch(items)
    except ContractError:
        raise
    except Exception as err:  # the contract promises ContractError, whatever the bytes
        raise ContractError(f"payload could not be read ({type(err).__name__})") from err


def _batch(items: list[Any]) -> list[ReadingIn | Rejected]:
    """Each item of a batch; an id seen earlier in the same batch is a duplicate."""
    results: list[ReadingIn | Rejected] = []
    seen: set[str] = set()
    for item in items:
        result = _reading_or_rejected(item)
        message_id = result.message_id
        if message_id is not None:
            if message_id in seen:
                result = _rejected(
                    item, f"id {message_id!r} appears more than once in this batch", message_id
                )
            seen.add(message_id)
        results.append(result)
    return results


def _reading_or_rejected(item: Any) -> ReadingIn | Rejected:
    """One reading, or why it is unusable."""
    try:
        return _check_reading(item)
    except Exception as err:  # one odd item must not cost a batch its other readings
        message_id = _usable_id(item) if isinstance(item, dict) else None
        return _rejected(item, f"reading could not be read ({type(err).__name__})", message_id)


def _check_reading(item: Any) -> ReadingIn | Rejected:
    """One reading, or why it is unusable; may raise only on a bug."""
    if not isinstance(item, dict):
        return _rejected(item, f"a reading must be a JSON object{_got(item)}", None)
    type_ = item.get("type")
    if not isinstance(type_, str) or type_ not in _READING_MODELS:
        return _rejected(item, _type_problem("reading", type_), _usable_id(item))
    model = _READING_MODELS[type_]
    try:
        reading = model.model_validate(item)
    except ValidationError as err:
        return _rejected(item, _explain(err, READING_TYPES[type_]), _usable_id(item))
    values: dict[str, float | int] = {
        key: value for key, value in item["values"].items() if value is not None
    }
    problem = _CROSS_CHECKS.get(type_)
    if problem is not None:
        reason = problem(values)
        if reason is not None:
            return _rejected(item, reason, reading.id)
    return ReadingIn(reading.id, type_, values, reading.ts)


def _systolic_above_diastolic(values: Mapping[str, float | int]) -> str | None:
    """A pressure whose systolic is not above its diastolic is a swapped or broken value."""
    systolic, diastolic = values["systolic"], values["diastolic"]
    if systolic > diastolic:
        return None
    return (
        f"implausible value: systolic {_number(systolic)} mmHg is not above "
        f"diastolic {_number(diastolic)} mmHg"
    )


_CROSS_CHECKS: Mapping[str, Callable[[Mapping[str, float | int]], str | None]] = {
    "blood_pressure": _systolic_above_diastolic,
}


def _rejected(item: Any, reason: str, message_id: str | None) -> Rejected:
    """A Rejected item carrying the JSON of that item alone."""
    try:
        raw = json.dumps(item).encode()
    except (ValueError, RecursionError):
        # Only nesting as deep as the parser's own limit gets here; keep a marker, not nothing.
        raw = b'"item nested too deeply to store"'
    return Rejected(message_id, _limit(reason), raw)


def parse_event(payload: bytes) -> EventIn:
    """One event; ContractError (with ``message_id`` when readable) for anything wrong."""
    try:
        return _parse_event(payload)
    except ContractError:
        raise
    except Exception as err:  # the contract promises ContractError, whatever the bytes
        raise ContractError(f"payload could not be read ({type(err).__name__})") from err


def _parse_event(payload: bytes) -> EventIn:
    """The body of parse_event, free to raise ContractError anywhere."""
    document = _load_object(payload, "an event")
    message_id = _usable_id(document)
    if "batch" in document:
        raise ContractError(
            "events are never batched; publish one event per message", message_id=message_id
        )
    type_ = document.get("type")
    if not isinstance(type_, str) or type_ not in _EVENT_MODELS:
        raise ContractError(_type_problem("event", type_), message_id=message_id)
    data = document.get("data", {})
    problem = _unstorable(data, "data")
    if problem is not None:
        raise ContractError(problem, message_id=message_id)
    try:
        event = _EVENT_MODELS[type_].model_validate(document)
    except ValidationError as err:
        raise ContractError(_explain(err, None), message_id=message_id) from err
    return EventIn(event.id, type_, data, event.ts)


def parse_status(payload: bytes) -> StatusIn:
    """A status payload; ContractError for anything wrong."""
    try:
        document = _load_object(payload, "a status")
        problem = _unstorable(document, "")
        if problem is not None:
            raise ContractError(problem)
        try:
            status = _StatusModel.model_validate(document)
        except ValidationError as err:
            raise ContractError(_explain(err, None)) from err
        extra = {key: value for key, value in document.items() if key not in _STATUS_KEYS}
        return StatusIn(status.online, status.battery, status.fw, extra)
    except ContractError:
        raise
    except Exception as err:  # the contract promises ContractError, whatever the bytes
        raise ContractError(f"payload could not be read ({type(err).__name__})") from err


def _load_object(payload: bytes, what: str) -> dict[str, Any]:
    """The payload's single JSON object, parsed once."""
    if not isinstance(payload, bytes | bytearray):
        raise ContractError(f"payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(
            f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes"
        )
    if not payload:
        raise ContractError("payload is empty")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ContractError(
            f"payload is not valid UTF-8: {err.reason} at byte {err.start}"
        ) from err
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ContractError(
            f"payload is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from err
    except RecursionError as err:
        raise ContractError("payload is not valid JSON: nested too deeply") from err
    except ValueError as err:
        # Python refuses to read integers of more than 4300 digits.
        raise ContractError("payload is not valid JSON: a number has too many digits") from err
    if not isinstance(document, dict):
        raise ContractError(f"{what} payload must be a JSON object{_got(document)}")
    return document


def _usable_id(document: Mapping[str, Any]) -> str | None:
    """The message's id when it is one the server can ack."""
    value = document.get("id")
    if isinstance(value, str) and MESSAGE_ID_PATTERN.fullmatch(value):
        return value
    return None


def _type_problem(kind: str, type_: object) -> str:
    """Why a message's ``type`` picks no model."""
    if type_ is None:
        return "type is missing"
    if not isinstance(type_, str):
        return f"type must be a string{_got(type_)}"
    return f"unknown {kind} type {_quote(type_)}"


_UNSTORABLE = "a NUL character or an unpaired surrogate"


def _unstorable(value: object, path: str) -> str | None:
    """A string a database cannot hold (NUL, unpaired surrogate) anywhere inside ``value``."""
    # Iterative, so that deeply nested data cannot exhaust the stack here.
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, str):
            if not _storable(current):
                return f"{where or 'payload'} contains {_UNSTORABLE}"
        elif isinstance(current, dict):
            for key, child in current.items():
                if not _storable(key):
                    return f"{where or 'payload'} has a key with {_UNSTORABLE}"
                stack.append((child, f"{where}.{_clip(key)}" if where else _clip(key)))
        elif isinstance(current, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(current))
    return None


def _storable(text: str) -> bool:
    """True unless the text has a NUL or cannot be encoded as UTF-8."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- reasons ------------------------------------------------------------------------------


def _explain(error: ValidationError, spec: ReadingSpec | None) -> str:
    """pydantic's errors as a few short sentences naming the field."""
    details = error.errors(include_url=False)
    reasons = [_describe(detail, spec) for detail in details[:_MAX_ERRORS_SHOWN]]
    if len(details) > _MAX_ERRORS_SHOWN:
        reasons.append(f"and {len(details) - _MAX_ERRORS_SHOWN} more problems")
    return "; ".join(reasons)


# Sentences for pydantic's error types; {path} names the field, {got} shows what was sent.
_TEMPLATES: Mapping[str, str] = {
    "missing": "{path} is missing",
    "extra_forbidden": "unknown field {path}",
    "float_type": "{path} must be a number{got}",
    "int_type": "{path} must be a whole number{got}",
    "finite_number": "{path} must be a finite number{got}",
    "string_type": "{path} must be a string{got}",
    "bool_type": "{path} must be true or false{got}",
    "model_type": "{path} must be an object{got}",
    "dict_type": "{path} must be an object{got}",
    "string_too_long": "{path} must be at most {max_length} characters",
    "greater_than_equal": "{path} must be at least {ge}{got}",
    "less_than_equal": "{path} must be at most {le}{got}",
}


def _describe(detail: ErrorDetails, spec: ReadingSpec | None) -> str:
    """One pydantic error as a sentence a firmware developer can act on."""
    kind, loc, value = detail["type"], detail["loc"], detail.get("input")
    if kind == "timestamp":
        return detail["msg"]
    if loc == ("id",) and kind.startswith("string_"):
        return _ID_RULE + _got(value)
    field = spec.fields.get(str(loc[1])) if spec and len(loc) == 2 and loc[0] == "values" else None
    if field is not None and kind in ("greater_than_equal", "less_than_equal"):
        return (
            f"implausible value: {loc[1]} {_amount(value, field.unit)} is outside "
            f"{_span(field.minimum, field.maximum, field.unit)}"
        )
    template = _TEMPLATES.get(kind)
    if template is None:
        return f"{_path(loc)}: {detail['msg']}"
    context = {
        key: _number(item) if isinstance(item, int | float) else item
        for key, item in detail.get("ctx", {}).items()
    }
    return template.format(**context, path=_path(loc), got=_got(value))


def _path(loc: tuple[int | str, ...]) -> str:
    """A location as ``values.systolic`` or ``data.answers``."""
    return ".".join(_clip(str(part)) for part in loc) or "payload"


def _got(value: object) -> str:
    """``, got ...`` with a short rendering of what the device sent."""
    if value is None or isinstance(value, bool):
        shown = json.dumps(value)
    elif isinstance(value, int | float):
        shown = _number(value)
    elif isinstance(value, str):
        shown = _quote(value)
    elif isinstance(value, dict):
        shown = "an object"
    else:
        shown = "a list" if isinstance(value, list) else ""
    return f", got {shown}" if shown else ""


def _number(value: float) -> str:
    """A number as the device wrote it (150, 36.6), shortened when it has very many digits."""
    text = str(value) if isinstance(value, int) else repr(value)
    return text if len(text) <= _CLIP else f"{text[:12]}… ({len(text)} characters)"


def _amount(value: object, unit: str) -> str:
    """A value with its unit; counts have none."""
    shown = _number(value) if isinstance(value, int | float) else _quote(str(value))
    return shown if unit == "count" else f"{shown} {unit}"


def _span(minimum: float, maximum: float, unit: str) -> str:
    """A range such as ``50–100 %``; counts have no unit."""
    span = f"{_number(minimum)}–{_number(maximum)}"
    return span if unit == "count" else f"{span} {unit}"


def _quote(value: object) -> str:
    """A device-supplied string, quoted and clipped for a reason."""
    return repr(_clip(value if isinstance(value, str) else str(value)))


def _clip(text: str) -> str:
    """At most ``_CLIP`` characters of a device-supplied string."""
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


def _limit(reason: str) -> str:
    """A reason a log line and a database column can hold: printable and not too long."""
    if not reason.isprintable():
        reason = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in reason)
    if len(reason) > MAX_REASON_LENGTH:
        reason = reason[: MAX_REASON_LENGTH - 1] + "…"
    return reason
