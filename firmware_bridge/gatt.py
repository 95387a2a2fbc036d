"""Decoders for Bluetooth SIG GATT health characteristics into canonical readings.

Layouts follow the Bluetooth SIG GATT Specification Supplement. All multi-byte fields are
little-endian. Flag bits marked "reserved for future use" are ignored, as the specification asks
of receivers; a payload longer or shorter than its flags say is a DecodeError.
"""

from datetime import timedelta

from . import units
from .byte_reader import ByteReader
from .errors import DecodeError
from .gatt_fields import bit_names, read_date_time
from .ieee11073 import MedicalFloat
from .types import Decoded, DecodedReading

# Blood Pressure Measurement (0x2A35) flags.
_BP_UNITS_KPA = 0x01
_BP_TIME_STAMP = 0x02
_BP_PULSE_RATE = 0x04
_BP_USER_ID = 0x08
_BP_MEASUREMENT_STATUS = 0x10
_BP_STATUS_BITS = {
    0: "body_movement",
    1: "cuff_too_loose",
    2: "irregular_pulse",
    5: "improper_position",
}
# Bits 3-4 of the blood pressure status are a two-bit "pulse rate range" code, not flags.
_BP_PULSE_RANGE = {1: "pulse_rate_above_range", 2: "pulse_rate_below_range"}

# Weight Measurement (0x2A9D) flags.
_WEIGHT_IMPERIAL = 0x01
_WEIGHT_TIME_STAMP = 0x02
_WEIGHT_USER_ID = 0x04
_WEIGHT_BMI_HEIGHT = 0x08
_WEIGHT_UNSUCCESSFUL = 0xFFFF

# PLX Spot-Check Measurement (0x2A5E) flags.
_PLX_TIME_STAMP = 0x01
_PLX_MEASUREMENT_STATUS = 0x02
_PLX_DEVICE_STATUS = 0x04
_PLX_PULSE_AMPLITUDE = 0x08
_PLX_CLOCK_NOT_SET = 0x10
_PLX_STATUS_BITS = {
    5: "measurement_ongoing",
    6: "early_estimated_data",
    7: "validated_data",
    8: "fully_qualified_data",
    9: "from_measurement_storage",
    10: "demonstration_data",
    11: "testing_data",
    12: "calibration_ongoing",
    13: "measurement_unavailable",
    14: "questionable_measurement",
    15: "invalid_measurement",
}
# The device itself says these are not a measurement of the person.
_PLX_REJECTING_STATUS = (
    "measurement_unavailable",
    "invalid_measurement",
    "demonstration_data",
    "testing_data",
)
_PLX_DEVICE_STATUS_BITS = {
    0: "extended_display_update_ongoing",
    1: "equipment_malfunction",
    2: "signal_processing_irregularity",
    3: "inadequate_signal",
    4: "poor_signal",
    5: "low_perfusion",
    6: "erratic_signal",
    7: "nonpulsatile_signal",
    8: "questionable_pulse",
    9: "signal_analysis_ongoing",
    10: "sensor_interference",
    11: "sensor_unconnected_to_user",
    12: "unknown_sensor_connected",
    13: "sensor_displaced",
    14: "sensor_malfunctioning",
    15: "sensor_disconnected",
}

# Temperature Measurement (0x2A1C) flags.
_TEMP_FAHRENHEIT = 0x01
_TEMP_TIME_STAMP = 0x02
_TEMP_TYPE = 0x04
_TEMPERATURE_TYPES = {
    1: "armpit",
    2: "body",
    3: "ear",
    4: "finger",
    5: "gastrointestinal_tract",
    6: "mouth",
    7: "rectum",
    8: "toe",
    9: "tympanum",
}

# Glucose Measurement (0x2A18) flags.
_GLUCOSE_TIME_OFFSET = 0x01
_GLUCOSE_CONCENTRATION = 0x02
_GLUCOSE_UNITS_MOL_L = 0x04
_GLUCOSE_SENSOR_STATUS = 0x08
_GLUCOSE_CONTEXT_FOLLOWS = 0x10
_GLUCOSE_TYPES = {
    1: "capillary_whole_blood",
    2: "capillary_plasma",
    3: "venous_whole_blood",
    4: "venous_plasma",
    5: "arterial_whole_blood",
    6: "arterial_plasma",
    7: "undetermined_whole_blood",
    8: "undetermined_plasma",
    9: "interstitial_fluid",
    10: "control_solution",
}
_SAMPLE_LOCATIONS = {1: "finger", 2: "alternate_site_test", 3: "earlobe", 4: "control_solution"}
_SAMPLE_LOCATION_NOT_AVAILABLE = 15
_GLUCOSE_SENSOR_STATUS_BITS = {
    0: "battery_low",
    1: "sensor_malfunction",
    2: "sample_size_insufficient",
    3: "strip_insertion_error",
    4: "strip_type_incorrect",
    5: "result_above_range",
    6: "result_below_range",
    7: "temperature_too_high",
    8: "temperature_too_low",
    9: "strip_pulled_too_soon",
    10: "general_device_fault",
    11: "time_fault",
}

