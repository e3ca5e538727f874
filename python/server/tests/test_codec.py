"""The request codec: what protobuf bytes it decodes, what it refuses, and the field it names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import betterproto
import pytest
from grpclib.const import Status
from grpclib.health.v1.health_pb2 import HealthCheckRequest
from protobuf_fuzzing import varint
from server_testing import Api, expect_error

from modelcatalog import v1, wire
from modelcatalog_server.transport import RequestCodec
from modelcatalog_server.transport._codec import (
    MAX_NESTING_DEPTH,
    MAX_UNKNOWN_FIELDS_PER_REQUEST,
    MAX_VALUES_PER_REQUEST,
)
from modelcatalog_server.transport._upstream import betterproto_metadata

CODEC = RequestCodec()
VARINT, FIXED_64, LENGTH_DELIMITED, GROUP_START, GROUP_END, FIXED_32 = range(6)
EDITOR = v1.FolderRole.from_string("EDITOR")


@dataclass(eq=False, repr=False)
class Scalars(betterproto.Message):
    """Field types no request message uses yet, so the codec's handling of them is tested too."""

    small: int = betterproto.uint32_field(1)
    zigzag: int = betterproto.sint32_field(2)
    ratio: float = betterproto.float_field(3)
    total: float = betterproto.double_field(4)
    counts: list[int] = betterproto.int32_field(5)  # noqa: RUF009 - a betterproto field declaration
    weights: list[float] = betterproto.float_field(6)  # noqa: RUF009 - a betterproto field declaration
    role: v1.FolderRole = betterproto.enum_field(7)  # noqa: RUF009 - a betterproto field declaration
    flag: bool = betterproto.bool_field(8)
    big: int = betterproto.int64_field(9)
    wide: int = betterproto.uint64_field(10)
    stamp: int = betterproto.fixed64_field(11)


@dataclass(eq=False, repr=False)
class Node(betterproto.Message):
    """A message that contains itself, as trees do; only such a message can nest without end."""

    child: Node = betterproto.message_field(1)  # noqa: RUF009 - a betterproto field declaration
    label: str = betterproto.string_field(2)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, LENGTH_DELIMITED) + varint(len(payload)) + payload


async def decoding(data: bytes, message_type: type[object]) -> object:
    return CODEC.decode(data, message_type)


async def test_a_field_sent_with_another_wire_type_is_refused_naming_the_field() -> None:
    """A string sent as a varint (the int a handler would have seen) is MALFORMED_REQUEST."""
    data = tag(1, VARINT) + varint(42) + length_delimited(2, b"password1")
    error = await expect_error(
        decoding(data, v1.SignUpRequest),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field="username",
    )
    assert error.message == (
        "the request is not a valid SignUpRequest message: field username: a string field "
        "arrived as a varint (wire type 0), not as a length-delimited value (wire type 2)"
    )


async def test_a_nested_field_is_named_by_its_dotted_path() -> None:
    """A bad map value inside the upload header names header.labels.value."""
    entry = length_delimited(1, b"stage") + tag(2, VARINT) + varint(3)
    data = length_delimited(1, length_delimited(7, entry))
    await expect_error(
        decoding(data, v1.UploadModelVersionRequest),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field="header.labels.value",
    )


@pytest.mark.parametrize(
    ("trailer", "field"),
    [
        (tag(1, VARINT) + varint(7), "trailer.sha256"),
        (length_delimited(1, b"\xff" * 64), "trailer.sha256"),
        (length_delimited(1, b"ab")[:-1], "trailer.sha256"),
    ],
    ids=["digest as a varint", "digest not UTF-8", "cut short"],
)
async def test_a_malformed_upload_trailer_is_refused_naming_its_field(
    trailer: bytes, field: str
) -> None:
    """A trailer whose bytes do not decode as its declared field is MALFORMED_REQUEST."""
    await expect_error(
        decoding(length_delimited(3, trailer), v1.UploadModelVersionRequest),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field=field,
    )


def test_an_upload_trailer_decodes_through_the_compiled_codec() -> None:
    """The trailer is read by the same compiled decoder as chunks, into the oneof's member."""
    sha256 = "ab" * 32
    data = bytes(v1.UploadModelVersionRequest(trailer=v1.UploadModelVersionTrailer(sha256)))
    decoded = CODEC.decode(data, v1.UploadModelVersionRequest)
    assert betterproto.which_one_of(decoded, "content") == ("trailer", decoded.trailer)
    assert decoded.trailer.sha256 == sha256
    assert wire.fallback_reason(v1.UploadModelVersionRequest) is None


