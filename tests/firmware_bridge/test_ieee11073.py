"""IEEE 11073-20601 SFLOAT/FLOAT decoding, with vectors worked out by hand from the standard."""

import math

import pytest

from firmware_bridge import DecodeError, MedicalFloat, SpecialValue, decode_float, decode_sfloat

# SFLOAT: bits 15-12 are the signed exponent, bits 11-0 the signed mantissa.
SFLOAT_VECTORS = [
    # 0x0078: exponent 0, mantissa 120 -> 120
    (0x0078, 120, 0, 120.0),
    # 0xF16D: exponent 0xF = -1, mantissa 0x16D = 365 -> 36.5
    (0xF16D, 365, -1, 36.5),
    # 0x0FFF: exponent 0, mantissa 0xFFF = -1 -> -1
    (0x0FFF, -1, 0, -1.0),
    # 0xFF33: exponent -1, mantissa 0xF33 = -205 -> -20.5
    (0xFF33, -205, -1, -20.5),
    # 0x3002: exponent 3, mantissa 2 -> 2000
    (0x3002, 2, 3, 2000.0),
    # 0x7001: exponent 7 (largest), mantissa 1 -> 1e7
    (0x7001, 1, 7, 1e7),
    # 0x8001: exponent 0x8 = -8 (smallest), mantissa 1 -> 1e-8
    (0x8001, 1, -8, 1e-8),
    # 0xB05F: exponent 0xB = -5, mantissa 95 -> 0.00095 (95 mg/dL of glucose in kg/L)
    (0xB05F, 95, -5, 0.00095),
    # 0xF800: exponent -1, mantissa 0x800 = -2048; only exponent 0 makes it NRes -> -204.8
    (0xF800, -2048, -1, -204.8),
    # 0x17FF: exponent 1, mantissa 2047; not NaN because the exponent is not 0 -> 20470
    (0x17FF, 2047, 1, 20470.0),
    # 0x0000: zero
    (0x0000, 0, 0, 0.0),
]

SFLOAT_SPECIALS = [
    (0x07FF, SpecialValue.NAN),
    (0x0800, SpecialValue.NRES),
    (0x07FE, SpecialValue.POSITIVE_INFINITY),
    (0x0802, SpecialValue.NEGATIVE_INFINITY),
    (0x0801, SpecialValue.RESERVED),
]

# FLOAT: bits 31-24 are the signed exponent, bits 23-0 the signed mantissa.
FLOAT_VECTORS = [
    # 0xFF00016E: exponent -1, mantissa 0x16E = 366 -> 36.6 (°C)
    (0xFF00016E, 366, -1, 36.6),
    # 0xFE000E1D: exponent -2, mantissa 0xE1D = 3613 -> 36.13
    (0xFE000E1D, 3613, -2, 36.13),
    # 0x00FFFFFF: exponent 0, mantissa -1 -> -1
    (0x00FFFFFF, -1, 0, -1.0),
    # 0xFFFFFF9C: exponent -1, mantissa 0xFFFF9C = -100 -> -10.0
    (0xFFFFFF9C, -100, -1, -10.0),
    # 0x02000005: exponent 2, mantissa 5 -> 500
    (0x02000005, 5, 2, 500.0),
    # 0x80000001: exponent -128 (smallest), mantissa 1 -> 1e-128
    (0x80000001, 1, -128, 1e-128),
    # 0x7F000001: exponent 127 (largest), mantissa 1 -> 1e127
    (0x7F000001, 1, 127, 1e127),
    # 0xFF800000: exponent -1, mantissa -2^23; not NRes because the exponent is not 0
    (0xFF800000, -(2**23), -1, -838860.8),
]

FLOAT_SPECIALS = [
    (0x007FFFFF, SpecialValue.NAN),
    (0x00800000, SpecialValue.NRES),
    (0x007FFFFE, SpecialValue.POSITIVE_INFINITY),
    (0x00800002, SpecialValue.NEGATIVE_INFINITY),
    (0x00800001, SpecialValue.RESERVED),
]


@pytest.mark.parametrize(("raw", "mantissa", "exponent", "value"), SFLOAT_VECTORS)
def test_sfloat_vectors(raw: int, mantissa: int, exponent: int, value: float) -> None:
    """Each hand-built SFLOAT decodes to its mantissa, exponent and value."""
    decoded = decode_sfloat(raw)
    assert decoded == MedicalFloat(mantissa, exponent, None)
    assert decoded.to_float() == value
    assert decoded.require("x") == value


@pytest.mark.parametrize(("raw", "mantissa", "exponent", "value"), FLOAT_VECTORS)
def test_float_vectors(raw: int, mantissa: int, exponent: int, value: float) -> None:
    """Each hand-built FLOAT decodes to its mantissa, exponent and value."""
    decoded = decode_float(raw)
    assert decoded == MedicalFloat(mantissa, exponent, None)
    assert decoded.to_float() == value


@pytest.mark.parametrize(("raw", "special"), SFLOAT_SPECIALS)
def test_sfloat_specials(raw: int, special: SpecialValue) -> None:
    """The five reserved SFLOAT patterns are recognised as special values."""
    assert decode_sfloat(raw).special is special


@pytest.mark.parametrize(("raw", "special"), FLOAT_SPECIALS)
def test_float_specials(raw: int, special: SpecialValue) -> None:
    """The five reserved FLOAT patterns are recognised as special values."""
    assert decode_float(raw).special is special


@pytest.mark.parametrize(
    ("special", "expected"),
    [
        (SpecialValue.NAN, math.nan),
        (SpecialValue.NRES, math.nan),
        (SpecialValue.RESERVED, math.nan),
        (SpecialValue.POSITIVE_INFINITY, math.inf),
        (SpecialValue.NEGATIVE_INFINITY, -math.inf),
    ],
)
def test_special_to_float(special: SpecialValue, expected: float) -> None:
    """Special values map to nan or a signed infinity when asked for a float."""
    result = MedicalFloat(0, 0, special).to_float()
    if math.isnan(expected):
        assert math.isnan(result)
    else:
        assert result == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (0x07FF, "systolic is NaN (not a number)"),
        (0x0800, "systolic is NRes (not at this resolution)"),
        (0x07FE, "systolic is +INFINITY"),
        (0x0802, "systolic is -INFINITY"),
        (0x0801, "systolic is a reserved value (reserved for future use)"),
    ],
)
def test_require_rejects_special_with_reason(raw: int, message: str) -> None:
    """require() turns a special value into a DecodeError naming the field and the value."""
    with pytest.raises(DecodeError) as caught:
        decode_sfloat(raw).require("systolic")
    assert caught.value.reason == message


@pytest.mark.parametrize("raw", [-1, 0x10000])
def test_sfloat_rejects_out_of_range_raw(raw: int) -> None:
    """A raw SFLOAT outside 16 bits is a programming error, not a payload error."""
    with pytest.raises(ValueError, match="16-bit"):
        decode_sfloat(raw)


@pytest.mark.parametrize("raw", [-1, 0x1_0000_0000])
def test_float_rejects_out_of_range_raw(raw: int) -> None:
    """A raw FLOAT outside 32 bits is a programming error, not a payload error."""
    with pytest.raises(ValueError, match="32-bit"):
        decode_float(raw)
