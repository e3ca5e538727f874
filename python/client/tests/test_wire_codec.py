"""The wire codec writes the bytes betterproto writes and reads what betterproto reads, for every
message class of the contract and every field kind; betterproto itself runs only where declared.

Set MODELCATALOG_TEST_FUZZ_EXAMPLES to try more examples per message class (100 by default; the
classes of the contract are tried on a quarter as many).
"""

from __future__ import annotations

import os
import tracemalloc
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import betterproto
import pytest
from grpclib.health.v1.health_pb2 import HealthCheckRequest
from grpclib.stream import send_message as grpclib_send_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protobuf_fuzzing import declared_fields, mutated
from wire_messages import (
    CONTRACT_MESSAGES,
    FALLBACKS,
    KINDS,
    Announced,
    Choices,
    Clashing,
    Empty,
    Holder,
    Lasting,
    Repeated,
    Scalars,
    SelfEncoding,
    Tree,
    Wrapped,
    field_values,
    messages,
    state,
    unknown_fields,
)

from modelcatalog import v1, wire
from modelcatalog.v1 import (
    audit_service_pb2,
    auth_service_pb2,
    folder_service_pb2,
    model_service_pb2,
    resources_pb2,
)

EXAMPLES = int(os.environ.get("MODELCATALOG_TEST_FUZZ_EXAMPLES", "100"))
#: A contract class is tried on a quarter as many examples: its compiled codec is made of the
#: field kinds that the synthetic classes (``KINDS``, ``FALLBACKS``) are tried on in full, and
#: drawing nested contract messages made this file 8 of the 15 minutes of CI's unit tests.
CONTRACT_EXAMPLES = max(1, EXAMPLES // 4)
EVERY_CLASS = [*CONTRACT_MESSAGES, *KINDS, *FALLBACKS]
PROTOBUF_CLASSES = {
    name: getattr(module, name)
    for module in (
        audit_service_pb2,
        auth_service_pb2,
        folder_service_pb2,
        model_service_pb2,
        resources_pb2,
    )
    for name in module.DESCRIPTOR.message_types_by_name
}
MessageClass = type[betterproto.Message]


def examples_for(cls: MessageClass) -> int:
    """How many examples a property is tried on for ``cls``."""
    return CONTRACT_EXAMPLES if cls in CONTRACT_MESSAGES else EXAMPLES


def each_class(
    check: Callable[[MessageClass, st.DataObject], None],
) -> Callable[[MessageClass], None]:
    """The test of the property ``check`` for one message class (parametrized), tried on
    ``examples_for(cls)`` examples drawn by Hypothesis."""

    def test(cls: MessageClass) -> None:
        @settings(
            max_examples=examples_for(cls),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,  # one inner function for every class: no examples saved across them
        )
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            check(cls, data)

        run()

    test.__name__, test.__qualname__ = check.__name__, check.__qualname__
    test.__doc__ = check.__doc__
    return test


_BETTERPROTO_BYTES = betterproto.Message.__bytes__
_BETTERPROTO_PARSE = betterproto.Message.parse


def by_name(cls: type[betterproto.Message]) -> str:
    return cls.__name__


@contextmanager
def betterproto_only_where_declared() -> Iterator[None]:
    """betterproto's ``__bytes__`` and ``parse`` fail when the codec calls them for a class it
    compiled (what betterproto calls while it runs is its own business)."""
    running: list[betterproto.Message] = []

    def declared(message: betterproto.Message) -> None:
        assert running or wire.fallback_reason(type(message)) is not None, type(message)

    def encode(message: betterproto.Message) -> bytes:
        declared(message)
        running.append(message)
        try:
            return _BETTERPROTO_BYTES(message)
        finally:
            running.pop()

    def parse(message: betterproto.Message, data: bytes) -> betterproto.Message:
        declared(message)
        running.append(message)
        try:
            return _BETTERPROTO_PARSE(message, data)
        finally:
            running.pop()

    with (
        mock.patch.object(betterproto.Message, "__bytes__", encode),
        mock.patch.object(betterproto.Message, "parse", parse),
    ):
        yield


def test_every_contract_message_is_compiled() -> None:
    """No message class of the contract is left to betterproto (to encode, decode or make)."""
    assert {"ListModelsResponse", "UploadModelVersionRequest", "ModelVersion"} <= {
        cls.__name__ for cls in CONTRACT_MESSAGES
    }
    assert {cls.__name__: wire.fallback_reason(cls) for cls in CONTRACT_MESSAGES + KINDS} == {
        cls.__name__: None for cls in CONTRACT_MESSAGES + KINDS
    }


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (Wrapped, "field count: a google.protobuf wrapper of int32"),
        (Lasting, "field span: a message betterproto holds as <class 'datetime.timedelta'>"),
        (SelfEncoding, "it overrides __bytes__"),
        (Announced, "it overrides __post_init__"),
        (Clashing, "field _build is named like a helper of the compiled constructor"),
    ],
    ids=["wrapper", "duration", "own-encoding", "own-post-init", "helper-name"],
)
def test_classes_the_codec_cannot_reproduce_are_declared_fallbacks(
    cls: type[betterproto.Message], reason: str
) -> None:
    """Wrapper or Duration fields, a class's own encoding or post-init: left to betterproto."""
    assert wire.fallback_reason(cls) == reason


