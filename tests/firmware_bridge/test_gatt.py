"""GATT characteristic decoders, with vectors built by hand from the GATT Specification Supplement.

Byte strings are written as hex with a space between fields; multi-byte fields are little-endian.
"""

from datetime import datetime

import pytest

from firmware_bridge import (
    CODECS,
    DecodedReading,
    DecodeError,
    FirmwareBridgeError,
    UnknownCodecError,
    decode,
    decode_blood_pressure,
    decode_glucose,
    decode_heart_rate,
    decode_plx_spot_check,
    decode_temperature,
    decode_weight,
)
from firmware_bridge.types import Decoded

# GATT Date Time 2024-03-15 08:30:05: year 0x07E8, month 3, day 15, 08:30:05.
TS_HEX = "e807 03 0f 08 1e 05"
TS = datetime(2024, 3, 15, 8, 30, 5)
# Year 0 means "not known": the reading gets no time stamp.
TS_UNKNOWN_HEX = "0000 03 0f 08 1e 05"


def only_reading(outputs: list[Decoded]) -> DecodedReading:
    """Assert the decoder produced exactly one reading and return it."""
    assert len(outputs) == 1
    reading = outputs[0]
    assert isinstance(reading, DecodedReading)
    return reading


def reason_of(decoder_input: bytes, codec: str) -> str:
    """Decode a payload that must fail and return the DecodeError's reason."""
    with pytest.raises(DecodeError) as caught:
        decode(codec, decoder_input)
    assert caught.value.codec == codec
    return caught.value.reason


# --- Blood Pressure Measurement (0x2A35) -------------------------------------------------------
# flags(1) systolic(SFLOAT) diastolic(SFLOAT) MAP(SFLOAT) [time stamp(7)] [pulse(SFLOAT)]
# [user id(1)] [measurement status(2)]; flags: 0x01 kPa, 0x02 time stamp, 0x04 pulse,
# 0x08 user id, 0x10 measurement status.


def test_blood_pressure_mmhg_minimal() -> None:
    """Flags 0x00: mmHg, only the three pressures."""
    # flags 00 | systolic 0x0078=120 | diastolic 0x0050=80 | MAP 0x005D=93
    payload = bytes.fromhex("00 7800 5000 5d00")
    reading = only_reading(decode_blood_pressure(payload))
    assert reading.type == "blood_pressure"
    assert reading.values == {"systolic": 120.0, "diastolic": 80.0, "mean_arterial": 93.0}
    assert reading.ts is None
    assert reading.meta == {"source_unit": "mmHg"}


def test_blood_pressure_kpa_is_converted_to_mmhg() -> None:
    """Flags 0x01: kPa values are converted with 7.50062 and rounded to 0.1 mmHg."""
    # flags 01 | systolic 0xF0A0=160e-1=16.0 kPa | diastolic 0xF06B=10.7 kPa | MAP 0xF07D=12.5 kPa
    payload = bytes.fromhex("01 a0f0 6bf0 7df0")
    reading = only_reading(decode_blood_pressure(payload))
    assert reading.values == {"systolic": 120.0, "diastolic": 80.3, "mean_arterial": 93.8}
    assert reading.meta["source_unit"] == "kPa"


def test_blood_pressure_all_optional_fields() -> None:
    """Flags 0x1E: time stamp, pulse rate, user id and measurement status."""
    # flags 1e | 120 | 80 | 93 | time stamp | pulse 0x0048=72 | user 01 |
    # status 0x000D: bit0 body movement, bit2 irregular pulse, bits3-4=01 pulse above range
    payload = bytes.fromhex(f"1e 7800 5000 5d00 {TS_HEX} 4800 01 0d00")
    reading = only_reading(decode_blood_pressure(payload))
    assert reading.values == {
        "systolic": 120.0,
        "diastolic": 80.0,
        "mean_arterial": 93.0,
        "pulse": 72.0,
    }
    assert reading.ts == TS
    assert reading.meta == {
        "source_unit": "mmHg",
        "user_id": 1,
        "status": ("body_movement", "irregular_pulse", "pulse_rate_above_range"),
    }