# Heart Rate Measurement (0x2A37) flags.
_HR_UINT16 = 0x01
_HR_CONTACT_SHIFT = 1
_HR_ENERGY = 0x08
_HR_RR_INTERVALS = 0x10
_HR_CONTACT = {2: "not_detected", 3: "detected"}
_RR_INTERVAL_UNITS_PER_SECOND = 1024

_UNKNOWN_USER = 0xFF


def _required(value: MedicalFloat, field: str, *, allow_negative: bool = False) -> float:
    """Return a value the reading cannot do without, or raise DecodeError saying why not."""
    number = value.require(field)
    if number < 0 and not allow_negative:
        raise DecodeError(f"{field} is negative ({number})")
    return number


def _optional(value: MedicalFloat, field: str, unavailable: dict[str, str]) -> float | None:
    """Return an optional value, or None after noting in ``unavailable`` why it was dropped."""
    if value.special is not None:
        unavailable[field] = value.special.value
        return None
    number = value.to_float()
    if number < 0:
        unavailable[field] = f"negative ({number})"
        return None
    return number


def _describe(kind: str, flags: int) -> str:
    """Name the characteristic and its flags for over-long payload messages."""
    return f"{kind} with flags 0x{flags:02x}"


def decode_blood_pressure(payload: bytes) -> list[Decoded]:
    """Decode a Blood Pressure Measurement (0x2A35) into a blood_pressure reading in mmHg."""
    reader = ByteReader(payload)
    flags = reader.u8("flags")
    systolic = reader.sfloat("systolic")
    diastolic = reader.sfloat("diastolic")
    mean_arterial = reader.sfloat("mean arterial pressure")
    ts = read_date_time(reader) if flags & _BP_TIME_STAMP else None
    pulse = reader.sfloat("pulse rate") if flags & _BP_PULSE_RATE else None
    user_id = reader.u8("user id") if flags & _BP_USER_ID else None
    status = reader.u16("measurement status") if flags & _BP_MEASUREMENT_STATUS else None
    reader.expect_end(_describe("blood pressure measurement", flags))

    in_kpa = bool(flags & _BP_UNITS_KPA)

    def to_mmhg(pressure: float) -> float:
        """Convert a pressure in the payload's unit to mmHg with one decimal."""
        return round(units.kpa_to_mmhg(pressure) if in_kpa else pressure, 1)

    values: dict[str, float] = {
        "systolic": to_mmhg(_required(systolic, "systolic")),
        "diastolic": to_mmhg(_required(diastolic, "diastolic")),
    }
    unavailable: dict[str, str] = {}
    # Many cuffs do not compute MAP and send NaN there; that must not void the reading.
    mean = _optional(mean_arterial, "mean_arterial", unavailable)
    if mean is not None:
        values["mean_arterial"] = to_mmhg(mean)
    if pulse is not None:
        rate = _optional(pulse, "pulse", unavailable)
        if rate is not None:
            values["pulse"] = round(rate, 1)

    meta: dict[str, object] = {"source_unit": "kPa" if in_kpa else "mmHg"}
    if user_id is not None and user_id != _UNKNOWN_USER:
        meta["user_id"] = user_id
    if status is not None:
        pulse_range = _BP_PULSE_RANGE.get((status >> 3) & 0x03)
        names = bit_names(status, _BP_STATUS_BITS)
        meta["status"] = (*names, pulse_range) if pulse_range else names
    if unavailable:
        meta["unavailable"] = unavailable
    return [DecodedReading("blood_pressure", values, ts, meta)]


