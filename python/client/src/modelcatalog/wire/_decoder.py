"""Compiles, per message class, a function that reads bytes into what betterproto's ``parse`` makes.

betterproto's ``parse`` reads every field through a ``BytesIO`` generator that copies each value
(``bytes`` fields twice: the value, then the raw field it also keeps), then stores it with
``setattr``. The compiled function reads the bytes in place, with one branch per declared tag,
and builds the instance state at the end, as ``parse`` leaves it: fields that were not on the
wire still hold betterproto's placeholder, the last oneof member read is the current one (its
siblings cleared), undeclared fields are kept raw in arrival order, a packed run replaces a
repeated field and a single value is appended to it, a message field read twice holds the
second. A ``bytes`` field costs one copy: the slice it holds.

What protobuf and betterproto would read differently (a value cut short, a group, a declared
field with another wire type than its own, a packed run of a singular field, text that is not
UTF-8) is ``Irregular``: the message is then read by betterproto's own ``parse``, which gives its
answer (or its error) for those bytes. Well-formed messages, as any protobuf runtime writes
them, never take that path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import betterproto

from . import _plan, _runtime, _upstream
from ._plan import Field, MessagePlan, Value
from ._source import Source

Decoder = Callable[[bytes, int, int], Any]

_HELPERS: dict[str, Any] = {
    "_PH": _upstream.PLACEHOLDER,
    "_read_varint": _runtime.read_varint,
    "_skip": _runtime.skip_unknown,
    "_timestamp": _runtime.read_timestamp,
    "_Irregular": _runtime.Irregular,
    "_FALLBACK": (_runtime.Irregular, IndexError, UnicodeDecodeError, OverflowError),
    "_build": _upstream.build_message,
    "_join": b"".join,
    "_str": str,
    "_list": list,
    "_unpack_many": lambda code, data, position, count: struct.unpack_from(
        f"<{count}{code}", data, position
    ),
}

# No bounds check before reading a byte: past the end of ``data`` is an IndexError, past
# ``end`` inside it leaves ``pos`` beyond ``end``, which ends the loop and is then refused.
_READ_VARINT = (
    "x = data[pos]",
    "pos += 1",
    "if x >= 128:",
    "    x, pos = _read_varint(data, pos - 1, end)",
)
_READ_LENGTH = (
    "n = data[pos]",
    "pos += 1",
    "if n >= 128:",
    "    n, pos = _read_varint(data, pos - 1, end)",
    "stop = pos + n",
    "if stop > end:",
    "    raise _Irregular",
)
#: betterproto's reading of a varint as each kind: the low 32 or 64 bits as a signed number,
#: zigzag, bool (any non-zero value); unsigned kinds keep the varint whole, as betterproto does.
_CONVERSIONS = {
    betterproto.TYPE_INT32: f"x = ((x & {(1 << 32) - 1:#x}) ^ {1 << 31:#x}) - {1 << 31:#x}",
    betterproto.TYPE_INT64: f"x = ((x & {(1 << 64) - 1:#x}) ^ {1 << 63:#x}) - {1 << 63:#x}",
    betterproto.TYPE_SINT32: "x = (x >> 1) ^ -(x & 1)",
    betterproto.TYPE_SINT64: "x = (x >> 1) ^ -(x & 1)",
    betterproto.TYPE_BOOL: "x = x > 0",
}


def compile_decoder(
    plan: MessagePlan,
    decoder_of: Callable[[type], Decoder],
    entry_decoder_of: Callable[[type], Decoder],
    *,
    entry: bool = False,
) -> Decoder:
    """The decoder of ``plan.cls``: ``decode(data, start, end)`` reads ``data[start:end]``.

    With ``entry``, ``plan.cls`` is a map's entry class and the decoder returns its key and
    value (their defaults when absent), as betterproto stores them into the map.
    """
    cls = plan.cls
    source = Source(f"decode_{cls.__name__}", _HELPERS)
    class_name = source.constant(cls, "CLASS")
    local = {field.name: f"f{index}" for index, field in enumerate(plan.fields)}
    group_local = {group: f"g{index}" for index, group in enumerate(plan.groups)}
    source.add(0, f"def {source.function_name}(data, pos, end):", "    begin = pos", "    try:")
    for field in plan.fields:
        source.add(2, f"{local[field.name]} = {'None' if field.optional else '_PH'}")
    for name in group_local.values():
        source.add(2, f"{name} = None")
    source.add(
        2,
        "unknown = None",
        "while pos < end:",
        "    start = pos",
        "    t = data[pos]",
        "    pos += 1",
        "    if t >= 128:",
        "        t, pos = _read_varint(data, start, end)",
    )
    keyword = "if"
    for field in plan.fields:
        if field.packed:
            source.add(3, f"{keyword} t == {field.tag(betterproto.WIRE_LEN_DELIM)}:")
            _packed(source, field, local[field.name])
            keyword = "elif"
        source.add(3, f"{keyword} t == {field.tag()}:")
        _read(source, 4, field.value, decoder_of, entry_decoder_of, field.entry)
        _store(source, plan, field, local, group_local)
        keyword = "elif"
    numbers = source.constant(frozenset(field.number for field in plan.fields), "NUMBERS")
    indent = 3
    if plan.fields:
        source.add(3, f"elif t >> 3 in {numbers}:", "    raise _Irregular", "else:")
        indent = 4
    source.add(
        indent,
        "pos = _skip(data, t, pos, end)",
        "if unknown is None:",
        "    unknown = []",
        "unknown.append(data[start:pos])",
    )
    source.add(2, "if pos != end:", "    raise _Irregular")
    if entry:
        _entry_result(source, plan, local)
    else:
        state = [f"{field.name!r}: {local[field.name]}" for field in plan.fields]
        groups = ", ".join(f"{group!r}: {name}" for group, name in group_local.items())
        state += [
            f"{_upstream.SERIALIZED_ON_WIRE!r}: True",
            f"{_upstream.UNKNOWN_FIELDS!r}: _join(unknown) if unknown else b''",
            f"{_upstream.GROUP_CURRENT!r}: {{{groups}}}",
        ]
        source.add(2, f"return _build({class_name}, {{{', '.join(state)}}})")
    fallback_name = source.constant(fallback_entry if entry else fallback, "FALLBACK")
    source.add(
        1, "except _FALLBACK:", f"    return {fallback_name}({class_name}, data, begin, end)"
    )
    return source.compile(f"{'entry ' if entry else ''}decoder of {cls.__qualname__}")


def _read(
    source: Source,
    indent: int,
    value: Value,
    decoder_of: Callable[[type], Decoder],
    entry_decoder_of: Callable[[type], Decoder],
    entry: tuple[type[betterproto.Message], Value, Value] | None,
) -> None:
    """Lines that read one value of ``value``'s kind at ``pos`` into ``x`` (and ``k`` for maps)."""
    kind = value.kind
    if kind in _plan.VARINT_KINDS:
        source.add(indent, *_READ_VARINT, *_convert(source, value))
        return
    if kind in _plan.STRUCT_FORMATS:
        width = 4 if kind in _plan.FIXED_32_KINDS else 8
        unpack = source.constant(
            struct.Struct("<" + _plan.STRUCT_FORMATS[kind]).unpack_from, "UNPACK"
        )
        source.add(
            indent,
            f"stop = pos + {width}",
            "if stop > end:",
            "    raise _Irregular",
            f"x = {unpack}(data, pos)[0]",
            "pos = stop",
        )
        return
    source.add(indent, *_READ_LENGTH)
    if kind == betterproto.TYPE_STRING:
        read = "x = _str(data[pos:stop], 'utf-8')"
    elif kind == betterproto.TYPE_BYTES:
        read = "x = data[pos:stop]"
    elif kind == _plan.TIMESTAMP:
        read = "x = _timestamp(data, pos, stop)"
    elif entry is not None:
        read = f"k, x = {source.constant(entry_decoder_of(entry[0]), 'ENTRY')}(data, pos, stop)"
    else:
        read = f"x = {source.constant(decoder_of(value.cls), 'DECODE')}(data, pos, stop)"
    source.add(indent, read, "pos = stop")