def test_blood_pressure_status_below_range_cuff_and_position() -> None:
    """Status bits 1 and 5 and pulse range code 2 (below range) are all reported."""
    # flags 10 | 120 | 80 | 93 | status 0x0032: bit1 cuff loose, bits3-4=10 below, bit5 position
    payload = bytes.fromhex("10 7800 5000 5d00 3200")
    reading = only_reading(decode_blood_pressure(payload))
    assert reading.meta["status"] == (
        "cuff_too_loose",
        "improper_position",
        "pulse_rate_below_range",
    )


def test_blood_pressure_unknown_user_and_unknown_time() -> None:
    """User id 0xFF means unknown user; time stamp year 0 means unknown time."""
    # flags 0a (time stamp, user id) | 120 | 80 | 93 | time stamp with year 0 | user ff
    payload = bytes.fromhex(f"0a 7800 5000 5d00 {TS_UNKNOWN_HEX} ff")
    reading = only_reading(decode_blood_pressure(payload))
    assert reading.ts is None
    assert "user_id" not in reading.meta


def test_blood_pressure_nan_mean_arterial_is_dropped_not_fatal() -> None:
    """A cuff that sends NaN for MAP still yields systolic/diastolic."""
    # flags 04 | 120 | 80 | MAP 0x07FF=NaN | pulse 0x0800=NRes
    payload = bytes.fromhex("04 7800 5000 ff07 0008")
    reading = only_reading(decode_blood_pressure(payload))
    assert reading.values == {"systolic": 120.0, "diastolic": 80.0}
    assert reading.meta["unavailable"] == {
        "mean_arterial": "NaN (not a number)",
        "pulse": "NRes (not at this resolution)",
    }


@pytest.mark.parametrize(
    ("systolic_hex", "reason"),
    [
        ("ff07", "systolic is NaN (not a number)"),
        ("0008", "systolic is NRes (not at this resolution)"),
        ("fe07", "systolic is +INFINITY"),
        ("0208", "systolic is -INFINITY"),
        ("0108", "systolic is a reserved value (reserved for future use)"),
        # 0x0F88: mantissa 0xF88 = -120
        ("880f", "systolic is negative (-120.0)"),
    ],
)
def test_blood_pressure_special_systolic_is_decode_error(systolic_hex: str, reason: str) -> None:
    """A special or negative systolic voids the reading with a clear reason."""
    payload = bytes.fromhex(f"00 {systolic_hex} 5000 5d00")
    assert reason_of(payload, "gatt-2a35") == reason


def test_blood_pressure_nan_diastolic_is_decode_error() -> None:
    """A NaN diastolic voids the reading."""
    payload = bytes.fromhex("00 7800 ff07 5d00")
    assert reason_of(payload, "gatt-2a35") == "diastolic is NaN (not a number)"


@pytest.mark.parametrize(
    ("payload_hex", "fragment"),
    [
        ("", "payload is empty"),
        ("00", "systolic needs 2 byte(s) at offset 1, only 0 left"),
        ("00 7800 5000 5d", "mean arterial pressure needs 2 byte(s) at offset 5, only 1 left"),
        # flags 02 promise a time stamp that is not there
        ("02 7800 5000 5d00", "time stamp needs 2 byte(s) at offset 7, only 0 left"),
        # flags 02 with only 4 of the 7 time stamp bytes
        ("02 7800 5000 5d00 e807 0310", "time stamp needs 5 byte(s) at offset 9, only 2 left"),
        # flags 10 with one byte of the two-byte status
        ("10 7800 5000 5d00 01", "measurement status needs 2 byte(s)"),
    ],
)
def test_blood_pressure_truncated(payload_hex: str, fragment: str) -> None:
    """A payload shorter than its flags require is a DecodeError naming the missing field."""
    assert fragment in reason_of(bytes.fromhex(payload_hex), "gatt-2a35")


