"""What the wire holds for each field of a message class, read once from betterproto's metadata.

A ``MessagePlan`` is everything the encoder and decoder compilers need: per field its number,
its kind, whether it is repeated, a map, optional or a oneof member, and the class of a nested
message. A class the compilers cannot serve exactly as betterproto does gets a ``Fallback``
instead, with the reason; betterproto's own ``__bytes__`` and ``parse`` serve it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import betterproto

from . import _upstream

VARINT_KINDS = frozenset(betterproto.WIRE_VARINT_TYPES)
FIXED_32_KINDS = frozenset(betterproto.WIRE_FIXED_32_TYPES)
FIXED_64_KINDS = frozenset(betterproto.WIRE_FIXED_64_TYPES)
PACKED_KINDS = frozenset(betterproto.PACKED_TYPES)
#: ``struct`` formats of the fixed-width kinds, as betterproto packs them.
STRUCT_FORMATS = {
    betterproto.TYPE_DOUBLE: "d",
    betterproto.TYPE_FLOAT: "f",
    betterproto.TYPE_FIXED32: "I",
    betterproto.TYPE_FIXED64: "Q",
    betterproto.TYPE_SFIXED32: "i",
    betterproto.TYPE_SFIXED64: "q",
}
TIMESTAMP = "timestamp"
"""The kind of a ``google.protobuf.Timestamp`` field, which betterproto holds as a datetime."""

_SCALAR_KINDS = VARINT_KINDS | FIXED_32_KINDS | FIXED_64_KINDS
_SCALAR_KINDS |= {betterproto.TYPE_STRING, betterproto.TYPE_BYTES}


@dataclass(frozen=True, slots=True)
class Value:
    """One value of a field (or of a map entry's key or value) and its encoding."""

    #: betterproto's type name (``betterproto.TYPE_INT64`` ...), or ``TIMESTAMP``.
    kind: str
    #: The class of a nested message, the enum class of an enum, else ``None``.
    cls: Any
    #: Makes the value a field holds when it was never set.
    default: Callable[[], Any]

    @property
    def wire_type(self) -> int:
        if self.kind in VARINT_KINDS:
            return betterproto.WIRE_VARINT
        if self.kind in FIXED_32_KINDS:
            return betterproto.WIRE_FIXED_32
        if self.kind in FIXED_64_KINDS:
            return betterproto.WIRE_FIXED_64
        return betterproto.WIRE_LEN_DELIM


@dataclass(frozen=True, slots=True)
class Field:
    """One declared field of a message class."""

    name: str
    number: int
    value: Value
    #: A ``repeated`` field (a list), never a map.
    repeated: bool
    #: For a map: the entry class betterproto made, its key and its value.
    entry: tuple[type[betterproto.Message], Value, Value] | None
    #: The oneof group this field belongs to.
    group: str | None
    #: A proto3 ``optional`` field: ``None`` when unset, written whenever set.
    optional: bool
    #: Makes the value the field holds when it was never set ([] for repeated, {} for maps).
    default: Callable[[], Any]

    def tag(self, wire_type: int | None = None) -> int:
        return self.number << 3 | (self.value.wire_type if wire_type is None else wire_type)

    @property
    def packed(self) -> bool:
        """Written as one length-delimited run: a repeated scalar that is not text or bytes."""
        return self.repeated and self.value.kind in PACKED_KINDS


@dataclass(frozen=True, slots=True)
class MessagePlan:
    """The fields of one message class, in declaration order (the order betterproto writes)."""

    cls: type[betterproto.Message]
    fields: tuple[Field, ...]

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.group for f in self.fields if f.group is not None))


@dataclass(frozen=True, slots=True)
class ConstructionPlan:
    """The parameters of a message class's ``__init__``: its fields in declaration order."""

    cls: type[betterproto.Message]
    #: Each field's name, whether it is proto3 ``optional`` and its oneof group.
    fields: tuple[tuple[str, bool, str | None], ...]


@dataclass(frozen=True, slots=True)
class Fallback:
    """A class the codec leaves to betterproto, and why."""

    cls: type[betterproto.Message]
    reason: str


class _Unsupported(Exception):
    """A field the compilers do not reproduce betterproto's handling of."""


@functools.cache
def encoding_plan(message_class: type[betterproto.Message]) -> MessagePlan | Fallback:
    """The plan for encoding ``message_class``, or why betterproto's ``__bytes__`` serves it."""
    return _plan(message_class, _upstream.ENCODING_METHODS)


