"""Property tests: decoders never fail with anything but their own errors, and floats round-trip.

(Named with a package prefix because tests/ has no __init__.py, so test module names must be
unique across the whole test tree.)
"""

import json
import math
from datetime import datetime
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import (
    CODECS,
    EVENT_TYPES,
    READING_TYPES,
    DecodedEvent,
    DecodedReading,
    DecodedStatus,
    DecodeError,
    MedicalFloat,
    UnknownCodecError,
    decode,
    decode_float,
    decode_sfloat,
)
from firmware_bridge.types import Decoded

# No example database: the tests must not leave a .hypothesis directory in the work tree.
FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ROUND_TRIP = settings(max_examples=300, deadline=None, database=None)

SFLOAT_SPECIAL_RAWS = {0x07FE, 0x07FF, 0x0800, 0x0801, 0x0802}
FLOAT_SPECIAL_RAWS = {0x007FFFFE, 0x007FFFFF, 0x00800000, 0x00800001, 0x00800002}
GATT_CODECS = [codec for codec in CODECS if codec.startswith("gatt-")]


def encode_sfloat(mantissa: int, exponent: int) -> int:
    """Pack a 12-bit mantissa and 4-bit exponent into a raw SFLOAT."""
    return ((exponent & 0xF) << 12) | (mantissa & 0xFFF)


def encode_float(mantissa: int, exponent: int) -> int:
    """Pack a 24-bit mantissa and 8-bit exponent into a raw FLOAT."""
    return ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF)


def exact_value(mantissa: int, exponent: int) -> float:
    """The correctly rounded float of mantissa × 10^exponent, computed with fractions."""
    return float(Fraction(mantissa) * Fraction(10) ** exponent)


def assert_canonical(outputs: list[Decoded]) -> None:
    """Check that decoder outputs use the contract's types and finite values only."""
    assert isinstance(outputs, list)
    for output in outputs:
        if isinstance(output, DecodedReading):
            assert output.type in READING_TYPES
            assert output.values
            assert all(math.isfinite(value) for value in output.values.values())
        elif isinstance(output, DecodedEvent):
            assert output.type in EVENT_TYPES
        else:
            assert isinstance(output, DecodedStatus)
            assert output.battery is None or 0 <= output.battery <= 100


def decode_or_reject(codec: str, payload: bytes) -> None:
    """Decode; a DecodeError with a reason is fine, any other exception fails the test."""
    try:
        outputs = decode(codec, payload)
    except DecodeError as err:
        assert err.reason
        assert err.codec == codec
        return
    assert_canonical(outputs)


@pytest.mark.parametrize("codec", CODECS)
@FUZZ
@given(payload=st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_decode_error(codec: str, payload: bytes) -> None:
    """Any bytes give canonical outputs or a DecodeError, for every codec."""
    decode_or_reject(codec, payload)


@pytest.mark.parametrize("codec", GATT_CODECS)
@FUZZ
@given(flags=st.integers(0, 0xFF), body=st.binary(min_size=1, max_size=40))
def test_gatt_flags_with_plausible_bodies(codec: str, flags: int, body: bytes) -> None:
    """Every flag combination with bodies of every length: outputs or DecodeError only."""
    decode_or_reject(codec, bytes([flags]) + body)


# Field sizes per flag bit, straight from the GATT Specification Supplement: (bit, size) pairs
# after a fixed part that follows the flags byte. "T" marks a 7-byte Date Time field.
GATT_LAYOUTS: dict[str, tuple[list[int | str], list[tuple[int, list[int | str]]]]] = {
    # systolic, diastolic, MAP | time stamp, pulse, user id, measurement status
    "gatt-2a35": ([2, 2, 2], [(0x02, ["T"]), (0x04, [2]), (0x08, [1]), (0x10, [2])]),
    # weight | time stamp, user id, BMI + height
    "gatt-2a9d": ([2], [(0x02, ["T"]), (0x04, [1]), (0x08, [2, 2])]),
    # SpO2, PR | time stamp, measurement status, device and sensor status, PAI
    "gatt-2a5e": ([2, 2], [(0x01, ["T"]), (0x02, [2]), (0x04, [3]), (0x08, [2])]),
    # temperature | time stamp, temperature type
    "gatt-2a1c": ([4], [(0x02, ["T"]), (0x04, [1])]),
    # sequence number, base time | time offset, concentration + type-location, sensor status
    "gatt-2a18": ([2, "T"], [(0x01, [2]), (0x02, [2, 1]), (0x08, [2])]),
}

VALID_DATE_TIMES = st.datetimes(
    min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(
    lambda moment: (
        moment.year.to_bytes(2, "little")
        + bytes([moment.month, moment.day, moment.hour, moment.minute, moment.second])
    )
)
DATE_TIME_FIELDS = VALID_DATE_TIMES | st.just(bytes(7)) | st.binary(min_size=7, max_size=7)


@st.composite
def well_sized_gatt_payload(draw: st.DrawFn, codec: str) -> bytes:
    """Flags plus exactly the fields those flags call for, with arbitrary field contents."""
    flags = draw(st.integers(0, 0xFF))
    fixed, optional = GATT_LAYOUTS[codec]
    sizes = list(fixed)
    for bit, extra in optional:
        if flags & bit:
            sizes.extend(extra)
    payload = bytes([flags])
    for size in sizes:
        if size == "T":
            payload += draw(DATE_TIME_FIELDS)
        else:
            assert isinstance(size, int)
            payload += draw(st.binary(min_size=size, max_size=size))
    return payload


@pytest.mark.parametrize("codec", sorted(GATT_LAYOUTS))
@FUZZ
@given(data=st.data())
def test_gatt_well_sized_payloads(codec: str, data: st.DataObject) -> None:
    """Payloads sized exactly by their flags are never called truncated or over-long."""
    payload = data.draw(well_sized_gatt_payload(codec))
    try:
        outputs = decode(codec, payload)
    except DecodeError as err:
        assert "truncated" not in err.reason
        assert "over-long" not in err.reason
        return
    assert_canonical(outputs)
    assert len(outputs) == 1


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**500), 10**500)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet='abcONFé "\\', max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet="abc", max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
Z2M_KEYS = st.sampled_from(
    ["contact", "occupancy", "water_leak", "smoke", "battery", "battery_low", "linkquality", "x"]
)