@pytest.mark.parametrize("cls", EVERY_CLASS, ids=by_name)
@each_class
def test_encoding_is_the_bytes_betterproto_writes(
    cls: type[betterproto.Message], data: st.DataObject
) -> None:
    """``encode(message) == bytes(message)``, before and after betterproto has read the message."""
    message = data.draw(messages(cls))
    with betterproto_only_where_declared():
        encoded = wire.encode(message)
    assert encoded == bytes(message)  # bytes() fills unset fields with their defaults
    with betterproto_only_where_declared():
        assert wire.encode(message) == encoded


@pytest.mark.parametrize("cls", EVERY_CLASS, ids=by_name)
@each_class
def test_decoding_is_what_betterproto_parses(
    cls: type[betterproto.Message], data: st.DataObject
) -> None:
    """``decode`` of a message's bytes, unknown fields around them, holds what ``parse`` holds;
    the decoded message encodes to the same bytes as betterproto's reading of it."""
    before, after = data.draw(unknown_fields(cls)), data.draw(unknown_fields(cls))
    encoding = before + bytes(data.draw(messages(cls))) + after
    expected = cls().parse(encoding)
    with betterproto_only_where_declared():
        decoded = wire.decode(encoding, cls)
    assert state(decoded) == state(expected)  # implies ==, NaN in lists included
    # Encoding lets betterproto fill in defaults of the classes left to it: compare states first.
    with betterproto_only_where_declared():
        encoded_again = wire.encode(decoded)
    assert encoded_again == bytes(expected)
    for group in betterproto_groups(cls):
        assert betterproto.which_one_of(decoded, group) == betterproto.which_one_of(expected, group)


@pytest.mark.parametrize("cls", CONTRACT_MESSAGES, ids=by_name)
@each_class
def test_bytes_written_by_protobufs_runtime_decode_as_betterproto_reads_them(
    cls: type[betterproto.Message], data: st.DataObject
) -> None:
    """What upb writes for the same message (its field order, its map order) decodes the same."""
    written = PROTOBUF_CLASSES[cls.__name__].FromString(bytes(data.draw(messages(cls))))
    encoding = written.SerializeToString(deterministic=data.draw(st.booleans()))
    with betterproto_only_where_declared():
        decoded = wire.decode(encoding, cls)
    assert state(decoded) == state(cls().parse(encoding))


