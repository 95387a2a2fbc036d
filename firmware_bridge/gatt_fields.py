"""Field types shared by several GATT characteristics: Date Time and bit-field flags."""

from collections.abc import Mapping
from datetime import datetime

from .byte_reader import ByteReader
from .errors import DecodeError

DATE_TIME_SIZE = 7


def read_date_time(reader: ByteReader, field: str = "time stamp") -> datetime | None:
    """Read a GATT Date Time (7 bytes); an unknown year, month or day (0) gives None."""
    year = reader.u16(field)
    month, day, hours, minutes, seconds = reader.take(DATE_TIME_SIZE - 2, field)
    if year == 0 or month == 0 or day == 0:
        return None
    # The characteristic defines years 1582-9999; outside that the device clock is garbage.
    if not 1582 <= year <= 9999:
        raise DecodeError(f"{field} has year {year} outside 1582-9999")
    try:
        # GATT Date Time carries no zone: it is the device's wall clock, made aware later.
        return datetime(year, month, day, hours, minutes, seconds)  # noqa: DTZ001
    except ValueError as err:
        raise DecodeError(
            f"{field} is not a valid date and time: {year:04d}-{month:02d}-{day:02d}"
            f" {hours:02d}:{minutes:02d}:{seconds:02d}"
        ) from err


def bit_names(value: int, names: Mapping[int, str]) -> tuple[str, ...]:
    """Return the names of the set bits of ``value`` that ``names`` knows, lowest bit first."""
    return tuple(name for bit, name in sorted(names.items()) if value & (1 << bit))
