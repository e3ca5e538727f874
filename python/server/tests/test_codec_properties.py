"""Properties of the request codec over every request message of every service (Hypothesis).

Valid messages survive the codec unchanged; any other bytes either decode into a message whose
fields all hold their declared Python types, or are refused as MALFORMED_REQUEST. Set
MODELCATALOG_TEST_FUZZ_EXAMPLES to try more examples per message type.
"""

from __future__ import annotations

import enum
import os
import typing
from datetime import UTC, datetime
from typing import Any

import betterproto
import pytest
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from hypothesis import given, settings
from hypothesis import strategies as st
from protobuf_fuzzing import INTEGER_RANGES, declared_fields, mutated
from test_codec import CODEC, Node, Scalars

from modelcatalog import v1

EXAMPLES = int(os.environ.get("MODELCATALOG_TEST_FUZZ_EXAMPLES", "100"))
SERVICES = (v1.AuthServiceBase(), v1.FolderServiceBase(), v1.ModelServiceBase())
REQUEST_TYPES = sorted(
    {handler.request_type for service in SERVICES for handler in service.__mapping__().values()},
    key=lambda message_type: message_type.__name__,
)
#: Message types of the tests, for field types no request uses yet (and self-nesting).
MESSAGE_TYPES = [*REQUEST_TYPES, Scalars, Node]


def test_every_service_method_has_a_request_type_under_test() -> None:
    """The properties below cover each request type the three services declare."""
    assert {"SignUpRequest", "UploadModelVersionRequest", "ListFolderAccessRequest"} <= {
        message_type.__name__ for message_type in REQUEST_TYPES
    }
    assert len(REQUEST_TYPES) == sum(len(service.__mapping__()) for service in SERVICES)


def values(proto_type: str, hint: Any, depth: int) -> st.SearchStrategy[Any]:
    """Valid values of one field, from its protobuf type and its Python type."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return st.lists(values(proto_type, arguments[0], depth), max_size=4)
    if origin is typing.Union:
        return values(proto_type, arguments[0], depth)
    if proto_type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[proto_type]
        return st.integers(low, high)
    if proto_type == betterproto.TYPE_ENUM:
        return st.sampled_from(list(hint))
    if hint is datetime:  # a google.protobuf.Timestamp, in the range a datetime holds
        return st.datetimes(
            min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
        )
    if proto_type == betterproto.TYPE_MESSAGE:
        return messages(hint, depth + 1)
    scalars: dict[str, st.SearchStrategy[Any]] = {
        betterproto.TYPE_STRING: st.text(max_size=20),
        betterproto.TYPE_BYTES: st.binary(max_size=20),
        betterproto.TYPE_BOOL: st.booleans(),
        betterproto.TYPE_FLOAT: st.floats(width=32, allow_nan=False),
        betterproto.TYPE_DOUBLE: st.floats(allow_nan=False),
    }
    return scalars[proto_type]


@st.composite
def messages(
    draw: st.DrawFn, message_type: type[betterproto.Message], depth: int = 0
) -> betterproto.Message:
    """A valid ``message_type``: at most one member of each oneof, nesting a few levels."""
    fields = declared_fields(message_type)
    members: dict[str, list[str]] = {}
    for name, meta, _ in fields:
        if meta.group is not None:
            members.setdefault(meta.group, []).append(name)
    chosen = {draw(st.sampled_from(names)) for names in members.values()}
    arguments: dict[str, Any] = {}
    for name, meta, hint in fields:
        if meta.group is not None and name not in chosen:
            continue
        if (meta.proto_type == betterproto.TYPE_MESSAGE and depth >= 3) or not draw(st.booleans()):
            continue
        if meta.proto_type == betterproto.TYPE_MAP:
            key_hint, value_hint = typing.get_args(hint)
            assert meta.map_types is not None
            arguments[name] = draw(
                st.dictionaries(
                    values(meta.map_types[0], key_hint, depth),
                    values(meta.map_types[1], value_hint, depth),
                    max_size=3,
                )
            )
        else:
            arguments[name] = draw(values(meta.proto_type, hint, depth))
    return message_type(**arguments)


def fuzzed(message_type: type[betterproto.Message]) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and valid encodings of ``message_type`` after a few mutations."""
    encodings = messages(message_type).map(bytes)
    return st.one_of(st.binary(max_size=64), encodings.flatmap(mutated))


def assert_declared_types(message: betterproto.Message) -> None:
    """Every field of ``message``, nested ones included, holds a value of its declared type."""
    for name, meta, hint in declared_fields(type(message)):
        if meta.group is not None and betterproto.which_one_of(message, meta.group)[0] != name:
            continue
        value = getattr(message, name)
        if meta.proto_type == betterproto.TYPE_MAP:
            key_hint, value_hint = typing.get_args(hint)
            assert meta.map_types is not None
            assert isinstance(value, dict), name
            for key, item in value.items():
                assert_value(key, meta.map_types[0], key_hint, name)
                assert_value(item, meta.map_types[1], value_hint, name)
        else:
            assert_value(value, meta.proto_type, hint, name)


def assert_value(value: Any, proto_type: str, hint: Any, name: str) -> None:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        assert isinstance(value, list), name
        for item in value:
            assert_value(item, proto_type, arguments[0], name)
    elif origin is typing.Union:
        if value is not None:
            assert_value(value, proto_type, arguments[0], name)
    elif proto_type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[proto_type]
        assert type(value) is int, name
        assert low <= value <= high, name
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        assert isinstance(value, hint), name
        assert 0 <= value.value < 1 << 31, name
    elif isinstance(hint, type) and issubclass(hint, betterproto.Message):
        assert isinstance(value, hint), name
        if betterproto.serialized_on_wire(value):
            assert_declared_types(value)
    else:
        assert type(value) is hint, name


def decoded_or_refused(
    payload: bytes, message_type: type[betterproto.Message]
) -> betterproto.Message | GRPCError:
    try:
        decoded: betterproto.Message = CODEC.decode(payload, message_type)
    except GRPCError as error:
        return error
    return decoded


def is_malformed_request(error: GRPCError) -> bool:
    infos = [detail for detail in error.details or [] if isinstance(detail, ErrorInfo)]
    return error.status == Status.INVALID_ARGUMENT and [i.reason for i in infos] == [
        "MALFORMED_REQUEST"
    ]


def by_name(message_type: type[betterproto.Message]) -> str:
    return message_type.__name__


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=by_name)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_valid_messages_round_trip_unchanged(
    message_type: type[betterproto.Message], data: st.DataObject
) -> None:
    """A valid message's encoding decodes as betterproto decodes it, and encodes the same again."""
    encoding = data.draw(messages(message_type).map(bytes))
    decoded = CODEC.decode(encoding, message_type)
    assert decoded == message_type.FromString(encoding)
    assert bytes(decoded) == encoding


@pytest.mark.parametrize("message_type", MESSAGE_TYPES, ids=by_name)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_any_bytes_decode_to_declared_types_or_are_malformed_request(
    message_type: type[betterproto.Message], data: st.DataObject
) -> None:
    """Fuzzed bytes give a well-typed message (that encodes again) or MALFORMED_REQUEST."""
    outcome = decoded_or_refused(data.draw(fuzzed(message_type)), message_type)
    if isinstance(outcome, GRPCError):
        assert is_malformed_request(outcome), outcome
    else:
        assert isinstance(outcome, message_type)
        assert_declared_types(outcome)
        bytes(outcome)
