"""The request codec: protobuf bytes in, messages out, bad bytes the client's fault.

betterproto decodes whatever it is given: a field sent with another wire type reaches the
handler as another Python type (an int where a str is declared), a length past the end is cut
short silently and group markers are read as fields. So ``RequestCodec`` first walks the wire
format of each request against the fields its message class declares, and refuses what
betterproto would not decode the way protobuf's own runtime does: INVALID_ARGUMENT with the
reason MALFORMED_REQUEST and the dotted path of the field at fault. The walk reads tags,
numbers and lengths only; it steps over ``bytes`` payloads (1 MiB upload chunks) without
copying or scanning them, and reads each string once to check its UTF-8.

What the walk accepts, matching protobuf where betterproto reads the same value:

- varints of up to 10 bytes, holding at most 64 bits; int32, int64, sint64, uint64 and bool
  take any such value (int32 keeps the low 32 bits, bool is "not zero", as in protobuf);
- uint32 and sint32 values below 2**32, and enum values below 2**31: protobuf would truncate
  larger ones (and read negative enums), betterproto keeps them whole, so they are refused;
- a repeated scalar field either value by value or packed in one length-delimited run;
- unknown fields of wire types 0, 1, 2 and 5, kept as betterproto keeps them. Groups (wire
  types 3 and 4) are refused: proto3 cannot declare them, and betterproto would read a group's
  contents as fields of the enclosing message;
- a ``google.protobuf.Timestamp`` field (which betterproto holds as a ``datetime``) checked as
  the Timestamp message it is, and refused when its value lies outside the years 1 to 9999,
  which a ``datetime`` cannot hold (betterproto's conversion would fail on it).

A request that passes is then decoded, and every response encoded, by the SDK's compiled codec
(``modelcatalog.wire``): the same messages betterproto's ``parse`` and ``bytes()`` make, about
50 times faster. Messages that are not betterproto's (grpclib's health service, reflection)
are decoded by protobuf's runtime, which checks them itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import betterproto
from betterproto.lib.google.protobuf import Timestamp
from google.protobuf.message import DecodeError
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from modelcatalog import wire

from ..errors import refusal
from ._upstream import betterproto_metadata

_VARINT = betterproto.WIRE_VARINT
_FIXED_64 = betterproto.WIRE_FIXED_64
_LENGTH_DELIMITED = betterproto.WIRE_LEN_DELIM
_FIXED_32 = betterproto.WIRE_FIXED_32
_WIRE_TYPE_NAMES = {
    _VARINT: "a varint",
    _FIXED_64: "a 64-bit value",
    _LENGTH_DELIMITED: "a length-delimited value",
    3: "a group start",
    4: "a group end",
    _FIXED_32: "a 32-bit value",
}
_FIXED_WIDTH = {_FIXED_64: 8, _FIXED_32: 4}
_MAX_VARINT_BYTES = 10
_VARINT_LIMITS = {
    betterproto.TYPE_UINT32: 1 << 32,
    betterproto.TYPE_SINT32: 1 << 32,
    betterproto.TYPE_ENUM: 1 << 31,
}
_LARGEST_TAG = (1 << 32) - 1
#: protobuf's own default recursion limit; only a self-referencing message can reach it.
MAX_NESTING_DEPTH = 100
#: Values (fields, map entries, packed elements) one request may hold, and unknown fields
#: among them. No request of the contract comes near; betterproto's decoding grows faster than
#: the number of values (it concatenates unknown fields one by one), so a request made of
#: millions of tiny fields would hold the event loop for minutes.
MAX_VALUES_PER_REQUEST = 10_000
MAX_UNKNOWN_FIELDS_PER_REQUEST = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Budget:
    """How many more values and unknown fields the request being checked may hold."""

    def __init__(self) -> None:
        self.values = MAX_VALUES_PER_REQUEST
        self.unknown = MAX_UNKNOWN_FIELDS_PER_REQUEST

    def spend(self, *, unknown: bool = False) -> None:
        self.values -= 1
        if self.values < 0:
            raise _Malformed(f"the request holds more than {MAX_VALUES_PER_REQUEST} values")
        if unknown:
            self.unknown -= 1
            if self.unknown < 0:
                raise _Malformed(
                    f"the request holds more than {MAX_UNKNOWN_FIELDS_PER_REQUEST} unknown fields"
                )


class RequestCodec(wire.Codec):
    """Protobuf, refusing a request whose bytes do not decode into its declared field types."""

    def decode(self, data: bytes, message_type: Any) -> Any:
        if isinstance(message_type, type) and issubclass(message_type, betterproto.Message):
            try:
                _check_message(data, 0, len(data), message_type, 0, _Budget())
            except _Malformed as malformed:
                raise _malformed_request(message_type, malformed) from None
            return wire.decode(data, message_type)
        try:
            return super().decode(data, message_type)
        except DecodeError:
            raise _malformed_request(
                message_type, _Malformed("it does not parse as protobuf")
            ) from None


class _Malformed(Exception):
    """What is wrong with a request's bytes, and where: field names from the outside in."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []

    def inside(self, field_name: str) -> _Malformed:
        self.path.insert(0, field_name)
        return self