@pytest.mark.parametrize("cls", EVERY_CLASS, ids=by_name)
@each_class
def test_any_bytes_decode_as_betterproto_reads_them_or_fail_as_it_fails(
    cls: type[betterproto.Message], data: st.DataObject
) -> None:
    """Cut, spliced or random bytes give betterproto's message, or betterproto's error."""
    encoding = data.draw(st.binary(max_size=48) | messages(cls).map(bytes).flatmap(mutated))
    expected, outcome = (
        outcome_of(lambda: cls().parse(encoding)),
        outcome_of(lambda: wire.decode(encoding, cls)),
    )
    assert outcome == expected


@pytest.mark.parametrize("cls", EVERY_CLASS, ids=by_name)
@each_class
def test_new_makes_what_the_classs_constructor_makes(
    cls: type[betterproto.Message], data: st.DataObject
) -> None:
    """``new(cls, **fields)`` holds what ``cls(**fields)`` holds: fields, oneof, set or not."""
    fields = dict(data.draw(field_values(cls)))
    expected = cls(**fields)
    with betterproto_only_where_declared():
        made = wire.new(cls, **fields)
    assert type(made) is cls
    assert state(made) == state(expected)


def test_new_takes_the_constructors_parameters_and_refuses_others_as_it_does() -> None:
    """Positional arguments, unknown names and too many arguments fare as in the constructor."""
    made = wire.new(v1.UploadModelVersionHeader, "m1", "model.onnx", size_bytes=0)
    assert state(made) == state(v1.UploadModelVersionHeader("m1", "model.onnx", size_bytes=0))
    with pytest.raises(TypeError):
        wire.new(v1.Model, colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        wire.new(v1.GetModelRequest, "m1", "m2")  # type: ignore[call-arg]


def test_new_marks_a_given_message_without_fields_as_set_as_the_constructor_does() -> None:
    """An empty message of a class without fields, given to a field, is then written."""
    given, expected = Empty(), Empty()
    assert state(wire.new(Holder, empty=given)) == state(Holder(empty=expected))
    assert betterproto.serialized_on_wire(given)
    assert wire.encode(Holder(empty=Empty())) == b"\x22\x00"


def test_a_chunk_is_copied_once_each_way() -> None:
    """Encoding or decoding a 4 MiB chunk message allocates one payload, not two or three."""
    chunk = os.urandom(4 << 20)
    upload = v1.UploadModelVersionRequest(chunk=chunk)
    encoded, peak = traced(lambda: wire.encode(upload))
    assert encoded == bytes(upload)
    assert len(chunk) < peak < len(chunk) + 64 * 1024
    decoded, peak = traced(lambda: wire.decode(encoded, v1.DownloadModelVersionResponse))
    assert decoded.chunk == chunk
    assert len(chunk) < peak < len(chunk) + 64 * 1024


def test_a_chunk_may_be_any_bytes_like_object() -> None:
    """A chunk held as a bytearray or memoryview encodes as betterproto encodes it."""
    for chunk in (bytearray(b"abc"), memoryview(b"abcdef")[1:4]):
        message = v1.DownloadModelVersionResponse(chunk=chunk)  # type: ignore[arg-type]
        with betterproto_only_where_declared():
            encoded = wire.encode(message)
        assert encoded == bytes(message) == b"\x12\x03" + bytes(chunk)


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(v1.Model(id=5), id="int-for-string"),  # type: ignore[arg-type]
        pytest.param(v1.Model(create_time=datetime(2024, 1, 1)), id="naive-datetime"),
        pytest.param(v1.ListModelsResponse(models=(v1.Model(),)), id="tuple-for-list"),  # type: ignore[arg-type]
        pytest.param(v1.GetModelResponse(model=v1.Folder(id="f")), id="other-message"),  # type: ignore[arg-type]
        pytest.param(Scalars(int64=-(1 << 64)), id="below-int64"),
        pytest.param(Scalars(float32=1e300), id="beyond-float"),
        pytest.param(Tree(at=timedelta(1)), id="duration-for-timestamp"),  # type: ignore[arg-type]
    ],
)
def test_values_of_another_type_encode_or_fail_as_betterproto_does(
    message: betterproto.Message,
) -> None:
    """A value its field does not declare is betterproto's to encode (or refuse)."""
    assert outcome_of(lambda: wire.encode(message)) == outcome_of(lambda: bytes(message))


