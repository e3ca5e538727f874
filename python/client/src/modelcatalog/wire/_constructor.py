"""Compiles, per message class, a function that makes what ``message_class(**fields)`` makes.

betterproto's constructor runs the ``__init__`` dataclasses generate, which assigns every field
through ``Message.__setattr__`` (each assignment reads the instance's oneof state through
``Message.__getattribute__``, which raises and catches ``AttributeError`` while that state does
not exist yet), then ``__post_init__``, which walks the class metadata again: about 40 µs for a
``Model``, more than encoding it. The compiled function takes the same parameters with the same
defaults and writes the state ``__post_init__`` leaves in one go: the fields as given, whether
any was given (``_serialized_on_wire``), no unknown fields, the last given member of each oneof.
Like ``__setattr__``, it marks a given message of a class without fields as set.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import betterproto

from . import _upstream
from ._plan import ConstructionPlan
from ._source import Source

Constructor = Callable[..., betterproto.Message]

#: Classes of values that are never messages: assigning them needs no check.
_PLAIN = frozenset(
    {str, int, bytes, float, bool, type(None), list, dict, datetime.datetime, object}
)


def _mark_if_empty_message(value: Any) -> None:
    """What ``Message.__setattr__`` does to an assigned message of a class without fields."""
    if (
        isinstance(value, betterproto.Message)
        and not _upstream.metadata(type(value)).meta_by_field_name
    ):
        value._serialized_on_wire = True


_HELPERS: dict[str, Any] = {
    "_PH": _upstream.PLACEHOLDER,
    "_PLAIN": _PLAIN,
    "_mark": _mark_if_empty_message,
    "_build": _upstream.build_message,
}


def clash(plan: ConstructionPlan) -> str | None:
    """Why ``plan.cls`` keeps its own constructor although its plan is complete: a field named
    like a name the generated code binds (the parameter would hide it)."""
    taken = sorted(({*_HELPERS, "__CLASS"}) & {name for name, _, _ in plan.fields})
    return f"field {taken[0]} is named like a helper of the compiled constructor" if taken else None


def compile_constructor(plan: ConstructionPlan) -> Constructor:
    """The constructor of ``plan.cls``, taking the parameters of its dataclass ``__init__``."""
    source = Source(f"new_{plan.cls.__name__}", {**_HELPERS, "__CLASS": plan.cls})
    parameters = ", ".join(
        f"{name}={'None' if optional else '_PH'}" for name, optional, _ in plan.fields
    )
    source.add(0, f"def {source.function_name}({parameters}):")
    given: list[str] = []
    for name, optional, _ in plan.fields:
        source.add(1, f"if {name}.__class__ not in _PLAIN:", f"    _mark({name})")
        given.append(f"({_given(name, optional)})")
    group_names = dict.fromkeys(group for _, _, group in plan.fields if group is not None)
    groups = {group: f"g{index}" for index, group in enumerate(group_names)}
    for group, local in groups.items():
        source.add(1, f"{local} = None")
        for name, optional, member_group in plan.fields:
            if member_group == group:
                source.add(1, f"if {_given(name, optional)}:", f"    {local} = {name!r}")
    state = [f"{name!r}: {name}" for name, _, _ in plan.fields]
    state += [
        f"{_upstream.SERIALIZED_ON_WIRE!r}: {' or '.join(given) or 'False'}",
        f"{_upstream.UNKNOWN_FIELDS!r}: b''",
        f"{_upstream.GROUP_CURRENT!r}: {{{', '.join(f'{g!r}: {n}' for g, n in groups.items())}}}",
    ]
    source.add(1, f"return _build(__CLASS, {{{', '.join(state)}}})")
    return source.compile(f"constructor of {plan.cls.__qualname__}")


def _given(name: str, optional: bool) -> str:
    """Whether the parameter ``name`` was given, as ``__post_init__`` decides it."""
    return f"{name} is not _PH" + (f" and {name} is not None" if optional else "")
