"""Message classes of every field kind, Hypothesis strategies for messages of any class, and
the exact state of a message.

The contract uses a few field kinds only; ``KINDS`` declares every other kind betterproto
generates (each scalar singular, repeated, optional and in a oneof; maps of many key and value
kinds; a message that contains itself), so the codec is proven on them too, and
``FALLBACKS`` the classes the codec leaves to betterproto.

``messages(cls)`` draws instances the ways code makes them: keyword arguments or attribute by
attribute, fields left unset or set to their default on purpose, several members of a oneof
set in turn, nested messages set but empty, enum values the enum does not name, undeclared
fields carried along. ``state(message)`` is everything an instance holds, so two messages
with equal states are the same to any reader (``==`` ignores unknown fields, the oneof
member, which fields were set and NaN signs).
"""

# ruff: noqa: RUF009 - betterproto field declarations are calls in dataclass defaults
from __future__ import annotations

import struct
import types
import typing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import betterproto
from hypothesis import strategies as st
from protobuf_fuzzing import INTEGER_RANGES, declared_fields, varint

from modelcatalog import v1

CONTRACT_MESSAGES = sorted(
    (
        value
        for value in vars(v1).values()
        if isinstance(value, type)
        and issubclass(value, betterproto.Message)
        and value.__module__ == v1.Model.__module__
    ),
    key=lambda cls: cls.__name__,
)
"""Every message class generated from the contract."""

_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
TIMES = st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=_ZONES)
"""Aware datetimes (what betterproto holds for a Timestamp), across the years and zones."""
_MAX_DEPTH = 3