def test_blood_pressure_over_long() -> None:
    """Bytes the flags do not account for are a DecodeError."""
    # flags 00 | 120 | 80 | 93 | stray 01
    reason = reason_of(bytes.fromhex("00 7800 5000 5d00 01"), "gatt-2a35")
    assert reason.startswith("payload over-long: 1 unexpected trailing byte(s)")
    assert "flags 0x00" in reason


def test_blood_pressure_invalid_time_stamp() -> None:
    """A time stamp with month 13 is not a date."""
    # flags 02 | 120 | 80 | 93 | 2024-13-15 08:30:05
    payload = bytes.fromhex("02 7800 5000 5d00 e807 0d 0f 08 1e 05")
    assert reason_of(payload, "gatt-2a35").startswith("time stamp is not a valid date and time")


def test_blood_pressure_time_stamp_year_before_1582() -> None:
    """The Date Time year range is 1582-9999 (0 aside)."""
    # year 0x0001
    payload = bytes.fromhex("02 7800 5000 5d00 0100 03 0f 08 1e 05")
    assert reason_of(payload, "gatt-2a35") == "time stamp has year 1 outside 1582-9999"


# --- Weight Measurement (0x2A9D) ---------------------------------------------------------------
# flags(1) weight(uint16) [time stamp(7)] [user id(1)] [BMI(uint16) height(uint16)];
# flags: 0x01 imperial, 0x02 time stamp, 0x04 user id, 0x08 BMI and height.
# Resolutions: weight 0.005 kg / 0.01 lb, BMI 0.1, height 0.001 m / 0.1 in.


def test_weight_si() -> None:
    """Flags 0x00: 14000 × 0.005 kg = 70.0 kg."""
    # flags 00 | weight 0x36B0=14000
    reading = only_reading(decode_weight(bytes.fromhex("00 b036")))
    assert reading.type == "weight"
    assert reading.values == {"weight": 70.0}
    assert reading.meta == {"source_unit": "kg"}
    assert reading.ts is None


def test_weight_si_resolution() -> None:
    """The SI resolution is 5 g: 14002 × 0.005 kg = 70.01 kg."""
    # flags 00 | weight 0x36B2=14002
    reading = only_reading(decode_weight(bytes.fromhex("00 b236")))
    assert reading.values == {"weight": 70.01}


def test_weight_imperial_resolution() -> None:
    """The imperial resolution is 0.01 lb: 10040 × 0.01 lb = 100.4 lb = 45.54 kg."""
    # flags 01 | weight 0x2738=10040
    reading = only_reading(decode_weight(bytes.fromhex("01 3827")))
    assert reading.values == {"weight": 45.54}


def test_weight_imperial_is_converted_to_kg() -> None:
    """Flags 0x01: 15432 × 0.01 lb = 154.32 lb = 70.00 kg."""
    # flags 01 | weight 0x3C48=15432
    reading = only_reading(decode_weight(bytes.fromhex("01 483c")))
    assert reading.values == {"weight": 70.0}
    assert reading.meta == {"source_unit": "lb"}


def test_weight_si_all_optional_fields() -> None:
    """Flags 0x0E: time stamp, user id, BMI 24.2 and height 1.700 m."""
    # flags 0e | weight 14000 | time stamp | user 02 | BMI 0x00F2=242 | height 0x06A4=1700
    payload = bytes.fromhex(f"0e b036 {TS_HEX} 02 f200 a406")
    reading = only_reading(decode_weight(payload))
    assert reading.values == {"weight": 70.0, "bmi": 24.2, "height": 1.7}
    assert reading.ts == TS
    assert reading.meta == {"source_unit": "kg", "user_id": 2}


def test_weight_imperial_height_is_converted_to_metres() -> None:
    """Flags 0x09: imperial with BMI and height 66.9 in = 1.699 m."""
    # flags 09 | weight 15432 | BMI 242 | height 0x029D=669
    reading = only_reading(decode_weight(bytes.fromhex("09 483c f200 9d02")))
    assert reading.values == {"weight": 70.0, "bmi": 24.2, "height": 1.699}


