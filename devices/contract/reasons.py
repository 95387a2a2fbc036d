"""Why a message breaks the contract, in short sentences a firmware developer can act on."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from devices.contract.types import (
    _CLIP,
    _ID_RULE,
    _MAX_ERRORS_SHOWN,
    MAX_REASON_LENGTH,
    ReadingSpec,
)
from devices.errors import DevicesError


class ContractError(DevicesError):
    """A message that breaks the contract as a whole; ``reason`` says why in plain English."""

    def __init__(self, reason: str, *, message_id: str | None = None) -> None:
        reason = _limit(reason)
        super().__init__(reason)
        self.reason = reason
        # The message's own id when it could be read, so the server can still ack it.
        self.message_id = message_id


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