def values(proto_type: str, hint: Any, depth: int) -> st.SearchStrategy[Any]:
    """Values of one field of ``proto_type`` whose Python type is ``hint``."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return st.lists(values(proto_type, arguments[0], depth), max_size=4)
    if origin in (typing.Union, types.UnionType):
        return values(proto_type, arguments[0], depth)
    if proto_type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[proto_type]
        return st.integers(low, high)
    if proto_type == betterproto.TYPE_ENUM:
        named = st.sampled_from(list(hint))
        return named | st.integers(0, (1 << 31) - 1).map(hint.try_value)
    if proto_type == betterproto.TYPE_MESSAGE:
        if hint is datetime:
            return TIMES
        if hint is timedelta:
            return st.timedeltas(timedelta(days=-1000), timedelta(days=1000))
        if depth >= _MAX_DEPTH:
            return st.builds(hint)
        return messages(hint, depth + 1) | st.builds(hint)
    scalars: dict[str, st.SearchStrategy[Any]] = {
        betterproto.TYPE_STRING: st.text(max_size=12),
        betterproto.TYPE_BYTES: st.binary(max_size=12),
        betterproto.TYPE_BOOL: st.booleans(),
        betterproto.TYPE_FLOAT: st.floats(width=32),
        betterproto.TYPE_DOUBLE: st.floats(),
    }
    return scalars[proto_type]


def unknown_fields(cls: type[betterproto.Message]) -> st.SearchStrategy[bytes]:
    """Fields ``cls`` does not declare, of every wire type a protobuf writer uses."""
    declared = {meta.number for _, meta, _ in declared_fields(cls)}
    numbers = st.integers(1, (1 << 29) - 1).filter(lambda number: number not in declared)
    one = st.tuples(numbers, st.sampled_from([0, 1, 2, 5])).flatmap(
        lambda pair: _unknown_value(pair[1]).map(
            lambda value: varint(pair[0] << 3 | pair[1]) + value
        )
    )
    return st.lists(one, max_size=3).map(b"".join)


def _unknown_value(wire_type: int) -> st.SearchStrategy[bytes]:
    if wire_type == 0:
        return st.integers(0, (1 << 64) - 1).map(varint)
    if wire_type == 2:
        return st.binary(max_size=8).map(lambda payload: varint(len(payload)) + payload)
    return st.binary(min_size=8 if wire_type == 1 else 4, max_size=8 if wire_type == 1 else 4)


@st.composite
def field_values(
    draw: st.DrawFn, cls: type[betterproto.Message], depth: int = 0
) -> list[tuple[str, Any]]:
    """Some fields of ``cls`` (in declaration order) and values for them."""
    chosen: list[tuple[str, Any]] = []
    for name, meta, hint in declared_fields(cls):
        if not draw(st.booleans()):
            continue
        value: Any
        if meta.proto_type == betterproto.TYPE_MAP:
            key_hint, value_hint = typing.get_args(hint)
            assert meta.map_types is not None
            value = draw(
                st.dictionaries(
                    values(meta.map_types[0], key_hint, depth),
                    values(meta.map_types[1], value_hint, depth),
                    max_size=3,
                )
            )
        elif meta.wraps:
            value = draw(st.none() | values(meta.wraps, typing.get_args(hint)[0], depth))
        elif meta.optional:
            value = draw(st.none() | values(meta.proto_type, hint, depth))
        else:
            value = draw(values(meta.proto_type, hint, depth))
        chosen.append((name, value))
    return chosen


@st.composite
def messages(
    draw: st.DrawFn, cls: type[betterproto.Message], depth: int = 0
) -> betterproto.Message:
    """An instance of ``cls``, made as code makes them (see the module docstring)."""
    chosen = draw(field_values(cls, depth))
    if draw(st.booleans()):
        message = cls(**dict(chosen))
    else:
        message = cls()
        for name, value in draw(st.permutations(chosen)):
            setattr(message, name, value)
    extra = draw(unknown_fields(cls))
    if extra:
        message._unknown_fields = extra
    return message


def state(value: Any) -> Any:
    """Everything ``value`` holds, nested messages included, as comparable data."""
    if isinstance(value, betterproto.Message):
        raw = object.__getattribute__(value, "__dict__")
        return (type(value), {name: state(item) for name, item in raw.items()})
    if value is betterproto.PLACEHOLDER:
        return "<unset>"
    if isinstance(value, float):
        return (float, struct.pack("<d", value))
    if isinstance(value, list):
        return (list, [state(item) for item in value])
    if isinstance(value, dict):
        return (dict, [(state(key), state(item)) for key, item in value.items()])
    if isinstance(value, datetime):
        return (datetime, value, value.utcoffset())
    if isinstance(value, betterproto.Enum):
        return (type(value), int(value), value.name)
    return (type(value), value)


class Color(betterproto.Enum):
    """An enum, with a zero value as proto3 requires."""

    UNSPECIFIED = 0
    RED = 1
    BLUE = 2


@dataclass(eq=False, repr=False)
class Scalars(betterproto.Message):
    """Each scalar kind once, singular."""

    int32: int = betterproto.int32_field(1)
    int64: int = betterproto.int64_field(2)
    uint32: int = betterproto.uint32_field(3)
    uint64: int = betterproto.uint64_field(4)
    sint32: int = betterproto.sint32_field(5)
    sint64: int = betterproto.sint64_field(6)
    fixed32: int = betterproto.fixed32_field(7)
    fixed64: int = betterproto.fixed64_field(8)
    sfixed32: int = betterproto.sfixed32_field(9)
    sfixed64: int = betterproto.sfixed64_field(10)
    float32: float = betterproto.float_field(11)
    double: float = betterproto.double_field(12)
    boolean: bool = betterproto.bool_field(13)
    string: str = betterproto.string_field(14)
    blob: bytes = betterproto.bytes_field(15)
    color: Color = betterproto.enum_field(16)
    at: datetime = betterproto.message_field(17)
    # Past 15, tags take two bytes.
    far: int = betterproto.int64_field(2048)


@dataclass(eq=False, repr=False)
class Repeated(betterproto.Message):
    """Each kind repeated: scalars packed, text, bytes, messages and times one by one."""

    int32: list[int] = betterproto.int32_field(1)
    int64: list[int] = betterproto.int64_field(2)
    uint32: list[int] = betterproto.uint32_field(3)
    uint64: list[int] = betterproto.uint64_field(4)
    sint32: list[int] = betterproto.sint32_field(5)
    sint64: list[int] = betterproto.sint64_field(6)
    fixed32: list[int] = betterproto.fixed32_field(7)
    fixed64: list[int] = betterproto.fixed64_field(8)
    sfixed32: list[int] = betterproto.sfixed32_field(9)
    sfixed64: list[int] = betterproto.sfixed64_field(10)
    float32: list[float] = betterproto.float_field(11)
    double: list[float] = betterproto.double_field(12)
    boolean: list[bool] = betterproto.bool_field(13)
    string: list[str] = betterproto.string_field(14)
    blob: list[bytes] = betterproto.bytes_field(15)
    color: list[Color] = betterproto.enum_field(16)
    at: list[datetime] = betterproto.message_field(17)
    scalars: list[Scalars] = betterproto.message_field(18)


@dataclass(eq=False, repr=False)
class Optionals(betterproto.Message):
    """proto3 ``optional`` fields: written whenever set, zero included."""

    int32: int | None = betterproto.int32_field(1, optional=True)
    sint64: int | None = betterproto.sint64_field(2, optional=True)
    fixed64: int | None = betterproto.fixed64_field(3, optional=True)
    float32: float | None = betterproto.float_field(4, optional=True)
    boolean: bool | None = betterproto.bool_field(5, optional=True)
    string: str | None = betterproto.string_field(6, optional=True)
    blob: bytes | None = betterproto.bytes_field(7, optional=True)
    color: Color | None = betterproto.enum_field(8, optional=True)
    scalars: Scalars | None = betterproto.message_field(9, optional=True)


@dataclass(eq=False, repr=False)
class Maps(betterproto.Message):
    """Maps of several key and value kinds."""

    names: dict[int, str] = betterproto.map_field(
        1, betterproto.TYPE_INT32, betterproto.TYPE_STRING
    )
    scalars: dict[str, Scalars] = betterproto.map_field(
        2, betterproto.TYPE_STRING, betterproto.TYPE_MESSAGE
    )
    colors: dict[bool, Color] = betterproto.map_field(
        3, betterproto.TYPE_BOOL, betterproto.TYPE_ENUM
    )
    ratios: dict[int, float] = betterproto.map_field(
        4, betterproto.TYPE_UINT64, betterproto.TYPE_DOUBLE
    )
    blobs: dict[int, bytes] = betterproto.map_field(
        5, betterproto.TYPE_SINT64, betterproto.TYPE_BYTES
    )
    times: dict[str, datetime] = betterproto.map_field(
        6, betterproto.TYPE_STRING, betterproto.TYPE_MESSAGE
    )
    counts: dict[int, int] = betterproto.map_field(
        7, betterproto.TYPE_FIXED32, betterproto.TYPE_SINT32
    )
    labels: dict[str, str] = betterproto.map_field(
        8, betterproto.TYPE_STRING, betterproto.TYPE_STRING
    )


@dataclass(eq=False, repr=False)
class Choices(betterproto.Message):
    """Two oneofs of many kinds, declared around and between plain fields."""

    before: str = betterproto.string_field(1)
    number: int = betterproto.int32_field(2, group="pick")
    text: str = betterproto.string_field(3, group="pick")
    blob: bytes = betterproto.bytes_field(4, group="pick")
    scalars: Scalars = betterproto.message_field(5, group="pick")
    at: datetime = betterproto.message_field(6, group="pick")
    ratio: float = betterproto.double_field(7, group="pick")
    flag: bool = betterproto.bool_field(8, group="pick")
    between: int = betterproto.uint32_field(9)
    color: Color = betterproto.enum_field(10, group="pick")
    offset: int = betterproto.sint64_field(11, group="other")
    tree: Tree = betterproto.message_field(12, group="other")


@dataclass(eq=False, repr=False)
class Tree(betterproto.Message):
    """A message that contains itself, singly and repeated."""

    label: str = betterproto.string_field(1)
    child: Tree = betterproto.message_field(2)
    children: list[Tree] = betterproto.message_field(3)
    at: datetime = betterproto.message_field(4)


@dataclass(eq=False, repr=False)
class Empty(betterproto.Message):
    """A message without fields, which still carries unknown fields."""


@dataclass(eq=False, repr=False)
class Wrapped(betterproto.Message):
    """A google.protobuf wrapper field: left to betterproto."""

    count: int | None = betterproto.message_field(1, wraps=betterproto.TYPE_INT32)


@dataclass(eq=False, repr=False)
class Lasting(betterproto.Message):
    """A google.protobuf.Duration field (a timedelta): left to betterproto."""

    span: timedelta = betterproto.message_field(1)


@dataclass(eq=False, repr=False)
class SelfEncoding(betterproto.Message):
    """A class with its own encoding: left to betterproto, which calls it."""

    name: str = betterproto.string_field(1)

    def __bytes__(self) -> bytes:
        return super().__bytes__() + b"\x10\x01"


@dataclass(eq=False, repr=False)
class Announced(betterproto.Message):
    """A class that runs code of its own when made, as betterproto generates for deprecated
    fields: made by its constructor."""

    name: str = betterproto.string_field(1)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.made_by_constructor = True


@dataclass(eq=False, repr=False)
class Clashing(betterproto.Message):
    """A field named like a helper of the compiled constructor: made by its own constructor."""

    _build: str = betterproto.string_field(1)


@dataclass(eq=False, repr=False)
class Holder(betterproto.Message):
    """A compiled message holding messages left to betterproto."""

    wrapped: Wrapped = betterproto.message_field(1)
    lasting: list[Lasting] = betterproto.message_field(2)
    own: SelfEncoding = betterproto.message_field(3)
    empty: Empty = betterproto.message_field(4)


KINDS: list[type[betterproto.Message]] = [
    Scalars,
    Repeated,
    Optionals,
    Maps,
    Choices,
    Tree,
    Empty,
    Holder,
]
"""The test classes the codec compiles: every field kind the contract does not use yet."""
FALLBACKS: list[type[betterproto.Message]] = [
    Wrapped,
    Lasting,
    SelfEncoding,
    Announced,
    Clashing,
]
"""The test classes the codec leaves to betterproto."""