def test_weight_unsuccessful() -> None:
    """Weight 0xFFFF means the measurement was unsuccessful."""
    assert reason_of(bytes.fromhex("00 ffff"), "gatt-2a9d") == (
        "weight measurement unsuccessful (0xFFFF)"
    )


@pytest.mark.parametrize(
    ("payload_hex", "fragment"),
    [
        ("00 b0", "weight needs 2 byte(s) at offset 1, only 1 left"),
        ("04 b036", "user id needs 1 byte(s) at offset 3, only 0 left"),
        # BMI present, height missing
        ("08 b036 f200", "height needs 2 byte(s) at offset 5, only 0 left"),
    ],
)
def test_weight_truncated(payload_hex: str, fragment: str) -> None:
    """Missing fields for the given flags are a DecodeError."""
    assert fragment in reason_of(bytes.fromhex(payload_hex), "gatt-2a9d")


def test_weight_over_long() -> None:
    """BMI/height bytes without the flag are over-long."""
    assert "over-long: 4 unexpected" in reason_of(bytes.fromhex("00 b036 f200 a406"), "gatt-2a9d")


# --- PLX Spot-Check Measurement (0x2A5E) -------------------------------------------------------
# flags(1) SpO2(SFLOAT) PR(SFLOAT) [time stamp(7)] [measurement status(2)]
# [device and sensor status(3)] [pulse amplitude index(SFLOAT)]; flags: 0x01 time stamp,
# 0x02 measurement status, 0x04 device and sensor status, 0x08 PAI, 0x10 device clock not set.


def test_plx_minimal() -> None:
    """Flags 0x00: SpO2 97 %, pulse 72 bpm."""
    # flags 00 | SpO2 0x0061=97 | PR 0x0048=72
    reading = only_reading(decode_plx_spot_check(bytes.fromhex("00 6100 4800")))
    assert reading.type == "spo2"
    assert reading.values == {"spo2": 97.0, "pulse": 72.0}
    assert reading.meta == {}
    assert reading.ts is None


def test_plx_all_optional_fields() -> None:
    """Flags 0x0F: time stamp, measurement status, device status, pulse amplitude index."""
    # flags 0f | SpO2 0x0062=98 | PR 0x0040=64 | time stamp | status 0x0080 validated data |
    # device status 0x000030 poor signal + low perfusion | PAI 0xF034=52e-1=5.2 %
    payload = bytes.fromhex(f"0f 6200 4000 {TS_HEX} 8000 300000 34f0")
    reading = only_reading(decode_plx_spot_check(payload))
    assert reading.values == {"spo2": 98.0, "pulse": 64.0}
    assert reading.ts == TS
    assert reading.meta == {
        "status": ("validated_data",),
        "device_status": ("poor_signal", "low_perfusion"),
        "pulse_amplitude_index": 5.2,
    }


def test_plx_device_clock_not_set_drops_time_stamp() -> None:
    """Flags 0x11: a time stamp from a clock that was never set is not used."""
    # flags 11 | 97 | 72 | time stamp
    reading = only_reading(decode_plx_spot_check(bytes.fromhex(f"11 6100 4800 {TS_HEX}")))
    assert reading.ts is None
    assert reading.meta == {"device_clock_not_set": True}


def test_plx_decimal_spo2() -> None:
    """SpO2 with one decimal: 0xF3CA = 970e-1 = 97.0; pulse NaN is dropped."""
    # flags 00 | SpO2 0xF3CA | PR 0x07FF NaN
    reading = only_reading(decode_plx_spot_check(bytes.fromhex("00 caf3 ff07")))
    assert reading.values == {"spo2": 97.0}
    assert reading.meta == {"unavailable": {"pulse": "NaN (not a number)"}}


@pytest.mark.parametrize(
    ("spo2_hex", "reason"),
    [("ff07", "spo2 is NaN (not a number)"), ("0008", "spo2 is NRes (not at this resolution)")],
)
def test_plx_special_spo2_is_decode_error(spo2_hex: str, reason: str) -> None:
    """A special SpO2 voids the reading."""
    assert reason_of(bytes.fromhex(f"00 {spo2_hex} 4800"), "gatt-2a5e") == reason


