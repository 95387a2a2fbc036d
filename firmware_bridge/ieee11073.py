"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) medical number formats."""

import enum
import math
from dataclasses import dataclass

from .errors import DecodeError


class SpecialValue(enum.Enum):
    """The reserved bit patterns of SFLOAT and FLOAT; their value reads well in error messages."""

    NAN = "NaN (not a number)"
    NRES = "NRes (not at this resolution)"
    POSITIVE_INFINITY = "+INFINITY"
    NEGATIVE_INFINITY = "-INFINITY"
    RESERVED = "a reserved value (reserved for future use)"


# The special values all have exponent 0 and a mantissa at the edge of its range.
_SFLOAT_SPECIALS: dict[int, SpecialValue] = {
    0x07FF: SpecialValue.NAN,
    0x0800: SpecialValue.NRES,
    0x07FE: SpecialValue.POSITIVE_INFINITY,
    0x0802: SpecialValue.NEGATIVE_INFINITY,
    0x0801: SpecialValue.RESERVED,
}
_FLOAT_SPECIALS: dict[int, SpecialValue] = {
    0x007FFFFF: SpecialValue.NAN,
    0x00800000: SpecialValue.NRES,
    0x007FFFFE: SpecialValue.POSITIVE_INFINITY,
    0x00800002: SpecialValue.NEGATIVE_INFINITY,
    0x00800001: SpecialValue.RESERVED,
}


@dataclass(frozen=True)
class MedicalFloat:
    """A decoded SFLOAT/FLOAT: ``mantissa × 10^exponent``, or one of the special values."""

    mantissa: int
    exponent: int
    special: SpecialValue | None = None

    def to_float(self) -> float:
        """Return the value as a float; NaN, NRes and reserved become nan, infinities inf."""
        if self.special is SpecialValue.POSITIVE_INFINITY:
            return math.inf
        if self.special is SpecialValue.NEGATIVE_INFINITY:
            return -math.inf
        if self.special is not None:
            return math.nan
        # Exact integer arithmetic, then a single correctly rounded conversion to float.
        scale: int = 10 ** abs(self.exponent)
        if self.exponent >= 0:
            return float(self.mantissa * scale)
        return self.mantissa / scale

    def require(self, field: str) -> float:
        """Return the finite value, or raise DecodeError naming the field and the special value."""
        if self.special is not None:
            raise DecodeError(f"{field} is {self.special.value}")
        return self.to_float()


def _signed(raw: int, bits: int) -> int:
    """Interpret the low ``bits`` bits of ``raw`` as a two's complement integer."""
    raw &= (1 << bits) - 1
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


def decode_sfloat(raw: int) -> MedicalFloat:
    """Decode a 16-bit SFLOAT: 4-bit signed exponent, 12-bit signed mantissa."""
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"SFLOAT must be a 16-bit unsigned integer, got {raw}")
    special = _SFLOAT_SPECIALS.get(raw)
    return MedicalFloat(_signed(raw, 12), _signed(raw >> 12, 4), special)


def decode_float(raw: int) -> MedicalFloat:
    """Decode a 32-bit FLOAT: 8-bit signed exponent, 24-bit signed mantissa."""
    if not 0 <= raw <= 0xFFFFFFFF:
        raise ValueError(f"FLOAT must be a 32-bit unsigned integer, got {raw}")
    special = _FLOAT_SPECIALS.get(raw)
    return MedicalFloat(_signed(raw, 24), _signed(raw >> 24, 8), special)
