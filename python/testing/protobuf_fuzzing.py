"""Test support shared by the codec tests of the client and the server and the fuzz test of the
real server: the protobuf wire format written by hand, the fields of a betterproto class, and
the edits fuzzers make to encodings.

On ``sys.path`` for every test run through the ``pythonpath`` setting in ``tox.ini``.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import betterproto
from hypothesis import strategies as st

INTEGER_RANGES = {
    betterproto.TYPE_INT32: (-(1 << 31), (1 << 31) - 1),
    betterproto.TYPE_SINT32: (-(1 << 31), (1 << 31) - 1),
    betterproto.TYPE_SFIXED32: (-(1 << 31), (1 << 31) - 1),
    betterproto.TYPE_INT64: (-(1 << 63), (1 << 63) - 1),
    betterproto.TYPE_SINT64: (-(1 << 63), (1 << 63) - 1),
    betterproto.TYPE_SFIXED64: (-(1 << 63), (1 << 63) - 1),
    betterproto.TYPE_UINT32: (0, (1 << 32) - 1),
    betterproto.TYPE_FIXED32: (0, (1 << 32) - 1),
    betterproto.TYPE_UINT64: (0, (1 << 64) - 1),
    betterproto.TYPE_FIXED64: (0, (1 << 64) - 1),
}
"""The values each protobuf integer kind holds."""


def declared_fields(
    cls: type[betterproto.Message],
) -> list[tuple[str, betterproto.FieldMetadata, Any]]:
    """Each field of ``cls``: its name, its betterproto metadata and its type hint."""
    hints = typing.get_type_hints(cls)
    return [
        (field.name, betterproto.FieldMetadata.get(field), hints[field.name])
        for field in dataclasses.fields(typing.cast(Any, cls))
    ]


def varint(value: int) -> bytes:
    """``value`` as a protobuf varint (negative numbers as their 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_MUTATIONS = ("truncate", "overwrite", "wire-type", "insert", "delete", "long-varint", "field")


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after a few edits of the kinds fuzzers make: cuts, flips, splices, long numbers."""
    edited = bytearray(data)
    for kind in draw(st.lists(st.sampled_from(_MUTATIONS), min_size=1, max_size=4)):
        at = draw(st.integers(0, len(edited)))
        if kind == "truncate":
            del edited[at:]
        elif kind == "overwrite" and at < len(edited):
            edited[at] = draw(st.integers(0, 255))
        elif kind == "wire-type" and at < len(edited):
            edited[at] = edited[at] & ~7 | draw(st.integers(0, 7))
        elif kind == "insert":
            edited[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete":
            del edited[at : at + draw(st.integers(1, 8))]
        elif kind == "long-varint":
            edited[at:at] = b"\xff" * draw(st.integers(8, 12)) + bytes([draw(st.integers(0, 127))])
        elif kind == "field":
            number, wire_type = draw(st.integers(0, 20)), draw(st.integers(0, 7))
            edited[at:at] = varint(number << 3 | wire_type) + draw(st.binary(max_size=10))
    return bytes(edited)
