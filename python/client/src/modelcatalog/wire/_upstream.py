"""Every betterproto internal the wire codec relies on, in one place.

The codec reads and writes betterproto messages the way betterproto's own ``__bytes__`` and
``parse`` do, without going through them: it needs the class metadata betterproto builds, the
sentinel an unset field holds, and the three bookkeeping attributes every message instance
carries. None of them is public API, so betterproto is pinned exactly in the distribution's
``pyproject.toml`` and ``tests/test_wire_upstream.py`` fails when any of them changes shape.
Re-check each note below before raising the pin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import betterproto

#: The version these internals were checked against.
PINNED = {"betterproto": "2.0.0b7"}

#: What a field that was never set (nor read) holds in the instance ``__dict__``; reading it
#: through the message replaces it by a fresh default (``ProtoClassMetadata.default_gen``).
PLACEHOLDER: Any = betterproto.PLACEHOLDER

#: The instance attribute that says the message was set or read from the wire (``True`` after
#: ``parse``); an unset message field whose value has it false and equals the default is left
#: out of the encoding.
SERIALIZED_ON_WIRE = "_serialized_on_wire"
#: The instance attribute holding the raw bytes (tag included) of fields the class does not
#: declare, in arrival order; ``__bytes__`` writes them after the declared fields.
UNKNOWN_FIELDS = "_unknown_fields"
#: The instance attribute mapping each oneof group to the name of its set member, or ``None``.
GROUP_CURRENT = "_group_current"

#: A ``google.protobuf.Timestamp`` field's value when unset: the Unix epoch, in UTC.
DATETIME_ZERO: datetime = betterproto.DATETIME_ZERO

#: The methods that define a message's encoding and decoding; a class overriding one of them
#: is served by betterproto, so the codec never disagrees with what the class says it is.
ENCODING_METHODS = ("__bytes__", "dump", "SerializeToString")
DECODING_METHODS = ("parse", "load", "FromString")
#: What ``message_class(**fields)`` runs besides the ``__init__`` dataclasses generate.
CONSTRUCTION_METHODS = ("__post_init__", "__setattr__")


def metadata(message_class: type[betterproto.Message]) -> betterproto.ProtoClassMetadata:
    """betterproto's metadata of ``message_class``, built on first use and kept on the class.

    Relied on: ``meta_by_field_name`` (field name to ``FieldMetadata``: ``number``,
    ``proto_type``, ``map_types``, ``group``, ``wraps``, ``optional``) in declaration order,
    which is the order ``__bytes__`` writes fields in; ``default_gen`` (name to the callable
    that makes the field's default: ``list`` for a repeated field, ``dict`` for a map,
    ``type(None)`` for an optional one); ``cls_by_field`` (the class of a message field's
    value, ``datetime`` for a Timestamp, or the entry class betterproto makes for a map).
    """
    return message_class._betterproto  # type: ignore[arg-type]  # its classproperty is mistyped


def instance_state(message: betterproto.Message) -> dict[str, Any]:
    """The instance ``__dict__`` of ``message``: each field's value or ``PLACEHOLDER``, and the
    three bookkeeping attributes above. Read past ``Message.__getattribute__``, which would
    replace placeholders by defaults and refuse to read an unset oneof member."""
    state: dict[str, Any] = object.__getattribute__(message, "__dict__")
    return state


def build_message(
    message_class: type[betterproto.Message], state: dict[str, Any]
) -> betterproto.Message:
    """A ``message_class`` instance whose ``__dict__`` is ``state`` (shaped as
    ``instance_state`` describes), made without running ``__init__`` and ``__post_init__``."""
    message: betterproto.Message = object.__new__(message_class)
    object.__setattr__(message, "__dict__", state)
    return message


def timestamp_to_datetime(data: bytes) -> datetime:
    """betterproto's own reading of a Timestamp field's bytes (``_Timestamp``), for bytes the
    codec does not read itself."""
    return betterproto._Timestamp().parse(data).to_datetime()


def dataclass_init(message_class: type[betterproto.Message]) -> bool:
    """Whether ``message_class.__init__`` is the one ``@dataclass`` generated for the class:
    it assigns each field, in declaration order, from a parameter of the field's name whose
    default is the field's default. dataclasses compile it from source named ``<string>``."""
    init = vars(message_class).get("__init__")
    params = getattr(message_class, "__dataclass_params__", None)
    return (
        init is not None
        and params is not None
        and params.init
        and getattr(getattr(init, "__code__", None), "co_filename", None) == "<string>"
    )


def overrides(message_class: type[betterproto.Message], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` ``message_class`` defines otherwise than ``betterproto.Message``."""
    return [name for name in names if _definer(message_class, name) is not betterproto.Message]


def _definer(message_class: type, name: str) -> type | None:
    return next((klass for klass in message_class.__mro__ if name in vars(klass)), None)