def test_a_message_set_but_empty_is_written_and_one_never_set_is_not() -> None:
    """An empty nested message assigned (or read from the wire) is written; a default one is not."""
    assert wire.encode(v1.GetModelResponse(model=v1.Model())) == b""
    response = v1.GetModelResponse()
    response.model = v1.Model()
    response.model.id = ""
    assert wire.encode(response) == bytes(response) == b"\x0a\x00"
    assert wire.encode(v1.GetModelResponse().parse(b"\x0a\x00")) == b"\x0a\x00"


def test_a_oneof_member_and_an_optional_field_are_written_when_zero() -> None:
    """Set to zero, a oneof member or a proto3 optional field is still written; a plain one not."""
    assert wire.encode(v1.DownloadModelVersionResponse(chunk=b"")) == b"\x12\x00"
    assert wire.encode(v1.UploadModelVersionHeader(size_bytes=0)) == b"\x20\x00"
    assert wire.encode(Choices(number=0, between=0)) == b"\x10\x00"


def test_the_last_oneof_member_on_the_wire_is_the_one_set() -> None:
    """Two members of a oneof on the wire: the second is set, the first cleared (as betterproto)."""
    data = bytes(Choices(text="a")) + bytes(Choices(number=7))
    decoded = wire.decode(data, Choices)
    assert betterproto.which_one_of(decoded, "pick") == ("number", 7)
    assert state(decoded) == state(Choices().parse(data))


def test_packed_runs_replace_and_single_values_append_as_betterproto_reads_them() -> None:
    """Mixing packed runs and single values of a repeated field reads as betterproto reads it."""
    single = b"\x08\x01"
    packed = b"\x0a\x02\x02\x03"
    for data in (single + packed, packed + single, packed + packed, single + single):
        assert state(wire.decode(data, Repeated)) == state(Repeated().parse(data))


def test_unknown_fields_are_kept_raw_in_arrival_order_and_written_last() -> None:
    """Undeclared fields survive decoding and encoding byte for byte, after the declared ones."""
    unknown = b"\xa0\x06\x05" + b"\x9a\x06\x02hi"
    decoded = wire.decode(unknown[:3] + b"\x0a\x01m" + unknown[3:], v1.GetModelRequest)
    assert decoded.model_id == "m"
    assert wire.encode(decoded) == b"\x0a\x01m" + unknown


def first_field_lists_messages(cls: type[betterproto.Message]) -> bool:
    fields = declared_fields(cls)
    if not fields:
        return False
    _, meta, hint = fields[0]
    return meta.proto_type == betterproto.TYPE_MESSAGE and typing.get_origin(hint) is list


LIST_ANSWERS = [cls for cls in CONTRACT_MESSAGES if first_field_lists_messages(cls)]


@pytest.mark.parametrize("cls", LIST_ANSWERS, ids=by_name)
@each_class
def test_a_list_of_encoded_items_encodes_as_the_list_of_their_messages(
    cls: type[betterproto.Message], data: st.DataObject
) -> None:
    """A list answer made of items encoded before is the bytes betterproto writes for the
    answer holding their messages, and the codec sends it as it is."""
    message = data.draw(messages(cls))
    field = declared_fields(cls)[0][0]
    items = [wire.encode(item) for item in getattr(message, field)]
    rest = wire.decode(wire.encode(message), cls)
    setattr(rest, field, [])
    encoded = wire.encode_with_items(rest, field, items)
    assert encoded.data == bytes(message)
    assert wire.Codec().encode(encoded, cls) == bytes(message)