def decode_weight(payload: bytes) -> list[Decoded]:
    """Decode a Weight Measurement (0x2A9D) into a weight reading in kg (BMI, height in m)."""
    reader = ByteReader(payload)
    flags = reader.u8("flags")
    raw_weight = reader.u16("weight")
    ts = read_date_time(reader) if flags & _WEIGHT_TIME_STAMP else None
    user_id = reader.u8("user id") if flags & _WEIGHT_USER_ID else None
    raw_bmi: int | None = None
    raw_height: int | None = None
    if flags & _WEIGHT_BMI_HEIGHT:
        raw_bmi = reader.u16("BMI")
        raw_height = reader.u16("height")
    reader.expect_end(_describe("weight measurement", flags))

    if raw_weight == _WEIGHT_UNSUCCESSFUL:
        raise DecodeError("weight measurement unsuccessful (0xFFFF)")
    imperial = bool(flags & _WEIGHT_IMPERIAL)
    # Resolutions: 0.005 kg and 0.001 m in SI; 0.01 lb and 0.1 in imperial.
    weight_kg = units.lb_to_kg(raw_weight * 0.01) if imperial else raw_weight * 0.005
    values: dict[str, float] = {"weight": round(weight_kg, 2)}
    if raw_bmi is not None and raw_height is not None:
        height_m = units.inch_to_m(raw_height * 0.1) if imperial else raw_height * 0.001
        values["bmi"] = round(raw_bmi * 0.1, 1)
        values["height"] = round(height_m, 3)

    meta: dict[str, object] = {"source_unit": "lb" if imperial else "kg"}
    if user_id is not None and user_id != _UNKNOWN_USER:
        meta["user_id"] = user_id
    return [DecodedReading("weight", values, ts, meta)]


def decode_plx_spot_check(payload: bytes) -> list[Decoded]:
    """Decode a PLX Spot-Check Measurement (0x2A5E) into an spo2 reading (%, pulse in bpm)."""
    reader = ByteReader(payload)
    flags = reader.u8("flags")
    spo2 = reader.sfloat("SpO2")
    pulse = reader.sfloat("pulse rate")
    ts = read_date_time(reader) if flags & _PLX_TIME_STAMP else None
    status = reader.u16("measurement status") if flags & _PLX_MEASUREMENT_STATUS else None
    device_status = reader.u24("device and sensor status") if flags & _PLX_DEVICE_STATUS else None
    amplitude = reader.sfloat("pulse amplitude index") if flags & _PLX_PULSE_AMPLITUDE else None
    reader.expect_end(_describe("PLX spot-check measurement", flags))

    status_names = bit_names(status, _PLX_STATUS_BITS) if status is not None else ()
    for name in _PLX_REJECTING_STATUS:
        if name in status_names:
            raise DecodeError(f"SpO2 measurement status says {name.replace('_', ' ')}")

    values: dict[str, float] = {"spo2": round(_required(spo2, "spo2"), 1)}
    unavailable: dict[str, str] = {}
    rate = _optional(pulse, "pulse", unavailable)
    if rate is not None:
        values["pulse"] = round(rate, 1)

    meta: dict[str, object] = {}
    if flags & _PLX_CLOCK_NOT_SET:
        # A time stamp from a clock that was never set is meaningless; use time of receipt.
        ts = None
        meta["device_clock_not_set"] = True
    if status is not None:
        meta["status"] = status_names
    if device_status is not None:
        meta["device_status"] = bit_names(device_status, _PLX_DEVICE_STATUS_BITS)
    if amplitude is not None:
        index = _optional(amplitude, "pulse_amplitude_index", unavailable)
        if index is not None:
            meta["pulse_amplitude_index"] = round(index, 2)
    if unavailable:
        meta["unavailable"] = unavailable
    return [DecodedReading("spo2", values, ts, meta)]


def decode_temperature(payload: bytes) -> list[Decoded]:
    """Decode a Temperature Measurement (0x2A1C) into a temperature reading in °C."""
    reader = ByteReader(payload)
    flags = reader.u8("flags")
    measured = reader.float32("temperature")
    ts = read_date_time(reader) if flags & _TEMP_TIME_STAMP else None
    temperature_type = reader.u8("temperature type") if flags & _TEMP_TYPE else None
    reader.expect_end(_describe("temperature measurement", flags))

    fahrenheit = bool(flags & _TEMP_FAHRENHEIT)
    temperature = _required(measured, "temperature", allow_negative=True)
    if fahrenheit:
        temperature = units.fahrenheit_to_celsius(temperature)
    meta: dict[str, object] = {"source_unit": "°F" if fahrenheit else "°C"}
    if temperature_type is not None:
        meta["temperature_type"] = _TEMPERATURE_TYPES.get(temperature_type, "reserved")
    return [DecodedReading("temperature", {"temperature": round(temperature, 2)}, ts, meta)]


