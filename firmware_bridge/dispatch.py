"""The ``decode`` entry point: picks a decoder by the codec named in the raw MQTT topic."""

from collections.abc import Callable, Mapping

from .errors import DecodeError, UnknownCodecError
from .gatt import (
    decode_blood_pressure,
    decode_glucose,
    decode_heart_rate,
    decode_plx_spot_check,
    decode_temperature,
    decode_weight,
)
from .types import Decoded
from .zigbee2mqtt import decode_zigbee2mqtt

Decoder = Callable[[bytes], list[Decoded]]

# Codec names appear in the topic vaki/v1/d/{device_id}/raw/{codec}.
_DECODERS: Mapping[str, Decoder] = {
    "gatt-2a35": decode_blood_pressure,
    "gatt-2a9d": decode_weight,
    "gatt-2a5e": decode_plx_spot_check,
    "gatt-2a1c": decode_temperature,
    "gatt-2a18": decode_glucose,
    "gatt-2a37": decode_heart_rate,
    "z2m": decode_zigbee2mqtt,
}
CODECS: tuple[str, ...] = tuple(_DECODERS)


def decode(codec: str, payload: bytes) -> list[Decoded]:
    """Decode ``payload`` with the named codec; raises DecodeError or UnknownCodecError."""
    # Firmware may spell the UUID in upper case (gatt-2A35); the names are otherwise exact.
    decoder = _DECODERS.get(codec.lower())
    if decoder is None:
        raise UnknownCodecError(codec, CODECS)
    try:
        return decoder(payload)
    except DecodeError as err:
        err.codec = codec.lower()
        raise