def _malformed_request(message_type: type[Any], malformed: _Malformed) -> GRPCError:
    field = ".".join(malformed.path) or None
    where = f"field {field}: " if field else ""
    return refusal(
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        f"the request is not a valid {message_type.__name__} message: {where}{malformed.problem}",
        field=field,
    )


@dataclass(frozen=True, slots=True)
class _Field:
    """What the wire may carry for one declared field."""

    name: str
    proto_type: str
    #: The wire type of one value.
    wire_type: int
    #: A repeated scalar, which may also arrive as one length-delimited (packed) run.
    packable: bool
    #: For varints, the first value out of range.
    varint_limit: int
    #: For message and map fields, the class of the nested message (a map's entry class).
    message: type[betterproto.Message] | None
    #: A google.protobuf.Timestamp, which betterproto converts to a datetime.
    timestamp: bool = False


def _wire_type_of(proto_type: str) -> int:
    if proto_type in betterproto.WIRE_VARINT_TYPES:
        return _VARINT
    if proto_type in betterproto.WIRE_FIXED_32_TYPES:
        return _FIXED_32
    if proto_type in betterproto.WIRE_FIXED_64_TYPES:
        return _FIXED_64
    return _LENGTH_DELIMITED


@functools.cache
def _declared_fields(message_class: type[betterproto.Message]) -> dict[int, _Field]:
    """The fields of ``message_class`` by number, from betterproto's class metadata."""
    metadata = betterproto_metadata(message_class)
    fields: dict[int, _Field] = {}
    for name, meta in metadata.meta_by_field_name.items():
        nested: type[betterproto.Message] | None = None
        timestamp = False
        if meta.proto_type in (betterproto.TYPE_MESSAGE, betterproto.TYPE_MAP):
            nested = metadata.cls_by_field[name]
            if nested is datetime:
                nested, timestamp = Timestamp, True
            if not (isinstance(nested, type) and issubclass(nested, betterproto.Message)):
                raise TypeError(
                    f"{message_class.__name__}.{name} is a {nested!r}: the request codec checks "
                    "plain messages only, not well-known types betterproto maps to Python types"
                )
        fields[meta.number] = _Field(
            name=name,
            proto_type=meta.proto_type,
            wire_type=_wire_type_of(meta.proto_type),
            packable=(
                meta.proto_type in betterproto.PACKED_TYPES and metadata.default_gen[name] is list
            ),
            varint_limit=_VARINT_LIMITS.get(meta.proto_type, 1 << 64),
            message=nested,
            timestamp=timestamp,
        )
    return fields


def _check_message(
    data: bytes,
    start: int,
    end: int,
    message_class: type[betterproto.Message],
    depth: int,
    budget: _Budget,
) -> None:
    """Refuses ``data[start:end]`` unless betterproto decodes it into ``message_class``'s types."""
    if depth > MAX_NESTING_DEPTH:
        raise _Malformed(f"messages nest more than {MAX_NESTING_DEPTH} levels deep")
    fields = _declared_fields(message_class)
    position = start
    while position < end:
        tag, position = _read_varint(data, position, end)
        number, wire_type = tag >> 3, tag & 7
        if number == 0 or tag > _LARGEST_TAG:
            raise _Malformed(f"field number {number} is outside 1 to 536870911")
        field = fields.get(number)
        budget.spend(unknown=field is None)
        if field is None:
            position = _skip_unknown(data, position, end, number, wire_type)
            continue
        try:
            position = _check_field(data, position, end, field, wire_type, depth, budget)
        except _Malformed as malformed:
            raise malformed.inside(field.name) from None