def test_encoded_items_go_only_in_the_first_field_and_only_when_it_lists_messages() -> None:
    assert LIST_ANSWERS, "the contract has list answers"
    with pytest.raises(ValueError, match="not the first field"):
        wire.encode_with_items(v1.ListModelsResponse(), "next_page_token", [])
    with pytest.raises(ValueError, match="not a repeated message field"):
        wire.encode_with_items(v1.GetModelResponse(), "model", [])
    held = v1.ListModelsResponse(models=[v1.Model(id="m1")])
    with pytest.raises(ValueError, match="must be empty"):
        wire.encode_with_items(held, "models", [])
    encoded = wire.encode_with_items(v1.ListModelsResponse(), "models", [])
    with pytest.raises(TypeError, match="Message must be of type"):
        wire.Codec().encode(encoded, v1.ListFoldersResponse)


def test_grpclib_codec_serves_betterproto_and_protobuf_messages() -> None:
    """``wire.Codec`` encodes both kinds of message and keeps grpclib's type check."""
    codec = wire.Codec()
    model = v1.GetModelRequest(model_id="m1")
    assert codec.encode(model, v1.GetModelRequest) == bytes(model)
    assert codec.decode(bytes(model), v1.GetModelRequest) == model
    health = HealthCheckRequest(service="modelcatalog.v1.ModelService")
    assert codec.decode(codec.encode(health, HealthCheckRequest), HealthCheckRequest) == health
    with pytest.raises(TypeError, match="Message must be of type"):
        codec.encode(model, v1.GetModelResponse)


async def test_a_chunk_message_reaches_the_tuned_streams_unjoined_with_its_prefix() -> None:
    """With ``send_unjoined`` a chunk message is handed to the stream as its parts, the chunk
    itself among them (not copied), with grpclib's message prefix in front: the bytes are
    those of the prefixed message."""
    chunk = os.urandom(1 << 20)
    message = v1.UploadModelVersionRequest(chunk=chunk)
    sent: list[Any] = []

    class Stream:
        async def send_data(self, data: Any, end_stream: bool = False) -> None:
            sent.append(data)

    await grpclib_send_message(
        Stream(),  # type: ignore[arg-type]
        wire.Codec(send_unjoined=True),
        message,
        v1.UploadModelVersionRequest,
    )
    (data,) = sent
    assert isinstance(data, wire.Unjoined)
    assert any(part is chunk for part in data.parts)
    encoded = bytes(message)
    assert len(data) == 5 + len(encoded)
    assert bytes(data) == b"\0" + len(encoded).to_bytes(4, "big") + encoded


@pytest.mark.parametrize(
    ("codec", "chunk"),
    [
        pytest.param(wire.Codec(), os.urandom(1 << 20), id="grpclib-streams"),
        pytest.param(wire.Codec(send_unjoined=True), b"small", id="small"),
        pytest.param(
            wire.Codec(send_unjoined=True), bytearray(wire.UNJOINED_PART_BYTES), id="mutable"
        ),
    ],
)
def test_other_messages_are_joined_bytes(codec: wire.Codec, chunk: bytes) -> None:
    """A codec for grpclib's own streams, a small message, and a chunk its sender could still
    change (a bytearray, which the transport might hold after the write) give plain bytes."""
    message = v1.UploadModelVersionRequest(chunk=chunk)
    encoded = codec.encode(message, v1.UploadModelVersionRequest)
    assert encoded.__class__ is bytes
    assert encoded == bytes(message)


def betterproto_groups(cls: type[betterproto.Message]) -> set[str]:
    return {meta.group for _, meta, _ in declared_fields(cls) if meta.group is not None}


def outcome_of(action: Callable[[], Any]) -> Any:
    """What ``action`` returned (as its state), or the type of what it raised."""
    try:
        return state(action())
    except Exception as error:
        return type(error)


def traced(action: Callable[[], Any]) -> tuple[Any, int]:
    """``action``'s result and the peak of memory it allocated meanwhile."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