@pytest.mark.parametrize(
    ("status_hex", "reason"),
    [
        ("0080", "SpO2 measurement status says invalid measurement"),  # bit 15
        ("0020", "SpO2 measurement status says measurement unavailable"),  # bit 13
        ("0004", "SpO2 measurement status says demonstration data"),  # bit 10
        ("0008", "SpO2 measurement status says testing data"),  # bit 11
    ],
)
def test_plx_status_that_is_not_a_patient_measurement(status_hex: str, reason: str) -> None:
    """Statuses saying the value is invalid, unavailable or not from the person are refused."""
    # flags 02 | 97 | 72 | status
    assert reason_of(bytes.fromhex(f"02 6100 4800 {status_hex}"), "gatt-2a5e") == reason


@pytest.mark.parametrize(
    ("payload_hex", "fragment"),
    [
        ("00 6100", "pulse rate needs 2 byte(s)"),
        ("04 6100 4800 3000", "device and sensor status needs 3 byte(s)"),
        ("08 6100 4800", "pulse amplitude index needs 2 byte(s)"),
    ],
)
def test_plx_truncated(payload_hex: str, fragment: str) -> None:
    """Missing fields for the given flags are a DecodeError."""
    assert fragment in reason_of(bytes.fromhex(payload_hex), "gatt-2a5e")


def test_plx_over_long() -> None:
    """A trailing byte is over-long."""
    assert "over-long" in reason_of(bytes.fromhex("00 6100 4800 00"), "gatt-2a5e")


# --- Temperature Measurement (0x2A1C) ----------------------------------------------------------
# flags(1) temperature(FLOAT) [time stamp(7)] [temperature type(1)];
# flags: 0x01 Fahrenheit, 0x02 time stamp, 0x04 temperature type.


def test_temperature_celsius() -> None:
    """Flags 0x00: FLOAT 0xFF00016E = 366e-1 = 36.6 °C."""
    reading = only_reading(decode_temperature(bytes.fromhex("00 6e0100ff")))
    assert reading.type == "temperature"
    assert reading.values == {"temperature": 36.6}
    assert reading.meta == {"source_unit": "°C"}


def test_temperature_fahrenheit_is_converted() -> None:
    """Flags 0x01: FLOAT 0xFF0003DA = 986e-1 = 98.6 °F = 37.0 °C."""
    reading = only_reading(decode_temperature(bytes.fromhex("01 da0300ff")))
    assert reading.values == {"temperature": 37.0}
    assert reading.meta == {"source_unit": "°F"}


def test_temperature_with_time_stamp_and_type() -> None:
    """Flags 0x07: Fahrenheit, time stamp, type 6 (mouth); 0xFE00262C = 9772e-2 = 97.72 °F."""
    reading = only_reading(decode_temperature(bytes.fromhex(f"07 2c2600fe {TS_HEX} 06")))
    # (97.72 - 32) × 5 / 9 = 36.511...
    assert reading.values == {"temperature": 36.51}
    assert reading.ts == TS
    assert reading.meta == {"source_unit": "°F", "temperature_type": "mouth"}


@pytest.mark.parametrize(("code", "name"), [(1, "armpit"), (9, "tympanum"), (0, "reserved")])
def test_temperature_types(code: int, name: str) -> None:
    """Temperature type codes map to names; reserved codes say so."""
    reading = only_reading(decode_temperature(bytes.fromhex(f"04 6e0100ff {code:02x}")))
    assert reading.meta["temperature_type"] == name


