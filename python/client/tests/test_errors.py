"""Failures surface as typed ModelCatalogError subclasses carrying the server's reason."""

import asyncio
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError
from grpclib.testing import ChannelFor

import modelcatalog
from modelcatalog import (
    Aborted,
    AlreadyExists,
    AsyncClient,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ModelCatalogError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    ServerError,
    StatusCode,
    Unauthenticated,
    Unavailable,
    v1,
)
from modelcatalog._transport import from_grpc_error


class FailingAuth(v1.AuthServiceBase):
    """Fails SignUp and SignIn the way the server does; GetCurrentUser stays unimplemented."""

    async def sign_up(self, sign_up_request: v1.SignUpRequest) -> v1.SignUpResponse:
        raise GRPCError(
            Status.ALREADY_EXISTS,
            "the username is taken",
            [ErrorInfo(domain="modelcatalog.v1", reason="USERNAME_TAKEN")],
        )

    async def sign_in(self, sign_in_request: v1.SignInRequest) -> v1.SignInResponse:
        violation = BadRequest.FieldViolation(field="username", description="must not be empty")
        raise GRPCError(
            Status.INVALID_ARGUMENT,
            "username: must not be empty",
            [
                ErrorInfo(domain="example.com", reason="OTHER_DOMAIN"),
                ErrorInfo(
                    domain="modelcatalog.v1",
                    reason="INVALID_FIELD",
                    metadata={"field": "username"},
                ),
                BadRequest(field_violations=[violation]),
            ],
        )


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    async with ChannelFor([FailingAuth()]) as channel:
        yield AsyncClient.from_channel(channel)


async def test_reason_travels_in_the_status_details(client: AsyncClient) -> None:
    """ALREADY_EXISTS with ErrorInfo raises AlreadyExists carrying status, message and reason,
    and no grpclib exception in its traceback."""
    with pytest.raises(AlreadyExists) as caught:
        await client.sign_up("alice", "secret-password")
    error = caught.value
    assert error.status is StatusCode.ALREADY_EXISTS
    assert str(error.status) == "ALREADY_EXISTS"
    assert error.message == str(error) == "the username is taken"
    assert error.reason == "USERNAME_TAKEN"
    assert error.field is None
    assert error.metadata == {}
    assert error.__cause__ is None
    assert error.__suppress_context__


async def test_invalid_field_names_the_field_and_skips_other_domains(client: AsyncClient) -> None:
    """INVALID_ARGUMENT takes reason and field from this API's ErrorInfo, not another domain's."""
    with pytest.raises(InvalidArgument) as caught:
        await client.sign_in("", "secret-password")
    assert caught.value.reason == "INVALID_FIELD"
    assert caught.value.field == "username"
    assert caught.value.metadata == {"field": "username"}


def test_retry_info_becomes_retry_after() -> None:
    """A RetryInfo among the details gives the error its retry_after in seconds."""
    error = from_grpc_error(
        GRPCError(
            Status.RESOURCE_EXHAUSTED,
            "too many failed sign-ins",
            [
                ErrorInfo(domain="modelcatalog.v1", reason="SIGN_IN_THROTTLED"),
                RetryInfo(retry_delay=Duration(seconds=42, nanos=500_000_000)),
            ],
        )
    )
    assert isinstance(error, ResourceExhausted)
    assert error.reason == "SIGN_IN_THROTTLED"
    assert error.retry_after == 42.5


async def test_error_without_details_has_no_reason(client: AsyncClient) -> None:
    """An UNIMPLEMENTED RPC raises ServerError with the status and reason None."""
    with pytest.raises(ServerError) as caught:
        await client.get_current_user()
    assert caught.value.status is StatusCode.UNIMPLEMENTED
    assert caught.value.reason is None
    assert caught.value.retry_after is None
    assert caught.value.message == "UNIMPLEMENTED"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (Status.UNAUTHENTICATED, Unauthenticated),
        (Status.PERMISSION_DENIED, PermissionDenied),
        (Status.NOT_FOUND, NotFound),
        (Status.ALREADY_EXISTS, AlreadyExists),
        (Status.INVALID_ARGUMENT, InvalidArgument),
        (Status.FAILED_PRECONDITION, FailedPrecondition),
        (Status.RESOURCE_EXHAUSTED, ResourceExhausted),
        (Status.DATA_LOSS, DataLoss),
        (Status.OUT_OF_RANGE, OutOfRange),
        (Status.CANCELLED, Cancelled),
        (Status.DEADLINE_EXCEEDED, DeadlineExceeded),
        (Status.UNAVAILABLE, Unavailable),
        (Status.INTERNAL, ServerError),
        (Status.UNKNOWN, ServerError),
        (Status.ABORTED, Aborted),
    ],
)
def test_each_status_maps_to_its_class(
    status: Status, error_class: type[ModelCatalogError]
) -> None:
    """from_grpc_error picks the class of the status; unlisted statuses become ServerError."""
    error = from_grpc_error(GRPCError(status, "boom"))
    assert type(error) is error_class
    assert error.status is StatusCode[status.name]
    assert int(error.status) == status.value


