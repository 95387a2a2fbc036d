"""Firmware bridge: decoders from vendor and standard payloads into canonical readings/events.

Pure functions over bytes, standard library only: it never touches the database or the network.
"""

from .dispatch import CODECS, decode
from .errors import DecodeError, FirmwareBridgeError, UnknownCodecError
from .gatt import (
    decode_blood_pressure,
    decode_glucose,
    decode_heart_rate,
    decode_plx_spot_check,
    decode_temperature,
    decode_weight,
)
from .ieee11073 import MedicalFloat, SpecialValue, decode_float, decode_sfloat
from .types import (
    EVENT_TYPES,
    READING_TYPES,
    Decoded,
    DecodedEvent,
    DecodedReading,
    DecodedStatus,
)
from .zigbee2mqtt import decode_zigbee2mqtt

__all__ = [
    "CODECS",
    "EVENT_TYPES",
    "READING_TYPES",
    "DecodeError",
    "Decoded",
    "DecodedEvent",
    "DecodedReading",
    "DecodedStatus",
    "FirmwareBridgeError",
    "MedicalFloat",
    "SpecialValue",
    "UnknownCodecError",
    "decode",
    "decode_blood_pressure",
    "decode_float",
    "decode_glucose",
    "decode_heart_rate",
    "decode_plx_spot_check",
    "decode_sfloat",
    "decode_temperature",
    "decode_weight",
    "decode_zigbee2mqtt",
]