@pytest.mark.parametrize(
    ("float_hex", "reason"),
    [
        ("ffff7f00", "temperature is NaN (not a number)"),  # 0x007FFFFF
        ("00008000", "temperature is NRes (not at this resolution)"),  # 0x00800000
        ("feff7f00", "temperature is +INFINITY"),  # 0x007FFFFE
        ("02008000", "temperature is -INFINITY"),  # 0x00800002
        ("01008000", "temperature is a reserved value (reserved for future use)"),  # 0x00800001
    ],
)
def test_temperature_special_values(float_hex: str, reason: str) -> None:
    """Special FLOAT values void the reading."""
    assert reason_of(bytes.fromhex(f"00 {float_hex}"), "gatt-2a1c") == reason


@pytest.mark.parametrize(
    ("payload_hex", "fragment"),
    [
        ("00 6e0100", "temperature needs 4 byte(s) at offset 1, only 3 left"),
        ("04 6e0100ff", "temperature type needs 1 byte(s)"),
    ],
)
def test_temperature_truncated(payload_hex: str, fragment: str) -> None:
    """Missing fields for the given flags are a DecodeError."""
    assert fragment in reason_of(bytes.fromhex(payload_hex), "gatt-2a1c")


def test_temperature_over_long() -> None:
    """A temperature type byte without its flag is over-long."""
    assert "over-long: 1 unexpected" in reason_of(bytes.fromhex("00 6e0100ff 02"), "gatt-2a1c")


# --- Glucose Measurement (0x2A18) --------------------------------------------------------------
# flags(1) sequence number(uint16) base time(7) [time offset(sint16, minutes)]
# [concentration(SFLOAT) type-sample location(1: type low nibble, location high nibble)]
# [sensor status annunciation(uint16)]; flags: 0x01 time offset, 0x02 concentration,
# 0x04 mol/L (else kg/L), 0x08 sensor status annunciation, 0x10 context information follows.
GLUCOSE_BASE_HEX = "e807 03 0f 07 2d 00"  # 2024-03-15 07:45:00
GLUCOSE_BASE = datetime(2024, 3, 15, 7, 45, 0)


def test_glucose_kg_per_litre() -> None:
    """Flags 0x02: 95 mg/dL = 0xB05F (95e-5 kg/L) = 95 / 18.016 = 5.27 mmol/L."""
    # flags 02 | seq 0x0001 | base time | concentration 0xB05F | type 1 capillary whole blood,
    # location 1 finger -> 0x11
    payload = bytes.fromhex(f"02 0100 {GLUCOSE_BASE_HEX} 5fb0 11")
    reading = only_reading(decode_glucose(payload))
    assert reading.type == "glucose"
    assert reading.values == {"glucose": 5.27}
    assert reading.ts == GLUCOSE_BASE
    assert reading.meta == {
        "sequence_number": 1,
        "sample_type": "capillary_whole_blood",
        "sample_location": "finger",
        "source_unit": "kg/L",
        "glucose_mg_dl": 95.0,
    }


def test_glucose_mol_per_litre() -> None:
    """Flags 0x06: 0xC037 = 55e-4 mol/L = 5.5 mmol/L; location 0xF = not available."""
    # flags 06 | seq 0x0102=258 | base time | concentration 0xC037 | type 2 capillary plasma,
    # location 15 not available -> 0xF2
    payload = bytes.fromhex(f"06 0201 {GLUCOSE_BASE_HEX} 37c0 f2")
    reading = only_reading(decode_glucose(payload))
    assert reading.values == {"glucose": 5.5}
    assert reading.meta == {
        "sequence_number": 258,
        "sample_type": "capillary_plasma",
        "source_unit": "mol/L",
    }


def test_glucose_time_offset_is_applied() -> None:
    """Flags 0x03: time offset 0xFFC4 = -60 minutes moves the base time back an hour."""
    payload = bytes.fromhex(f"03 0100 {GLUCOSE_BASE_HEX} c4ff 5fb0 11")
    reading = only_reading(decode_glucose(payload))
    assert reading.ts == datetime(2024, 3, 15, 6, 45, 0)


def test_glucose_unknown_base_time() -> None:
    """Base time year 0: no time stamp, even with an offset."""
    payload = bytes.fromhex("03 0100 0000 03 0f 07 2d 00 3c00 5fb0 11")
    assert only_reading(decode_glucose(payload)).ts is None