def test_every_exported_exception_is_a_model_catalog_error() -> None:
    """One `except ModelCatalogError` catches every error class the SDK exports."""
    exported = [getattr(modelcatalog, name) for name in modelcatalog.__all__]
    errors = [obj for obj in exported if isinstance(obj, type) and issubclass(obj, Exception)]
    assert len(errors) == 15
    assert all(issubclass(error, ModelCatalogError) for error in errors)


async def test_expired_timeout_raises_deadline_exceeded() -> None:
    """A deadline that runs out raises DeadlineExceeded, never Unavailable."""
    async with ChannelFor([FailingAuth()]) as channel:
        client = AsyncClient.from_channel(channel, timeout=0)
        with pytest.raises(DeadlineExceeded, match="did not answer within 0 s"):
            await client.sign_up("alice", "secret-password")


@pytest.mark.parametrize("insecure", [True, False])
async def test_closed_port_raises_unavailable_naming_the_target(insecure: bool) -> None:
    """Connecting to a loopback port nobody listens on raises Unavailable, not a raw OSError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{probe.getsockname()[1]}"
    async with AsyncClient(target, insecure=insecure) as client:
        with pytest.raises(Unavailable, match=f"at {target}") as caught:
            await client.get_current_user()
    assert caught.value.status is StatusCode.UNAVAILABLE
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


@pytest.mark.parametrize(
    ("failure", "hint"),
    [
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "pass ca_cert="),
        (ssl.SSLError(1, "wrong version number"), "cannot reach"),
        (socket.gaierror(-2, "Name or service not known"), "cannot reach"),
    ],
)
async def test_tls_and_name_failures_raise_unavailable(
    monkeypatch: pytest.MonkeyPatch, failure: OSError, hint: str
) -> None:
    """TLS and DNS failures while connecting raise Unavailable that says what to do."""

    async def fail(*args: Any, **kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", fail)
    async with AsyncClient("models.example:443") as client:
        with pytest.raises(Unavailable, match=re.escape("models.example:443")) as caught:
            await client.get_current_user()
    assert hint in caught.value.message
    assert caught.value.__cause__ is failure


async def test_from_channel_errors_name_the_channel() -> None:
    """A client built from a channel names that channel when it cannot connect."""
    channel = Channel("127.0.0.1", 1)
    try:
        with pytest.raises(Unavailable, match=re.escape("Channel('127.0.0.1', 1,")):
            await AsyncClient.from_channel(channel).get_current_user()
    finally:
        channel.close()


def test_error_text_is_escaped_and_the_raw_message_kept() -> None:
    """str(error) shows the server's control characters as escapes; error.message keeps them."""
    error = from_grpc_error(GRPCError(Status.NOT_FOUND, "no \x1b]0;title\x07 \u202eversion"))
    assert str(error) == "no \\x1b]0;title\\x07 \\u202eversion"
    assert error.message == "no \x1b]0;title\x07 \u202eversion"


def test_error_details_decode_in_a_process_that_never_loaded_their_types() -> None:
    """The SDK's channel decodes ErrorInfo although nothing imported error_details_pb2 first
    (it loads them at the first error, to keep them out of every command's start-up)."""
    encoded = ProtoStatusDetailsCodec().encode(
        Status.ALREADY_EXISTS,
        "taken",
        [ErrorInfo(domain="modelcatalog.v1", reason="USERNAME_TAKEN")],
    )
    probe = (
        "import sys\n"
        "from grpclib.const import Status\n"
        "from grpclib.exceptions import GRPCError\n"
        "from modelcatalog._transport import ErrorDetailsCodec, from_grpc_error\n"
        "assert 'google.rpc.error_details_pb2' not in sys.modules\n"
        "details = ErrorDetailsCodec().decode(Status.ALREADY_EXISTS, 'taken', bytes.fromhex("
        f"{encoded.hex()!r}))\n"
        "error = from_grpc_error(GRPCError(Status.ALREADY_EXISTS, 'taken', details))\n"
        "print(type(error).__name__, error.reason)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["AlreadyExists", "USERNAME_TAKEN"]
