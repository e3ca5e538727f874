"""The compiled encoders and decoders, made on first use per class and kept; and grpclib's codec."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

import betterproto
from grpclib.encoding.proto import ProtoCodec

from . import _constructor, _decoder, _encoder, _plan
from ._runtime import SMALL_VARINTS, NotCompiled, varint
from ._unjoined import UNJOINED_PART_BYTES, Unjoined

MessageT = TypeVar("MessageT", bound=betterproto.Message)
Parameters = ParamSpec("Parameters")

_constructors: dict[object, Callable[..., Any]] = {}
_encoders: dict[type, _encoder.Encoder] = {}
_decoders: dict[type, _decoder.Decoder] = {}
_entry_decoders: dict[type, _decoder.Decoder] = {}
_item_tags: dict[tuple[type, str], bytes] = {}


@dataclass(frozen=True, slots=True)
class Encoded(Generic[MessageT]):
    """A message of ``message_type`` already encoded: ``Codec`` sends ``data`` as it is."""

    message_type: type[MessageT]
    data: bytes


def encode(message: betterproto.Message) -> bytes:
    """The protobuf encoding of ``message``: the same bytes as ``bytes(message)``."""
    return b"".join(_parts(message))


def _parts(message: betterproto.Message) -> list[bytes]:
    """The encoding of ``message`` in parts, to be joined in order."""
    encoder = _encoders.get(message.__class__) or _encoder_of(message.__class__)
    try:
        return encoder(message)
    except (NotCompiled, KeyError):
        # A value of another type than its field declares, or an instance whose state
        # betterproto's __init__ did not make: betterproto decides what that encodes to.
        return _encode_by_betterproto(message)


def _encode_by_betterproto(message: betterproto.Message) -> list[bytes]:
    return [bytes(message)]


def decode(data: bytes, message_type: type[MessageT]) -> MessageT:
    """``data`` read as ``message_type``: equal to ``message_type().parse(data)``, field by
    field, with the same unknown fields and the same oneof members set."""
    if data.__class__ is not bytes:
        data = bytes(data)
    decoder = _decoders.get(message_type) or _decoder_of(message_type)
    message: MessageT = decoder(data, 0, len(data))
    return message


def new(
    message_type: Callable[Parameters, MessageT],
    /,
    *args: Parameters.args,
    **kwargs: Parameters.kwargs,
) -> MessageT:
    """A new message: what ``message_type(*args, **kwargs)`` makes, field for field (the same
    fields set, the same oneof members), about 30 times faster. Arguments are checked as the
    class's own constructor checks them (mypy too: they are its parameters)."""
    constructor = _constructors.get(message_type) or _constructor_of(message_type)
    message: MessageT = constructor(*args, **kwargs)
    return message


def encode_with_items(message: MessageT, field: str, items: Iterable[bytes]) -> Encoded[MessageT]:
    """``message`` encoded with the messages already encoded in ``items`` as its repeated
    message field ``field``: the bytes ``encode`` writes for ``message`` holding those
    messages there. ``field`` must be the first field ``message``'s class declares (betterproto
    writes fields in declaration order) and empty in ``message``.

    A list answer whose items are remembered encoded (the same models listed again and again)
    then costs a join instead of building and encoding each item.
    """
    cls = message.__class__
    tag = _item_tags.get((cls, field)) or _item_tag_of(cls, field)
    if getattr(message, field):
        raise ValueError(f"{cls.__name__}.{field} must be empty: its items are the encoded ones")
    parts: list[bytes] = []
    for item in items:
        size = len(item)
        parts += (tag, SMALL_VARINTS[size] if size < 128 else varint(size), item)
    parts += _parts(message)
    return Encoded(cls, b"".join(parts))


def fallback_reason(message_type: type[betterproto.Message]) -> str | None:
    """Why betterproto itself encodes, decodes or makes ``message_type``, or ``None`` when the
    codec compiled all three (as for every message of the modelcatalog contract)."""
    construction = _plan.construction_plan(message_type)
    plans = (_plan.encoding_plan(message_type), _plan.decoding_plan(message_type), construction)
    for plan in plans:
        if isinstance(plan, _plan.Fallback):
            return plan.reason
    assert isinstance(construction, _plan.ConstructionPlan)
    return _constructor.clash(construction)