def decode_glucose(payload: bytes) -> list[Decoded]:
    """Decode a Glucose Measurement (0x2A18) into a glucose reading in mmol/L.

    The kg/L unit is a mass concentration: it is converted to mg/dL (× 100 000) and then to
    mmol/L by dividing by 18.016 (glucose, 180.16 g/mol). A record without a concentration, or
    one taken with control solution, is not a reading of the person and is a DecodeError.
    """
    reader = ByteReader(payload)
    flags = reader.u8("flags")
    sequence_number = reader.u16("sequence number")
    base_time = read_date_time(reader, "base time")
    offset_minutes = reader.s16("time offset") if flags & _GLUCOSE_TIME_OFFSET else None
    concentration: MedicalFloat | None = None
    type_location: int | None = None
    if flags & _GLUCOSE_CONCENTRATION:
        concentration = reader.sfloat("glucose concentration")
        type_location = reader.u8("type-sample location")
    sensor_status = (
        reader.u16("sensor status annunciation") if flags & _GLUCOSE_SENSOR_STATUS else None
    )
    reader.expect_end(_describe("glucose measurement", flags))

    status_names = (
        bit_names(sensor_status, _GLUCOSE_SENSOR_STATUS_BITS) if sensor_status is not None else ()
    )
    if concentration is None or type_location is None:
        detail = f" (sensor status: {', '.join(status_names)})" if status_names else ""
        raise DecodeError(f"glucose measurement carries no concentration{detail}")
    # The type is the low nibble, the sample location the high nibble.
    sample_type = _GLUCOSE_TYPES.get(type_location & 0x0F, "reserved")
    location_code = type_location >> 4
    sample_location = _SAMPLE_LOCATIONS.get(location_code, "reserved")
    if "control_solution" in (sample_type, sample_location):
        raise DecodeError("glucose measurement is a control-solution test, not a patient reading")

    meta: dict[str, object] = {"sequence_number": sequence_number, "sample_type": sample_type}
    value = _required(concentration, "glucose")
    if flags & _GLUCOSE_UNITS_MOL_L:
        mmol_l = units.mol_l_to_mmol_l(value)
        meta["source_unit"] = "mol/L"
    else:
        mg_dl = units.kg_l_to_mg_dl(value)
        mmol_l = units.mg_dl_to_mmol_l(mg_dl)
        meta["source_unit"] = "kg/L"
        meta["glucose_mg_dl"] = round(mg_dl, 1)
    if location_code != _SAMPLE_LOCATION_NOT_AVAILABLE:
        meta["sample_location"] = sample_location
    if sensor_status is not None:
        meta["status"] = status_names
    if flags & _GLUCOSE_CONTEXT_FOLLOWS:
        meta["context_follows"] = True

    ts = base_time
    if ts is not None and offset_minutes is not None:
        try:
            ts = ts + timedelta(minutes=offset_minutes)
        except OverflowError as err:
            raise DecodeError("base time plus time offset is out of range") from err
    return [DecodedReading("glucose", {"glucose": round(mmol_l, 2)}, ts, meta)]


def decode_heart_rate(payload: bytes) -> list[Decoded]:
    """Decode a Heart Rate Measurement (0x2A37) into a heart_rate reading in bpm."""
    reader = ByteReader(payload)
    flags = reader.u8("flags")
    heart_rate = reader.u16("heart rate") if flags & _HR_UINT16 else reader.u8("heart rate")
    energy = reader.u16("energy expended") if flags & _HR_ENERGY else None
    rr_intervals: list[float] = []
    if flags & _HR_RR_INTERVALS:
        # The RR-interval field takes the rest of the payload: one or more uint16 values.
        if reader.remaining == 0:
            raise DecodeError("payload truncated: RR-interval flag set but no RR-interval present")
        if reader.remaining % 2:
            raise DecodeError(
                f"payload truncated: RR-interval field has odd length {reader.remaining}"
            )
        while reader.remaining:
            rr_intervals.append(reader.u16("RR-interval") / _RR_INTERVAL_UNITS_PER_SECOND)
    reader.expect_end(_describe("heart rate measurement", flags))

    contact = _HR_CONTACT.get((flags >> _HR_CONTACT_SHIFT) & 0x03, "not_supported")
    # A strap off the skin keeps notifying stale or zero rates; alerting on them would be wrong.
    if contact == "not_detected":
        raise DecodeError("heart rate sensor reports no skin contact")
    if heart_rate == 0:
        raise DecodeError("heart rate is 0 (no measurement)")

    meta: dict[str, object] = {"sensor_contact": contact}
    if energy is not None:
        meta["energy_expended_kj"] = energy
    if rr_intervals:
        meta["rr_intervals_s"] = tuple(rr_intervals)
    return [DecodedReading("heart_rate", {"heart_rate": heart_rate}, None, meta)]
