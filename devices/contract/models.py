"""The pydantic models built from the type tables: the validators and the published JSON Schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    create_model,
)
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError

from devices.contract.reasons import _quote
from devices.contract.types import (
    _MESSAGE_ID_CHARS,
    EVENT_TYPES,
    MAX_FIRMWARE_LENGTH,
    READING_TYPES,
    DataFieldSpec,
    EventSpec,
    FieldSpec,
    ReadingSpec,
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
