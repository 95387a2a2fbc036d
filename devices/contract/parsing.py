"""Bytes from the broker into typed values, or ``ContractError``; nothing else escapes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from devices.contract.models import _EVENT_MODELS, _READING_MODELS, _STATUS_KEYS, _StatusModel
from devices.contract.reasons import ContractError, _clip, _explain, _got, _limit, _number, _quote
from devices.contract.types import (
    _CODEC_PATTERN,
    _DEVICE_CHANNELS,
    _SERVER_CHANNELS,
    MAX_BATCH,
    MAX_PAYLOAD_BYTES,
    MESSAGE_ID_PATTERN,
    READING_TYPES,
    EventIn,
    ReadingIn,
    Rejected,
    StatusIn,
    TopicParts,
)
from devices.topics import DEVICE_ID_PATTERN, DEVICE_PREFIX


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