def _convert(source: Source, value: Value) -> list[str]:
    if value.kind == betterproto.TYPE_ENUM:
        return [f"x = {source.constant(value.cls.try_value, 'ENUM')}(x)"]
    conversion = _CONVERSIONS.get(value.kind)
    return [conversion] if conversion else []


def _packed(source: Source, field: Field, name: str) -> None:
    """Lines that read a packed run into ``name``, replacing what it held (as betterproto does)."""
    value = field.value
    source.add(4, *_READ_LENGTH)
    if value.kind in _plan.STRUCT_FORMATS:
        width = 4 if value.kind in _plan.FIXED_32_KINDS else 8
        code = repr(_plan.STRUCT_FORMATS[value.kind])
        source.add(
            4,
            f"if n % {width}:",
            "    raise _Irregular",
            f"{name} = _list(_unpack_many({code}, data, pos, n // {width}))",
            "pos = stop",
        )
        return
    source.add(
        4,
        "items = []",
        "while pos < stop:",
        "    x = data[pos]",
        "    pos += 1",
        "    if x >= 128:",
        "        x, pos = _read_varint(data, pos - 1, stop)",
        *("    " + line for line in _convert(source, value)),
        "    items.append(x)",
        f"{name} = items",
    )


def _store(
    source: Source,
    plan: MessagePlan,
    field: Field,
    local: dict[str, str],
    group_local: dict[str, str],
) -> None:
    name = local[field.name]
    if field.entry is not None:
        source.add(4, f"if {name} is _PH:", f"    {name} = {{}}", f"{name}[k] = x")
    elif field.repeated:
        source.add(4, f"if {name} is _PH:", f"    {name} = []", f"{name}.append(x)")
    elif field.group is not None:
        siblings = [
            local[other.name]
            for other in plan.fields
            if other.group == field.group and other is not field
        ]
        source.add(4, f"{name} = x", *(f"{sibling} = _PH" for sibling in siblings))
        source.add(4, f"{group_local[field.group]} = {field.name!r}")
    else:
        source.add(4, f"{name} = x")


def _entry_result(source: Source, plan: MessagePlan, local: dict[str, str]) -> None:
    by_name = {field.name: field for field in plan.fields}
    for part in ("key", "value"):
        default = source.constant(by_name[part].default, "DEFAULT")
        source.add(2, f"if {local[part]} is _PH:", f"    {local[part]} = {default}()")
    source.add(2, f"return {local['key']}, {local['value']}")


def fallback(cls: type[betterproto.Message], data: bytes, begin: int, end: int) -> Any:
    """betterproto's reading of ``data[begin:end]`` as ``cls``."""
    whole = begin == 0 and end == len(data)
    return cls().parse(data if whole else data[begin:end])


def fallback_entry(cls: type[betterproto.Message], data: bytes, begin: int, end: int) -> Any:
    """betterproto's reading of a map entry: the key and value it stores into the map."""
    entry = fallback(cls, data, begin, end)
    return entry.key, entry.value