@FUZZ
@given(document=st.dictionaries(Z2M_KEYS, JSON_VALUES, max_size=6))
def test_z2m_json_objects_decode_or_raise_decode_error(document: dict[str, object]) -> None:
    """JSON objects with the known keys and values of any JSON type never escape DecodeError."""
    decode_or_reject("z2m", json.dumps(document).encode())


@FUZZ
@given(document=JSON_VALUES)
def test_z2m_any_json_document(document: object) -> None:
    """Any JSON document, object or not, gives outputs or a DecodeError."""
    decode_or_reject("z2m", json.dumps(document).encode())


@ROUND_TRIP
@given(codec=st.text(max_size=12).filter(lambda name: name.lower() not in CODECS))
def test_unknown_codec_is_rejected(codec: str) -> None:
    """A codec name that is not in CODECS raises UnknownCodecError naming it."""
    with pytest.raises(UnknownCodecError) as caught:
        decode(codec, b"\x00")
    assert caught.value.codec == codec


@ROUND_TRIP
@given(mantissa=st.integers(-2048, 2047), exponent=st.integers(-8, 7))
def test_sfloat_round_trip(mantissa: int, exponent: int) -> None:
    """Every representable SFLOAT encodes and decodes back to its mantissa, exponent and value."""
    raw = encode_sfloat(mantissa, exponent)
    decoded = decode_sfloat(raw)
    if raw in SFLOAT_SPECIAL_RAWS:
        assert decoded.special is not None
        return
    assert decoded == MedicalFloat(mantissa, exponent, None)
    assert decoded.to_float() == exact_value(mantissa, exponent)
    assert encode_sfloat(decoded.mantissa, decoded.exponent) == raw


@ROUND_TRIP
@given(mantissa=st.integers(-(2**23), 2**23 - 1), exponent=st.integers(-128, 127))
def test_float_round_trip(mantissa: int, exponent: int) -> None:
    """Every representable FLOAT encodes and decodes back to its mantissa, exponent and value."""
    raw = encode_float(mantissa, exponent)
    decoded = decode_float(raw)
    if raw in FLOAT_SPECIAL_RAWS:
        assert decoded.special is not None
        return
    assert decoded == MedicalFloat(mantissa, exponent, None)
    assert decoded.to_float() == exact_value(mantissa, exponent)
    assert encode_float(decoded.mantissa, decoded.exponent) == raw


@ROUND_TRIP
@given(raw=st.integers(0, 0xFFFF))
def test_every_sfloat_bit_pattern_decodes(raw: int) -> None:
    """All 2^16 patterns decode; re-encoding gives the same bits."""
    decoded = decode_sfloat(raw)
    assert encode_sfloat(decoded.mantissa, decoded.exponent) == raw
    assert (decoded.special is not None) == (raw in SFLOAT_SPECIAL_RAWS)


@ROUND_TRIP
@given(
    systolic=st.integers(0, 300),
    diastolic=st.integers(0, 200),
    mean=st.integers(0, 250),
    pulse=st.none() | st.integers(1, 250),
)
def test_blood_pressure_mmhg_round_trip(
    systolic: int, diastolic: int, mean: int, pulse: int | None
) -> None:
    """Whole-mmHg pressures encoded as SFLOATs come back unchanged."""
    flags = 0x04 if pulse is not None else 0x00
    fields = [systolic, diastolic, mean] + ([pulse] if pulse is not None else [])
    payload = bytes([flags]) + b"".join(
        encode_sfloat(value, 0).to_bytes(2, "little") for value in fields
    )
    [reading] = decode("gatt-2a35", payload)
    assert isinstance(reading, DecodedReading)
    expected = {"systolic": systolic, "diastolic": diastolic, "mean_arterial": mean}
    if pulse is not None:
        expected["pulse"] = pulse
    assert reading.values == expected


@ROUND_TRIP
@given(
    heart_rate=st.integers(1, 0xFFFF),
    energy=st.none() | st.integers(0, 0xFFFF),
    rr_intervals=st.lists(st.integers(0, 0xFFFF), max_size=9),
)
def test_heart_rate_round_trip(
    heart_rate: int, energy: int | None, rr_intervals: list[int]
) -> None:
    """Heart rate, energy and RR-intervals survive encoding in either value format."""
    wide = heart_rate > 0xFF
    flags = (0x01 if wide else 0) | (0x08 if energy is not None else 0)
    flags |= 0x10 if rr_intervals else 0
    payload = bytes([flags]) + heart_rate.to_bytes(2 if wide else 1, "little")
    if energy is not None:
        payload += energy.to_bytes(2, "little")
    payload += b"".join(rr.to_bytes(2, "little") for rr in rr_intervals)
    [reading] = decode("gatt-2a37", payload)
    assert isinstance(reading, DecodedReading)
    assert reading.values == {"heart_rate": heart_rate}
    assert reading.meta.get("energy_expended_kj") == energy
    assert reading.meta.get("rr_intervals_s", ()) == tuple(rr / 1024 for rr in rr_intervals)
