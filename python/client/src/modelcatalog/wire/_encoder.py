"""Compiles, per message class, a function that writes exactly the bytes ``bytes(message)`` does.

betterproto's ``__bytes__`` walks the class metadata for every message and every field, reads
each field through ``__getattribute__`` and builds each value in a fresh ``BytesIO``. The
compiled function does the same walk once, at compile time, and keeps only what the class
needs: one test per field on the raw instance state, its tag as a constant, the value written
into a list of parts the caller joins once (or sends unjoined). Where betterproto's choice
depends on the field (a oneof member or proto3 ``optional`` is written even when zero, a nested
message is written when it was set even if empty, a map entry's empty text is left out) the
generated code makes the same choice. A value that is not of its field's declared type raises
``NotCompiled``: the caller then asks betterproto itself, which fails or writes it its own way.

A ``bytes`` field costs one copy of its payload, the final join, or none when the parts are
sent as they are (``wire.Unjoined``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import betterproto

from . import _plan, _runtime, _upstream
from ._plan import Field, MessagePlan, Value
from ._source import Source

#: A compiled encoder: the parts of a message's encoding, in order, to be joined.
Encoder = Callable[[betterproto.Message], list[bytes]]

_HELPERS: dict[str, Any] = {
    "_state": _upstream.instance_state,
    "_PH": _upstream.PLACEHOLDER,
    "_join": b"".join,
    "_S": _runtime.SMALL_VARINTS,
    "_varint": _runtime.varint,
    "_zigzag": _runtime.zigzag,
    "_timestamp": _runtime.timestamp_bytes,
    "_datetime": datetime,
    "_EPOCH": _upstream.DATETIME_ZERO,
    "_list": list,
    "_dict": dict,
    "_NotCompiled": _runtime.NotCompiled,
    "_pack_many": lambda code, values: struct.pack(f"<{len(values)}{code}", *values),
}
_SERIALIZED_ON_WIRE = repr(_upstream.SERIALIZED_ON_WIRE)

#: How betterproto decides whether to write a value.
_IMPLICIT = "implicit"  # a plain field: not when it equals the default; a set message always
_ALWAYS = "always"  # a oneof member, an optional field, an item of a repeated field
_NONEMPTY = "nonempty"  # a map entry's key or value: text, bytes and messages when not empty


def compile_encoder(plan: MessagePlan, encoder_of: Callable[[type], Encoder]) -> Encoder:
    """The encoder of ``plan.cls``; ``encoder_of`` gives the encoder of a nested class."""
    source = Source(f"encode_{plan.cls.__name__}", _HELPERS)
    source.add(0, "def " + source.function_name + "(message):")
    source.add(1, "d = _state(message)", "out = []")
    if plan.groups:
        source.add(1, f"groups = d[{_upstream.GROUP_CURRENT!r}]")
    for field in plan.fields:
        _field(source, field, encoder_of)
    source.add(
        1,
        f"unknown = d[{_upstream.UNKNOWN_FIELDS!r}]",
        "if unknown:",
        "    out.append(unknown)",
        "return out",
    )
    return source.compile(f"encoder of {plan.cls.__qualname__}")


def _field(source: Source, field: Field, encoder_of: Callable[[type], Encoder]) -> None:
    get = f"v = d[{field.name!r}]"
    if field.group is not None or field.optional:
        default = source.constant(field.default, "DEFAULT")
        indent = 1
        if field.group is not None:
            source.add(1, f"if groups.get({field.group!r}) == {field.name!r}:")
            indent = 2
        source.add(indent, get, "if v is _PH:", f"    v = {default}()", "if v is not None:")
        _write(source, indent + 1, "v", field.value, _tag(field), _ALWAYS, "out", encoder_of)
        return
    source.add(1, get, "if v is not _PH and v is not None:")
    if field.entry is not None:
        _map(source, field, encoder_of)
    elif field.repeated:
        _repeated(source, field, encoder_of)
    else:
        _write(source, 2, "v", field.value, _tag(field), _IMPLICIT, "out", encoder_of, field)


def _repeated(source: Source, field: Field, encoder_of: Callable[[type], Encoder]) -> None:
    source.add(2, "if v.__class__ is not _list:", "    raise _NotCompiled")
    value = field.value
    if not field.packed:
        source.add(2, "for x in v:")
        _write(source, 3, "x", value, _tag(field), _ALWAYS, "out", encoder_of)
        return
    if value.kind in _plan.STRUCT_FORMATS:
        code = repr(_plan.STRUCT_FORMATS[value.kind])
        source.add(2, "if v:", f"    b = _pack_many({code}, v)")
    elif value.kind in (betterproto.TYPE_SINT32, betterproto.TYPE_SINT64):
        source.add(2, "if v:", "    b = _join([_varint(_zigzag(x)) for x in v])")
    else:
        source.add(2, "if v:", "    b = _join([_S[x] if 0 <= x < 128 else _varint(x) for x in v])")
    tag = source.constant(_runtime.varint(field.tag(betterproto.WIRE_LEN_DELIM)), "TAG")
    source.add(3, "n = len(b)", f"out += ({tag}, _S[n] if n < 128 else _varint(n), b)")


def _map(source: Source, field: Field, encoder_of: Callable[[type], Encoder]) -> None:
    assert field.entry is not None
    _, key, value = field.entry
    tag = source.constant(_runtime.varint(field.tag(betterproto.WIRE_LEN_DELIM)), "TAG")
    source.add(
        2, "if v.__class__ is not _dict:", "    raise _NotCompiled", "for k, x in v.items():"
    )
    source.add(3, "entry = []")
    _write(source, 3, "k", key, _entry_tag(1, key), _NONEMPTY, "entry", encoder_of)
    _write(source, 3, "x", value, _entry_tag(2, value), _NONEMPTY, "entry", encoder_of)
    source.add(
        3,
        "if entry:",
        "    b = _join(entry)",
        "    n = len(b)",
        f"    out += ({tag}, _S[n] if n < 128 else _varint(n), b)",
    )


def _write(
    source: Source,
    indent: int,
    v: str,
    value: Value,
    tag_bytes: bytes,
    mode: str,
    out: str,
    encoder_of: Callable[[type], Encoder],
    field: Field | None = None,
) -> None:
    """Lines that append ``v``'s tag and encoding to the list ``out``, if betterproto would."""
    tag = source.constant(tag_bytes, "TAG")
    kind = value.kind
    lines: Sequence[str]
    if kind in _plan.VARINT_KINDS:
        number = (
            f"_zigzag({v})" if kind in (betterproto.TYPE_SINT32, betterproto.TYPE_SINT64) else v
        )
        if number == v:
            write = f"{out} += ({tag}, _S[{v}] if 0 <= {v} < 128 else _varint({v}))"
        else:
            write = f"{out} += ({tag}, _varint({number}))"
        lines = [f"if {v} != 0:", f"    {write}"] if mode == _IMPLICIT else [write]
    elif kind in _plan.STRUCT_FORMATS:
        pack = source.constant(struct.Struct("<" + _plan.STRUCT_FORMATS[kind]).pack, "PACK")
        write = f"{out} += ({tag}, {pack}({v}))"
        lines = [f"if {v} != 0:", f"    {write}"] if mode == _IMPLICIT else [write]
    elif kind in (betterproto.TYPE_STRING, betterproto.TYPE_BYTES):
        is_text = kind == betterproto.TYPE_STRING
        payload = "b" if is_text else v
        append = [
            f"n = len({payload})",
            f"{out} += ({tag}, _S[n] if n < 128 else _varint(n), {payload})",
        ]
        encode = [f"b = {v}.encode()"] if is_text else []
        if mode == _ALWAYS:
            lines = [*encode, *append]
        elif mode == _IMPLICIT:
            empty = '""' if is_text else 'b""'
            lines = [f"if {v} != {empty}:", *_indented([*encode, *append])]
        else:
            lines = [*encode, f"if {payload}:", *_indented(append)]
    else:
        lines = _message(source, v, value, tag, mode, out, encoder_of, field)
    source.add(indent, *lines)


