"""The helpers compiled encoders and decoders call: varints, unknown fields, Timestamps.

Each reproduces what betterproto does with the same value, for the values the compiled code
hands it; anything betterproto reads differently from protobuf (a truncated value, a group, a
field with another wire type than declared) raises ``Irregular``, and betterproto's own
``parse`` then reads the message, so the result is always betterproto's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from . import _upstream

#: The encodings of 0 to 127: one byte each, the length of most strings and nested messages.
SMALL_VARINTS = tuple(bytes((value,)) for value in range(128))
#: A varint has at most 10 bytes of 7 bits; betterproto reads no more.
_SHIFTS = range(0, 70, 7)
_LARGEST_NEGATIVE = -(1 << 63)
_EPOCH = _upstream.DATETIME_ZERO
_MICROSECONDS = 1_000_000


class Irregular(Exception):
    """Bytes a compiled decoder leaves to betterproto's ``parse``, which reads anything."""


class NotCompiled(Exception):
    """A value the compiled encoder does not handle (not of its field's declared type): the
    message is encoded by betterproto's ``__bytes__`` instead."""


def varint(value: int) -> bytes:
    """``value`` as a varint; negative numbers as their 64-bit two's complement (10 bytes)."""
    if value < 0:
        if value < _LARGEST_NEGATIVE:
            # betterproto's words, as it refuses the same value.
            raise ValueError(
                "Negative value is not representable as a 64-bit integer - unable to encode "
                "a varint within 10 bytes."
            )
        value += 1 << 64
    if value < 0x80:
        return SMALL_VARINTS[value]
    # Unrolled up to five bytes (below 2**35): lengths, times in seconds, nanoseconds.
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value < 0x200000:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if value < 0x10000000:
        return bytes(
            (value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14 & 0x7F | 0x80, value >> 21)
        )
    if value < 0x800000000:
        return bytes(
            (
                value & 0x7F | 0x80,
                value >> 7 & 0x7F | 0x80,
                value >> 14 & 0x7F | 0x80,
                value >> 21 & 0x7F | 0x80,
                value >> 28,
            )
        )
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(value: int) -> int:
    """The sint32/sint64 mapping of ``value`` to a non-negative number, as betterproto does."""
    return value << 1 if value >= 0 else (value << 1) ^ -1


def read_varint(data: bytes, position: int, end: int) -> tuple[int, int]:
    """The varint at ``position`` (of at most 10 bytes) and the position after it."""
    if position < end:
        byte = data[position]
        if byte < 0x80:
            return byte, position + 1
    value = 0
    for shift in _SHIFTS:
        if position >= end:
            raise Irregular
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
    raise Irregular


def skip_unknown(data: bytes, tag: int, position: int, end: int) -> int:
    """The position after the value of the undeclared field ``tag`` whose value starts at
    ``position``. Groups and wire types 6 and 7 are ``Irregular``: betterproto reads them as
    a bare tag and goes on reading the group's contents as fields."""
    wire_type = tag & 7
    if wire_type == 0:
        return read_varint(data, position, end)[1]
    if wire_type == 2:
        length, position = read_varint(data, position, end)
        stop = position + length
    elif wire_type == 1:
        stop = position + 8
    elif wire_type == 5:
        stop = position + 4
    else:
        raise Irregular
    if stop > end:
        raise Irregular
    return stop


def timestamp_bytes(value: datetime) -> bytes:
    """The encoding of the Timestamp betterproto makes of ``value`` (``_Timestamp``): whole
    seconds since the epoch (rounded down) and the microseconds, as nanoseconds."""
    offset = value - _EPOCH
    seconds = offset.days * 86_400 + offset.seconds
    nanos = offset.microseconds * 1000
    if seconds:
        if nanos:
            return b"\x08" + varint(seconds) + b"\x10" + varint(nanos)
        return b"\x08" + varint(seconds)
    if nanos:
        return b"\x10" + varint(nanos)
    return b""


def read_timestamp(data: bytes, position: int, end: int) -> datetime:
    """The datetime betterproto reads from the Timestamp in ``data[position:end]``: its
    seconds as int64 and nanoseconds as int32, the last of each that is present."""
    start = position
    seconds = nanos = 0
    try:
        while position < end:
            tag = data[position]
            if tag == 0x08:
                value, position = read_varint(data, position + 1, end)
                value &= (1 << 64) - 1
                seconds = value - (1 << 64) if value >> 63 else value
            elif tag == 0x10:
                value, position = read_varint(data, position + 1, end)
                value &= (1 << 32) - 1
                nanos = value - (1 << 32) if value >> 31 else value
            else:
                tag, position = read_varint(data, position, end)
                if tag >> 3 in (1, 2):  # a longer encoding of a declared tag, or another type
                    raise Irregular
                position = skip_unknown(data, tag, position, end)
        return _EPOCH + timedelta(0, seconds, nanos // 1000)
    except (Irregular, OverflowError):
        return _upstream.timestamp_to_datetime(data[start:end])