class Codec(ProtoCodec):
    """grpclib's protobuf codec, with betterproto messages encoded and decoded by this module.

    Other protobuf messages (grpclib's health and reflection services, google.rpc status
    details) go through protobuf's runtime as in ``grpclib.encoding.proto.ProtoCodec``.

    With ``send_unjoined``, a message with a part of at least ``UNJOINED_PART_BYTES`` (an
    upload or download chunk) is returned as ``Unjoined`` parts, which only the tuned HTTP/2
    streams (``TunedProtocol``'s) can send: grpclib's own streams need ``bytes``.
    """

    def __init__(self, *, send_unjoined: bool = False) -> None:
        self._send_unjoined = send_unjoined

    def encode(self, message: Any, message_type: Any) -> bytes:
        if message.__class__ is Encoded:
            if message.message_type is not message_type:
                raise TypeError(
                    f"Message must be of type {message_type!r}, not {message.message_type!r}"
                )
            data: bytes = message.data
            return data
        if not isinstance(message, betterproto.Message):
            return super().encode(message, message_type)
        if not isinstance(message, message_type):
            # grpclib's own check and words.
            raise TypeError(f"Message must be of type {message_type!r}, not {type(message)!r}")
        parts = _parts(message)
        if self._send_unjoined and _worth_sending_unjoined(parts):
            # grpclib only measures the result and adds its prefix to it (see Unjoined).
            return Unjoined(parts)  # type: ignore[return-value]
        return b"".join(parts)

    def decode(self, data: bytes, message_type: Any) -> Any:
        if message_type in _decoders or (
            isinstance(message_type, type) and issubclass(message_type, betterproto.Message)
        ):
            return decode(data, message_type)
        return super().decode(data, message_type)


def _worth_sending_unjoined(parts: list[bytes]) -> bool:
    """Whether ``parts`` hold a large part, and only ``bytes`` (which no caller can change
    while the transport still holds them)."""
    large = False
    for part in parts:
        if part.__class__ is not bytes:
            return False
        large = large or len(part) >= UNJOINED_PART_BYTES
    return large


def _constructor_of(cls: Any) -> Callable[..., Any]:
    plan = _plan.construction_plan(cls)
    constructor: Callable[..., Any] = cls
    if isinstance(plan, _plan.ConstructionPlan) and _constructor.clash(plan) is None:
        constructor = _constructor.compile_constructor(plan)
    _constructors[cls] = constructor
    return constructor


def _item_tag_of(cls: type[betterproto.Message], field: str) -> bytes:
    plan = _plan.encoding_plan(cls)
    first = plan.fields[0] if isinstance(plan, _plan.MessagePlan) and plan.fields else None
    if first is None or first.name != field:
        raise ValueError(f"{field} is not the first field {cls.__name__} declares")
    if not first.repeated or first.value.kind != betterproto.TYPE_MESSAGE:
        raise ValueError(f"{cls.__name__}.{field} is not a repeated message field")
    tag = _item_tags[(cls, field)] = varint(first.tag(betterproto.WIRE_LEN_DELIM))
    return tag


def _encoder_of(cls: type) -> _encoder.Encoder:
    encoder = _encoders.get(cls)
    if encoder is not None:
        return encoder
    plan = _plan.encoding_plan(cls)
    if isinstance(plan, _plan.Fallback):
        encoder = _encode_by_betterproto
    else:
        # A class that contains itself reaches here again while compiling: it finds this.
        _encoders[cls] = lambda message: _encoders[cls](message)
        encoder = _encoder.compile_encoder(plan, _encoder_of)
    _encoders[cls] = encoder
    return encoder


def _decoder_of(cls: type) -> _decoder.Decoder:
    decoder = _decoders.get(cls)
    if decoder is not None:
        return decoder
    plan = _plan.decoding_plan(cls)
    if isinstance(plan, _plan.Fallback):
        decoder = _fallback_decoder(cls)
    else:
        _decoders[cls] = lambda data, start, end: _decoders[cls](data, start, end)
        decoder = _decoder.compile_decoder(plan, _decoder_of, _entry_decoder_of)
    _decoders[cls] = decoder
    return decoder


def _entry_decoder_of(cls: type) -> _decoder.Decoder:
    decoder = _entry_decoders.get(cls)
    if decoder is None:
        plan = _plan.decoding_plan(cls)
        assert isinstance(plan, _plan.MessagePlan), plan  # an entry is a key and a value
        decoder = _decoder.compile_decoder(plan, _decoder_of, _entry_decoder_of, entry=True)
        _entry_decoders[cls] = decoder
    return decoder


def _fallback_decoder(cls: type[betterproto.Message]) -> _decoder.Decoder:
    def decode_by_betterproto(data: bytes, start: int, end: int) -> Any:
        return _decoder.fallback(cls, data, start, end)

    return decode_by_betterproto