def _check_field(
    data: bytes,
    position: int,
    end: int,
    field: _Field,
    wire_type: int,
    depth: int,
    budget: _Budget,
) -> int:
    """Checks one value of ``field`` at ``position``; returns the position after it."""
    if wire_type == field.wire_type:
        if wire_type == _VARINT:
            return _check_varint(data, position, end, field)
        if wire_type != _LENGTH_DELIMITED:
            return _skip_fixed(position, end, wire_type)
        length, position = _read_varint(data, position, end)
        stop = _payload_end(position, end, length)
        if field.message is not None:
            _check_message(data, position, stop, field.message, depth + 1, budget)
            if field.timestamp:
                _check_timestamp(data, position, stop)
        elif field.proto_type == betterproto.TYPE_STRING:
            _check_utf8(data, position, stop)
        return stop
    if wire_type == _LENGTH_DELIMITED and field.packable:
        length, position = _read_varint(data, position, end)
        stop = _payload_end(position, end, length)
        _check_packed(data, position, stop, field, budget)
        return stop
    raise _Malformed(
        f"a {field.proto_type} field arrived as {_describe_wire_type(wire_type)}, "
        f"not as {_describe_wire_type(field.wire_type)}"
    )


def _check_packed(data: bytes, start: int, stop: int, field: _Field, budget: _Budget) -> None:
    if field.wire_type == _VARINT:
        position = start
        while position < stop:
            budget.spend()
            position = _check_varint(data, position, stop, field)
        return
    width = _FIXED_WIDTH[field.wire_type]
    if (stop - start) % width:
        raise _Malformed(
            f"a packed run of {field.proto_type} values is {stop - start} bytes, "
            f"not a multiple of {width}"
        )
    for _ in range((stop - start) // width):
        budget.spend()


def _check_varint(data: bytes, position: int, end: int, field: _Field) -> int:
    value, position = _read_varint(data, position, end)
    if value >= field.varint_limit:
        raise _Malformed(f"{value} is out of range for {field.proto_type}")
    return position


def _check_timestamp(data: bytes, start: int, stop: int) -> None:
    """Refuses a Timestamp whose datetime (made as betterproto's ``to_datetime`` makes it)
    would be out of range; its bytes were checked as a Timestamp message already."""
    value = Timestamp().parse(data[start:stop])
    try:
        _EPOCH + timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)
    except OverflowError:
        raise _Malformed("the timestamp lies outside the years 1 to 9999") from None


def _check_utf8(data: bytes, start: int, stop: int) -> None:
    try:
        str(memoryview(data)[start:stop], "utf-8")
    except UnicodeDecodeError as error:
        raise _Malformed(f"the string is not valid UTF-8 (byte {error.start})") from None


def _skip_unknown(data: bytes, position: int, end: int, number: int, wire_type: int) -> int:
    if wire_type == _VARINT:
        return _read_varint(data, position, end)[1]
    if wire_type == _LENGTH_DELIMITED:
        length, position = _read_varint(data, position, end)
        return _payload_end(position, end, length)
    if wire_type in _FIXED_WIDTH:
        return _skip_fixed(position, end, wire_type)
    raise _Malformed(
        f"unknown field {number} arrived as {_describe_wire_type(wire_type)}; "
        "only wire types 0, 1, 2 and 5 are accepted"
    )


def _skip_fixed(position: int, end: int, wire_type: int) -> int:
    stop = position + _FIXED_WIDTH[wire_type]
    if stop > end:
        raise _Malformed(f"the message ends inside {_WIRE_TYPE_NAMES[wire_type]}")
    return stop


def _payload_end(position: int, end: int, length: int) -> int:
    stop = position + length
    if stop > end:
        raise _Malformed(
            f"a value declares {length} bytes but only {end - position} remain in its message"
        )
    return stop


def _read_varint(data: bytes, position: int, end: int) -> tuple[int, int]:
    """The varint at ``position`` and the position after it."""
    value = 0
    for shift in range(0, 7 * _MAX_VARINT_BYTES, 7):
        if position >= end:
            raise _Malformed("the message ends inside a varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                raise _Malformed("a varint holds more than 64 bits")
            return value, position
    raise _Malformed(f"a varint runs longer than {_MAX_VARINT_BYTES} bytes")


def _describe_wire_type(wire_type: int) -> str:
    if wire_type in _WIRE_TYPE_NAMES:
        return f"{_WIRE_TYPE_NAMES[wire_type]} (wire type {wire_type})"
    return f"wire type {wire_type}, which does not exist"