def test_glucose_sensor_status_and_context() -> None:
    """Flags 0x1A: sensor status 0x0801 (battery low, time fault) and context follows."""
    # flags 1a | seq 1 | base time | 0xB05F | 0x11 | annunciation 0x0801
    payload = bytes.fromhex(f"1a 0100 {GLUCOSE_BASE_HEX} 5fb0 11 0108")
    reading = only_reading(decode_glucose(payload))
    assert reading.meta["status"] == ("battery_low", "time_fault")
    assert reading.meta["context_follows"] is True


def test_glucose_without_concentration_is_decode_error() -> None:
    """Flags 0x08: a record with only a sensor status (strip error) is not a reading."""
    # flags 08 | seq 1 | base time | annunciation 0x0008 strip insertion error
    payload = bytes.fromhex(f"08 0100 {GLUCOSE_BASE_HEX} 0800")
    assert reason_of(payload, "gatt-2a18") == (
        "glucose measurement carries no concentration (sensor status: strip_insertion_error)"
    )


@pytest.mark.parametrize("type_location", ["1a", "41"])
def test_glucose_control_solution_is_decode_error(type_location: str) -> None:
    """Type 10 or sample location 4 (control solution) is a device check, not the person."""
    payload = bytes.fromhex(f"02 0100 {GLUCOSE_BASE_HEX} 5fb0 {type_location}")
    assert "control-solution" in reason_of(payload, "gatt-2a18")


def test_glucose_special_concentration_is_decode_error() -> None:
    """An NRes concentration voids the reading."""
    payload = bytes.fromhex(f"02 0100 {GLUCOSE_BASE_HEX} 0008 11")
    assert reason_of(payload, "gatt-2a18") == "glucose is NRes (not at this resolution)"


@pytest.mark.parametrize(
    ("payload_hex", "fragment"),
    [
        ("02 0100", "base time needs 2 byte(s) at offset 3, only 0 left"),
        (f"02 0100 {GLUCOSE_BASE_HEX} 5fb0", "type-sample location needs 1 byte(s)"),
        (f"0b 0100 {GLUCOSE_BASE_HEX} 3c00 5fb0 11 01", "sensor status annunciation needs 2"),
    ],
)
def test_glucose_truncated(payload_hex: str, fragment: str) -> None:
    """Missing fields for the given flags are a DecodeError."""
    assert fragment in reason_of(bytes.fromhex(payload_hex), "gatt-2a18")


def test_glucose_over_long() -> None:
    """Concentration bytes without the flag are over-long."""
    payload = bytes.fromhex(f"00 0100 {GLUCOSE_BASE_HEX} 5fb0 11")
    assert "over-long: 3 unexpected" in reason_of(payload, "gatt-2a18")


# --- Heart Rate Measurement (0x2A37) -----------------------------------------------------------
# flags(1) heart rate(uint8 or uint16) [energy expended(uint16, kJ)] [RR-interval(uint16,
# 1/1024 s)...]; flags: 0x01 uint16 value, bits 1-2 sensor contact (2 not detected,
# 3 detected), 0x08 energy expended, 0x10 RR-intervals.


def test_heart_rate_uint8() -> None:
    """Flags 0x00: 8-bit value 0x48 = 72 bpm; contact not supported."""
    reading = only_reading(decode_heart_rate(bytes.fromhex("00 48")))
    assert reading.type == "heart_rate"
    assert reading.values == {"heart_rate": 72}
    assert reading.ts is None
    assert reading.meta == {"sensor_contact": "not_supported"}


def test_heart_rate_uint16() -> None:
    """Flags 0x01: 16-bit value 0x0148 = 328 bpm (the format allows above 255)."""
    reading = only_reading(decode_heart_rate(bytes.fromhex("01 4801")))
    assert reading.values == {"heart_rate": 328}


