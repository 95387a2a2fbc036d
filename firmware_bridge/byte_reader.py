"""A little-endian cursor over a binary payload that fails with DecodeError, never IndexError."""

from .errors import DecodeError
from .ieee11073 import MedicalFloat, decode_float, decode_sfloat


class ByteReader:
    """Reads GATT fields in order; running short or leaving bytes behind is a DecodeError."""

    __slots__ = ("_data", "_offset")

    def __init__(self, data: bytes) -> None:
        """Start reading ``data`` from its first byte."""
        self._data = bytes(data)
        self._offset = 0

    @property
    def remaining(self) -> int:
        """Number of bytes not read yet."""
        return len(self._data) - self._offset

    def take(self, size: int, field: str) -> bytes:
        """The next ``size`` bytes of ``field``; DecodeError when the payload is short."""
        if size > self.remaining:
            if not self._data:
                raise DecodeError("payload is empty")
            raise DecodeError(
                f"payload truncated: {field} needs {size} byte(s) at offset {self._offset},"
                f" only {self.remaining} left"
            )
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def uint(self, size: int, field: str) -> int:
        """Read an unsigned little-endian integer of ``size`` bytes."""
        return int.from_bytes(self.take(size, field), "little")

    def u8(self, field: str) -> int:
        """Read a uint8."""
        return self.uint(1, field)

    def u16(self, field: str) -> int:
        """Read a little-endian uint16."""
        return self.uint(2, field)

    def u24(self, field: str) -> int:
        """Read a little-endian uint24."""
        return self.uint(3, field)

    def s16(self, field: str) -> int:
        """Read a little-endian sint16."""
        return int.from_bytes(self.take(2, field), "little", signed=True)

    def sfloat(self, field: str) -> MedicalFloat:
        """Read an IEEE 11073 SFLOAT (medfloat16)."""
        return decode_sfloat(self.u16(field))

    def float32(self, field: str) -> MedicalFloat:
        """Read an IEEE 11073 FLOAT (medfloat32)."""
        return decode_float(self.uint(4, field))

    def expect_end(self, context: str) -> None:
        """Raise DecodeError if bytes are left that the flags do not account for."""
        if self.remaining:
            raise DecodeError(
                f"payload over-long: {self.remaining} unexpected trailing byte(s) after {context}"
            )
