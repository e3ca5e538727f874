"""List filters and orders (a small subset of AIP-160 and AIP-132), parsed into plain data.

A filter is conditions joined by ``AND``; each is a field, an operator and a value::

    name : "bert" AND labels.stage = "prod" AND create_time >= "2026-11-01T00:00:00Z"

Values are double-quoted strings (``\\"`` and ``\\\\`` escape a quote and a backslash), or
``*`` after ``:`` on a label ("has this label"). What each list accepts is declared by the
caller of ``parse_filter`` (its ``fields``), and the parsed conditions become a storage query
(``storage.records.ModelQuery`` / ``VersionQuery``), so authorization stays inside the query
and pages stay full. Every mistake is INVALID_ARGUMENT on the ``filter`` (or ``order_by``)
field, saying what was expected at which character.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from ..storage.records import LabelTest, ModelQuery, TimeBound, VersionQuery
from . import validation
from .errors import InvalidArgument

#: Longest filter accepted: enough for any real query, small enough to parse in microseconds.
FILTER_MAX_CHARS = 1024
#: Most conditions in one filter; each becomes a clause of the list query.
MAX_CONDITIONS = 16

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<operator><=|>=|!=|=|<|>|:)
      | (?P<star>\*)
      | (?P<word>[A-Za-z0-9_./-]+)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_COMPARISONS = frozenset({"<", "<=", ">", ">="})


@dataclass(frozen=True)
class Condition:
    """One ``field operator value`` of a filter; ``value`` is None for ``labels.KEY : *``."""

    field: str
    operator: str
    value: str | None


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:  # only trailing blanks are left
            break
        kind = match.lastgroup
        found.append(_Token(kind, match.group(kind), match.start(kind) + 1))
        position = match.end()
    return found


def parse_filter(text: str, fields: Collection[str]) -> list[Condition]:
    """The conditions of ``text`` (empty: none). ``fields`` are the plain fields the list
    accepts (``"name"``, ``"create_time"``, ...); ``"labels"`` allows ``labels.KEY``."""
    if len(text) > FILTER_MAX_CHARS:
        raise _bad(f"filter must be at most {FILTER_MAX_CHARS} characters")
    tokens = _tokens(text)
    conditions: list[Condition] = []
    index = 0
    while index < len(tokens):
        if conditions:
            joint = tokens[index]
            if joint.kind != "word" or joint.text != "AND":
                raise _bad(f"expected AND at character {joint.at}, found {_shown(joint)}")
            index += 1
        condition, index = _condition(tokens, index, fields)
        conditions.append(condition)
        if len(conditions) > MAX_CONDITIONS:
            raise _bad(f"filter may have at most {MAX_CONDITIONS} conditions")
    return conditions


def _condition(tokens: list[_Token], index: int, fields: Collection[str]) -> tuple[Condition, int]:
    field, operator, value = (_at(tokens, index + offset) for offset in range(3))
    if field is None or field.kind != "word" or field.text == "AND":
        raise _bad(f"expected a field ({_listed(fields)}) {_where(field)}")
    name = _field(field, fields)
    if operator is None or operator.kind != "operator":
        raise _bad(f"expected an operator after {field.text} {_where(operator)}")
    if value is None:
        raise _bad(f"expected a value after {field.text} {operator.text} at the end")
    if name == "labels" and operator.text == ":" and value.kind == "star":
        return Condition(field.text, ":", None), index + 3
    if value.kind == "other" and value.text == '"':
        raise _bad(f"the string that starts at character {value.at} has no closing quote")
    if value.kind != "string":
        raise _bad(f'expected a value in double quotes {_where(value)}, such as "resnet"')
    checked = _operator(name, field.text, operator)
    return Condition(field.text, checked, _unquoted(value.text)), index + 3


def _at(tokens: list[_Token], index: int) -> _Token | None:
    return tokens[index] if index < len(tokens) else None


def _field(token: _Token, fields: Collection[str]) -> str:
    """The field's kind: itself, or ``labels`` for ``labels.KEY`` (the key checked)."""
    name, dot, key = token.text.partition(".")
    if dot and name == "labels" and "labels" in fields:
        validation.labels("filter", {key: ""})
        return "labels"
    if not dot and name in fields and name != "labels":
        return name
    raise _bad(
        f"unknown field {validation.quoted(token.text)} at character {token.at}; "
        f"expected {_listed(fields)}"
    )