@pytest.mark.parametrize(
    ("data", "message_type", "field"),
    [
        pytest.param(tag(1, LENGTH_DELIMITED), v1.SignUpRequest, "username", id="tag-only"),
        pytest.param(b"\x0a\x05ab", v1.SignUpRequest, "username", id="length-past-end"),
        pytest.param(tag(1, VARINT) + b"\x80", v1.ListFoldersRequest, "page_size", id="varint"),
        pytest.param(tag(9, FIXED_64) + b"\x01\x02\x03", v1.SignUpRequest, None, id="fixed64"),
        pytest.param(tag(9, FIXED_32) + b"\x01", v1.SignUpRequest, None, id="fixed32"),
        pytest.param(
            length_delimited(1, length_delimited(1, b"m1"))[:-1],
            v1.UploadModelVersionRequest,
            "header",
            id="nested",
        ),
        pytest.param(
            length_delimited(1, b"\x0a\x05ab"),
            v1.UploadModelVersionRequest,
            "header.model_id",
            id="inside-nested",
        ),
        pytest.param(b"\x80", v1.SignUpRequest, None, id="inside-a-tag"),
    ],
)
async def test_truncated_input_is_refused(
    data: bytes, message_type: type[object], field: str | None
) -> None:
    """Bytes that end inside a tag, a number, a fixed-width value or a length are refused."""
    await expect_error(
        decoding(data, message_type), Status.INVALID_ARGUMENT, "MALFORMED_REQUEST", field=field
    )


def test_a_ten_byte_varint_is_accepted_as_protobuf_encodes_negative_numbers() -> None:
    """A negative int32 arrives as 10 bytes (sign-extended, as protobuf writes it) and decodes."""
    data = tag(1, VARINT) + varint(-5)
    assert len(data) == 11
    assert CODEC.decode(data, v1.ListFoldersRequest).page_size == -5


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(b"\xff" * 10 + b"\x01", id="eleven-bytes"),
        pytest.param(b"\xff" * 9 + b"\x02", id="more-than-64-bits"),
    ],
)
async def test_an_over_long_varint_is_refused(encoded: bytes) -> None:
    """A varint of more than 10 bytes, or of 10 bytes holding over 64 bits, is refused."""
    await expect_error(
        decoding(tag(2, VARINT) + encoded, v1.GetModelVersionRequest),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field="version",
    )


@pytest.mark.parametrize(
    ("number", "field", "largest"),
    [(1, "small", (1 << 32) - 1), (2, "zigzag", (1 << 32) - 1), (7, "role", (1 << 31) - 1)],
    ids=["uint32", "sint32", "enum"],
)
async def test_numbers_beyond_their_type_are_refused(number: int, field: str, largest: int) -> None:
    """uint32 and sint32 take 32 bits and enums non-negative int32s; one more is refused."""
    CODEC.decode(tag(number, VARINT) + varint(largest), Scalars)
    await expect_error(
        decoding(tag(number, VARINT) + varint(largest + 1), Scalars),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field=field,
    )


def test_numbers_decode_as_protobuf_reads_them() -> None:
    """Unknown enum values stay open, any non-zero bool is true, int32 keeps its low 32 bits."""
    data = (
        tag(7, VARINT)
        + varint(9)
        + tag(8, VARINT)
        + varint(2)
        + tag(9, VARINT)
        + varint(-1)
        + tag(10, VARINT)
        + varint((1 << 64) - 1)
    )
    decoded = CODEC.decode(data, Scalars)
    assert (decoded.role.value, decoded.flag, decoded.big, decoded.wide) == (9, True, -1, 2**64 - 1)
    assert CODEC.decode(tag(1, VARINT) + varint(1 << 32 | 7), v1.ListFoldersRequest).page_size == 7


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param(tag(1, GROUP_START) + tag(1, GROUP_END), "username", id="known-group"),
        pytest.param(tag(9, GROUP_START) + tag(9, GROUP_END), None, id="unknown-group"),
        pytest.param(tag(9, GROUP_END), None, id="stray-group-end"),
        pytest.param(tag(9, 6), None, id="wire-type-6"),
        pytest.param(tag(2, 7), "password", id="wire-type-7"),
        pytest.param(tag(0, VARINT) + b"\x01", None, id="field-zero"),
        pytest.param(varint(1 << 32 | VARINT) + b"\x01", None, id="field-beyond-2**29"),
    ],
)
async def test_groups_impossible_wire_types_and_field_numbers_are_refused(
    data: bytes, field: str | None
) -> None:
    """Groups, wire types 6 and 7, field 0 and numbers above 2**29-1 are refused, not misread."""
    await expect_error(
        decoding(data, v1.SignUpRequest), Status.INVALID_ARGUMENT, "MALFORMED_REQUEST", field=field
    )