def _message(
    source: Source,
    v: str,
    value: Value,
    tag: str,
    mode: str,
    out: str,
    encoder_of: Callable[[type], Encoder],
    field: Field | None,
) -> list[str]:
    if value.kind == _plan.TIMESTAMP:
        expected, encode = "_datetime", f"b = _timestamp({v})"
    else:
        expected = source.constant(value.cls, "CLASS")
        encode = f"b = _join({source.constant(encoder_of(value.cls), 'ENCODE')}({v}))"
    write = [f"{out} += ({tag}, _S[len(b)] if len(b) < 128 else _varint(len(b)), b)"]
    lines = [f"if {v}.__class__ is not {expected}:", "    raise _NotCompiled"]
    if mode == _ALWAYS:
        return [*lines, encode, *write]
    if mode == _NONEMPTY:
        return [*lines, encode, "if b:", *_indented(write)]
    assert field is not None
    if value.kind == _plan.TIMESTAMP:
        # Equal to the epoch: the default, left out; an epoch in another zone is equal too.
        return [*lines, f"if {v} != _EPOCH:", f"    {encode}", "    if b:", *_indented(write, 2)]
    default = source.constant(field.default, "DEFAULT")
    return [
        *lines,
        f"if _state({v})[{_SERIALIZED_ON_WIRE}]:",
        f"    {encode}",
        *_indented(write),
        f"elif not ({v} == {default}()):",
        f"    {encode}",
        "    if b:",
        *_indented(write, 2),
    ]


def _indented(lines: Sequence[str], levels: int = 1) -> list[str]:
    return ["    " * levels + line for line in lines]


def _tag(field: Field) -> bytes:
    return _runtime.varint(field.tag())


def _entry_tag(number: int, value: Value) -> bytes:
    return _runtime.varint(number << 3 | value.wire_type)