@functools.cache
def decoding_plan(message_class: type[betterproto.Message]) -> MessagePlan | Fallback:
    """The plan for decoding ``message_class``, or why betterproto's ``parse`` serves it.

    ``parse`` starts from ``message_class()`` and sets each field read, so a class whose
    construction runs code of its own is decoded by betterproto too."""
    construction = construction_plan(message_class)
    if isinstance(construction, Fallback):
        return construction
    return _plan(message_class, _upstream.DECODING_METHODS)


@functools.cache
def construction_plan(message_class: type[betterproto.Message]) -> ConstructionPlan | Fallback:
    """The plan for making ``message_class`` instances, or why its own constructor must."""
    overridden = _upstream.overrides(message_class, _upstream.CONSTRUCTION_METHODS)
    if overridden:
        return Fallback(message_class, f"it overrides {', '.join(overridden)}")
    if not _upstream.dataclass_init(message_class):
        return Fallback(message_class, "its __init__ is not the one @dataclass generates")
    metadata = _upstream.metadata(message_class)
    fields = []
    for field in dataclasses.fields(message_class):  # type: ignore[arg-type]  # a dataclass
        meta = metadata.meta_by_field_name[field.name]
        default = None if meta.optional else _upstream.PLACEHOLDER
        if field.default is not default or not field.init or field.kw_only is True:
            return Fallback(message_class, f"field {field.name} is declared unlike betterproto's")
        fields.append((field.name, bool(meta.optional), meta.group))
    return ConstructionPlan(message_class, tuple(fields))


def _plan(
    message_class: type[betterproto.Message], methods: tuple[str, ...]
) -> MessagePlan | Fallback:
    overridden = _upstream.overrides(message_class, methods)
    if overridden:
        return Fallback(message_class, f"it overrides {', '.join(overridden)}")
    try:
        return MessagePlan(message_class, _fields(message_class))
    except _Unsupported as unsupported:
        return Fallback(message_class, str(unsupported))


def _fields(message_class: type[betterproto.Message]) -> tuple[Field, ...]:
    metadata = _upstream.metadata(message_class)
    fields = []
    for name, meta in metadata.meta_by_field_name.items():
        try:
            fields.append(_field(metadata, name, meta))
        except _Unsupported as unsupported:
            raise _Unsupported(f"field {name}: {unsupported}") from None
    return tuple(fields)


def _field(
    metadata: betterproto.ProtoClassMetadata, name: str, meta: betterproto.FieldMetadata
) -> Field:
    default = metadata.default_gen[name]
    if meta.wraps:
        raise _Unsupported(f"a google.protobuf wrapper of {meta.wraps}")
    if meta.group is not None and (meta.optional or default in (list, dict)):
        raise _Unsupported("a oneof member that is also optional, repeated or a map")
    entry = None
    if meta.proto_type == betterproto.TYPE_MAP:
        entry_class = metadata.cls_by_field[name]
        entry_metadata = _upstream.metadata(entry_class)
        key, value = (
            _value(entry_metadata, part, entry_metadata.meta_by_field_name[part])
            for part in ("key", "value")
        )
        entry = (entry_class, key, value)
        # The Value of a map field itself is never written: the entry's key and value are.
        field_value = Value(betterproto.TYPE_MAP, entry_class, dict)
    else:
        field_value = _value(metadata, name, meta)
    return Field(
        name=name,
        number=meta.number,
        value=field_value,
        repeated=default is list,
        entry=entry,
        group=meta.group,
        optional=bool(meta.optional),
        default=default,
    )


def _value(
    metadata: betterproto.ProtoClassMetadata, name: str, meta: betterproto.FieldMetadata
) -> Value:
    kind = meta.proto_type
    default = metadata.default_gen[name]
    if meta.wraps:
        raise _Unsupported(f"a google.protobuf wrapper of {meta.wraps}")
    if kind == betterproto.TYPE_ENUM:
        return Value(kind, metadata.cls_by_field[name], default)
    if kind in _SCALAR_KINDS:
        return Value(kind, None, default)
    if kind != betterproto.TYPE_MESSAGE:
        raise _Unsupported(f"the field type {kind!r}")
    cls = metadata.cls_by_field[name]
    if cls is datetime:
        return Value(TIMESTAMP, None, default)
    if isinstance(cls, type) and issubclass(cls, betterproto.Message):
        return Value(kind, cls, default)
    raise _Unsupported(f"a message betterproto holds as {cls!r}")