def test_unknown_fields_are_skipped_and_kept() -> None:
    """Fields a newer client sends are stepped over and survive a re-encode unchanged."""
    unknown = (
        tag(20, VARINT)
        + varint(300)
        + tag(21, FIXED_64)
        + bytes(8)
        + length_delimited(22, b"\x08\x01")
        + tag(23, FIXED_32)
        + bytes(4)
    )
    known = bytes(v1.SignUpRequest("alice", "password1"))
    decoded = CODEC.decode(known + unknown, v1.SignUpRequest)
    assert decoded == v1.SignUpRequest("alice", "password1")
    assert bytes(decoded) == known + unknown


@pytest.mark.parametrize(
    ("data", "limit"),
    [
        ((tag(15, VARINT) + varint(1)) * (MAX_UNKNOWN_FIELDS_PER_REQUEST + 1), "unknown fields"),
        (length_delimited(1, b"a") * (MAX_VALUES_PER_REQUEST + 1), "values"),
    ],
    ids=["unknown fields", "one field repeated"],
)
async def test_requests_made_of_countless_tiny_fields_are_refused(data: bytes, limit: str) -> None:
    """Millions of 2-byte fields would hold betterproto's decoder for minutes: refused first."""
    error = await expect_error(
        decoding(data * 100, v1.SignUpRequest), Status.INVALID_ARGUMENT, "MALFORMED_REQUEST"
    )
    assert limit in (error.message or "")


def test_repeated_scalars_decode_packed_or_one_by_one() -> None:
    """A repeated number arrives packed in one run or value by value; both decode in order."""
    packed = length_delimited(5, varint(1) + varint(300) + varint(-2))
    one_by_one = tag(5, VARINT) + varint(4)
    floats = length_delimited(6, bytes(Scalars(weights=[0.5, 2.0]))[2:])
    decoded = CODEC.decode(packed + one_by_one + floats, Scalars)
    assert (decoded.counts, decoded.weights) == ([1, 300, -2, 4], [0.5, 2.0])


@pytest.mark.parametrize(
    ("data", "message_type", "field"),
    [
        pytest.param(length_delimited(1, b"\x05"), v1.ListFoldersRequest, "page_size", id="single"),
        pytest.param(length_delimited(6, bytes(6)), Scalars, "weights", id="partial-float"),
        pytest.param(length_delimited(5, b"\x01\x80"), Scalars, "counts", id="cut-varint"),
        pytest.param(length_delimited(1, varint(1 << 32)), Scalars, "small", id="not-repeated"),
    ],
)
async def test_malformed_or_misplaced_packed_runs_are_refused(
    data: bytes, message_type: type[object], field: str
) -> None:
    """Only repeated fields may arrive packed, and a packed run holds whole values."""
    await expect_error(
        decoding(data, message_type), Status.INVALID_ARGUMENT, "MALFORMED_REQUEST", field=field
    )


@pytest.mark.parametrize(
    "text", [b"\xff", b"caf\xc3", b"\xed\xa0\x80"], ids=["invalid", "cut", "surrogate"]
)
async def test_strings_must_be_utf8(text: bytes) -> None:
    """A string field whose bytes are not UTF-8 (a lone surrogate included) is refused."""
    data = length_delimited(1, b"models") + length_delimited(2, text)
    await expect_error(
        decoding(data, v1.CreateFolderRequest),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field="description",
    )


def test_bytes_fields_are_not_checked_as_text() -> None:
    """An upload chunk carries any bytes, UTF-8 or not."""
    chunk = b"\xff\xfe" * 1000
    assert (
        CODEC.decode(
            bytes(v1.UploadModelVersionRequest(chunk=chunk)), v1.UploadModelVersionRequest
        ).chunk
        == chunk
    )


def nested(depth: int) -> bytes:
    data = length_delimited(2, b"leaf")
    for _ in range(depth):
        data = length_delimited(1, data)
    return data


async def test_nesting_is_limited_as_protobuf_limits_it() -> None:
    """A self-nesting message decodes 100 levels deep; one level more is refused, not a crash."""
    decoded = CODEC.decode(nested(MAX_NESTING_DEPTH), Node)
    for _ in range(MAX_NESTING_DEPTH):
        decoded = decoded.child
    assert decoded.label == "leaf"
    await expect_error(
        decoding(nested(MAX_NESTING_DEPTH + 1), Node),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field=".".join(["child"] * (MAX_NESTING_DEPTH + 1)),
    )