def test_heart_rate_uint8_with_contact_and_rr_intervals() -> None:
    """Flags 0x16: contact detected, 8-bit 60 bpm, RR-intervals 1024 and 512 (1 s, 0.5 s)."""
    # flags 16 | HR 3c | RR 0x0400 | RR 0x0200
    reading = only_reading(decode_heart_rate(bytes.fromhex("16 3c 0004 0002")))
    assert reading.values == {"heart_rate": 60}
    assert reading.meta == {"sensor_contact": "detected", "rr_intervals_s": (1.0, 0.5)}


def test_heart_rate_uint16_with_energy_and_rr_interval() -> None:
    """Flags 0x19: 16-bit 72 bpm, energy 10 kJ, RR-interval 820/1024 s."""
    # flags 19 | HR 0x0048 | energy 0x000A | RR 0x0334=820
    reading = only_reading(decode_heart_rate(bytes.fromhex("19 4800 0a00 3403")))
    assert reading.values == {"heart_rate": 72}
    assert reading.meta == {
        "sensor_contact": "not_supported",
        "energy_expended_kj": 10,
        "rr_intervals_s": (0.80078125,),
    }


def test_heart_rate_no_skin_contact_is_decode_error() -> None:
    """Flags 0x04: contact supported but not detected; the value is not a measurement."""
    assert reason_of(bytes.fromhex("04 48"), "gatt-2a37") == (
        "heart rate sensor reports no skin contact"
    )


def test_heart_rate_zero_is_decode_error() -> None:
    """A rate of 0 is no measurement, and must not look like cardiac arrest."""
    assert reason_of(bytes.fromhex("00 00"), "gatt-2a37") == "heart rate is 0 (no measurement)"


@pytest.mark.parametrize(
    ("payload_hex", "fragment"),
    [
        ("01 48", "heart rate needs 2 byte(s) at offset 1, only 1 left"),
        ("08 48 0a", "energy expended needs 2 byte(s)"),
        ("10 48", "RR-interval flag set but no RR-interval present"),
        ("10 48 0004 02", "RR-interval field has odd length 3"),
    ],
)
def test_heart_rate_truncated(payload_hex: str, fragment: str) -> None:
    """Missing or partial fields for the given flags are a DecodeError."""
    assert fragment in reason_of(bytes.fromhex(payload_hex), "gatt-2a37")


def test_heart_rate_over_long_without_rr_flag() -> None:
    """RR-interval bytes without their flag are over-long."""
    assert "over-long: 2 unexpected" in reason_of(bytes.fromhex("00 48 0004"), "gatt-2a37")


def test_upper_case_codec_name_is_accepted() -> None:
    """Firmware spelling the UUID in upper case reaches the same decoder."""
    reading = only_reading(decode("gatt-2A37", bytes.fromhex("00 48")))
    assert reading.values == {"heart_rate": 72}


def test_codecs_lists_every_codec_of_the_contract() -> None:
    """CODECS names exactly the raw-topic codecs of the MQTT contract."""
    assert CODECS == (
        "gatt-2a35",
        "gatt-2a9d",
        "gatt-2a5e",
        "gatt-2a1c",
        "gatt-2a18",
        "gatt-2a37",
        "z2m",
    )


def test_unknown_codec_error_names_known_codecs() -> None:
    """An unknown codec is its own error, a FirmwareBridgeError but not a DecodeError."""
    with pytest.raises(UnknownCodecError) as caught:
        decode("gatt-2a99", b"\x00")
    assert isinstance(caught.value, FirmwareBridgeError)
    assert DecodeError not in type(caught.value).__mro__
    assert str(caught.value).startswith("unknown codec 'gatt-2a99' (known: gatt-2a35, ")


def test_decode_error_message_carries_codec() -> None:
    """str(DecodeError) from decode() is prefixed by the codec; reason stays bare."""
    with pytest.raises(DecodeError) as caught:
        decode("gatt-2a35", b"")
    assert caught.value.reason == "payload is empty"
    assert str(caught.value) == "gatt-2a35: payload is empty"
    assert isinstance(caught.value, FirmwareBridgeError)