def _operator(kind: str, field: str, token: _Token) -> str:
    allowed = {
        "name": {"=", ":"},
        "folder_id": {"="},
        "labels": {"="},
        "create_time": _COMPARISONS,
    }[kind]
    if token.text not in allowed:
        raise _bad(
            f"{field} takes {' or '.join(sorted(allowed))}, not {token.text} (character {token.at})"
        )
    return token.text


def _unquoted(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.DOTALL)


def timestamp_us(condition: Condition) -> int:
    """A ``create_time`` condition's RFC 3339 value, in microseconds since the epoch."""
    assert condition.value is not None
    try:
        moment = datetime.fromisoformat(condition.value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _bad(
            f"create_time needs an RFC 3339 time with its offset, such as "
            f'"2026-01-31T00:00:00Z", not {validation.quoted(condition.value)}'
        )
    return int(moment.timestamp() * 1_000_000)


@dataclass(frozen=True)
class Order:
    """A list's order: the key it sorts by, and whether from the largest."""

    key: str
    descending: bool


def parse_order(text: str, keys: Collection[str], default: Order) -> Order:
    """``order_by``: one of ``keys``, optionally followed by ``desc`` (or ``asc``)."""
    if not text.strip():
        return default
    key, *direction = text.split()
    if key in keys and direction in ([], ["asc"], ["desc"]):
        return Order(key, direction == ["desc"])
    choices = ", ".join(f'"{key}", "{key} desc"' for key in keys)
    raise InvalidArgument(
        "order_by", f"order_by must be one of {choices}, not {validation.quoted(text)}"
    )


def _shown(token: _Token) -> str:
    return validation.quoted(token.text)


def _where(token: _Token | None) -> str:
    return "at the end" if token is None else f"at character {token.at}, found {_shown(token)}"


def _listed(fields: Collection[str]) -> str:
    return ", ".join("labels.KEY" if field == "labels" else field for field in fields)


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument("filter", message)


MODEL_FIELDS = ("name", "folder_id", "labels", "create_time")
VERSION_FIELDS = ("labels", "create_time")


def model_query(filter_text: str, order_by: str) -> ModelQuery:
    """What ListModels' ``filter`` and ``order_by`` ask for, checked."""
    order = parse_order(order_by, ("create_time", "name"), Order("create_time", False))
    names: list[str] = []
    prefixes: list[str] = []
    substrings: list[str] = []
    folder_ids: list[str] = []
    conditions = parse_filter(filter_text, MODEL_FIELDS)
    for condition in conditions:
        value = condition.value
        if condition.field == "name" and value is not None:
            if condition.operator == ":":
                substrings.append(value)
            elif value.endswith("*"):
                prefixes.append(value[:-1])
            else:
                names.append(value)
        elif condition.field == "folder_id" and value is not None:
            if not value:
                raise _bad('folder_id = "" names no folder; give a folder id')
            folder_ids.append(validation.resource_id("filter", value))
    return ModelQuery(
        folder_ids=tuple(folder_ids),
        names=tuple(names),
        name_prefixes=tuple(prefixes),
        name_substrings=tuple(substrings),
        labels=_labels(conditions),
        created=_created(conditions),
        by_name=order.key == "name",
        descending=order.descending,
    )


def version_query(filter_text: str, order_by: str) -> VersionQuery:
    """What ListModelVersions' ``filter`` and ``order_by`` ask for, checked; versions are
    numbered in the order they are created, so both keys name one order."""
    order = parse_order(order_by, ("version", "create_time"), Order("version", True))
    conditions = parse_filter(filter_text, VERSION_FIELDS)
    return VersionQuery(
        labels=_labels(conditions),
        created=_created(conditions),
        oldest_first=not order.descending,
    )


def scoped(scope: str, filter_text: str, order_by: str) -> str:
    """A page-token scope bound to a filter and an order as well (a short digest of both
    texts); without either, ``scope`` itself, so tokens of unfiltered lists stay valid
    across server versions."""
    if not filter_text and not order_by:
        return scope
    both = json.dumps([filter_text, order_by]).encode()
    return f"{scope}:{hashlib.sha256(both).hexdigest()[:32]}"


def _labels(conditions: list[Condition]) -> tuple[LabelTest, ...]:
    return tuple(
        LabelTest(condition.field.partition(".")[2], condition.value)
        for condition in conditions
        if condition.field.startswith("labels.")
    )


def _created(conditions: list[Condition]) -> tuple[TimeBound, ...]:
    return tuple(
        TimeBound(condition.operator, timestamp_us(condition))
        for condition in conditions
        if condition.field == "create_time"
    )