async def test_protobuf_runtime_messages_are_checked_by_protobuf() -> None:
    """Health checks (protobuf's own classes) decode, and their malformed bytes are refused too."""
    request = HealthCheckRequest(service="modelcatalog.v1.ModelService")
    assert CODEC.decode(request.SerializeToString(), HealthCheckRequest) == request
    error = await expect_error(
        decoding(b"\x0a\x05ab", HealthCheckRequest), Status.INVALID_ARGUMENT, "MALFORMED_REQUEST"
    )
    assert "HealthCheckRequest" in (error.message or "")


@dataclass(eq=False, repr=False)
class Lasting(betterproto.Message):
    """A message with a well-known type that betterproto turns into a Python ``timedelta``."""

    span: timedelta = betterproto.message_field(1)  # noqa: RUF009 - a betterproto field declaration


def test_well_known_type_fields_are_a_programming_error() -> None:
    """A request field betterproto maps to a Python type other than a Timestamp's datetime is
    reported at first use, not guessed."""
    with pytest.raises(TypeError, match=r"Lasting\.span"):
        CODEC.decode(b"", Lasting)


def test_a_timestamp_in_a_request_decodes_as_betterproto_reads_it() -> None:
    """An update request carrying a resource with its times decodes to the same datetimes."""
    created = datetime(2026, 11, 29, 3, 59, 23, 123456, tzinfo=UTC)
    request = v1.UpdateFolderRequest(folder=v1.Folder(id="f", create_time=created))
    decoded = CODEC.decode(bytes(request), v1.UpdateFolderRequest)
    assert decoded.folder.create_time == created


@pytest.mark.parametrize(
    "timestamp",
    [
        tag(1, VARINT) + varint(1 << 62),
        tag(1, VARINT) + varint((1 << 64) - (1 << 62)),
        tag(2, VARINT) + varint(1 << 31) + tag(1, VARINT) + varint(-62135596800 & (1 << 64) - 1),
    ],
    ids=["far future", "far past", "before year 1 by its nanos"],
)
async def test_a_timestamp_a_datetime_cannot_hold_is_refused(timestamp: bytes) -> None:
    """A Timestamp outside the years 1 to 9999 is MALFORMED_REQUEST naming it, not a crash."""
    data = length_delimited(1, length_delimited(5, timestamp))
    await expect_error(
        decoding(data, v1.UpdateFolderRequest),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field="folder.create_time",
    )


async def test_a_timestamp_is_checked_as_the_message_it_is() -> None:
    """Timestamp seconds sent as a string are refused with the field's dotted path."""
    data = length_delimited(1, length_delimited(5, length_delimited(1, b"soon")))
    await expect_error(
        decoding(data, v1.UpdateFolderRequest),
        Status.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
        field="folder.create_time.seconds",
    )


def test_betterproto_internals_keep_their_shape() -> None:
    """The betterproto metadata the codec reads (betterproto_metadata) is still shaped as used."""
    header = betterproto_metadata(v1.UploadModelVersionHeader)
    assert isinstance(header, betterproto.ProtoClassMetadata)
    meta = header.meta_by_field_name["size_bytes"]
    assert isinstance(meta, betterproto.FieldMetadata)
    assert (meta.number, meta.proto_type) == (4, betterproto.TYPE_INT64)
    assert header.meta_by_field_name["labels"].proto_type == betterproto.TYPE_MAP
    assert header.default_gen["model_id"] is str
    assert header.default_gen["labels"] is dict
    assert betterproto_metadata(v1.ListFoldersResponse).default_gen["folders"] is list
    assert betterproto_metadata(Scalars).default_gen["counts"] is list
    request = betterproto_metadata(v1.UploadModelVersionRequest)
    assert request.cls_by_field["header"] is v1.UploadModelVersionHeader
    entry = header.cls_by_field["labels"]
    assert issubclass(entry, betterproto.Message)
    assert {
        name: (meta.number, meta.proto_type)
        for name, meta in betterproto_metadata(entry).meta_by_field_name.items()
    } == {"key": (1, betterproto.TYPE_STRING), "value": (2, betterproto.TYPE_STRING)}
    assert betterproto_metadata(v1.Folder).cls_by_field["create_time"] is datetime
    assert betterproto_metadata(Lasting).cls_by_field["span"] is timedelta


async def test_in_memory_channel_decodes_with_the_request_codec(api: Api) -> None:
    """Unit tests see the production codec: a group field in a request is MALFORMED_REQUEST."""
    request = v1.SignUpRequest(username="ada", password="correct horse battery")
    request._unknown_fields = bytes([(3 << 3) | GROUP_START])
    await expect_error(api.auth.sign_up(request), Status.INVALID_ARGUMENT, "MALFORMED_REQUEST")
