"""Every call is logged once, server faults become INTERNAL, and secrets never reach the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpclib.server
import pytest
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError
from server_testing import VIEWER, Api, expect_error

from modelcatalog import v1
from modelcatalog_server import metrics
from modelcatalog_server.app import LOG_FORMAT, LOG_FORMAT_WITH_PID, _LogFormatter
from modelcatalog_server.domain.accounts import Accounts


async def test_one_access_log_line_per_call_without_secrets(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Each RPC logs method, status, duration and user id; never the password or token."""
    caplog.set_level(logging.INFO, logger="modelcatalog_server.access")
    alice = await api.caller("alice", "secret password")
    await alice.auth.get_current_user(v1.GetCurrentUserRequest())
    lines = [r.getMessage() for r in caplog.records if r.name == "modelcatalog_server.access"]
    assert len(lines) == 3
    assert "method=/modelcatalog.v1.AuthService/SignUp status=OK" in lines[0]
    assert "status=OK duration_ms=" in lines[2]
    assert f"user={alice.user.id}" in lines[2]
    text = caplog.text
    assert "secret password" not in text
    assert alice.token not in text


async def test_the_access_line_is_written_after_the_answer_is_sent(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A call's answer, trailers included, goes out before its access log line is written
    and its metrics are counted: a slow log never delays the caller (from one caller, writing
    the line first cost about a tenth of each ``GetModel``'s round trip)."""
    alice = await api.caller("alice")
    events: list[str] = []
    send_trailing_metadata = grpclib.server.Stream.send_trailing_metadata

    async def noted(stream: grpclib.server.Stream[Any, Any], **kwargs: Any) -> None:
        await send_trailing_metadata(stream, **kwargs)
        events.append("trailers")

    class Noting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            events.append("access line")

    monkeypatch.setattr(grpclib.server.Stream, "send_trailing_metadata", noted)
    monkeypatch.setattr(metrics, "record_call", lambda *args: events.append("metrics"))
    caplog.set_level(logging.INFO, logger="modelcatalog_server.access")
    handler = Noting()
    logging.getLogger("modelcatalog_server.access").addHandler(handler)
    try:
        await alice.auth.get_current_user(v1.GetCurrentUserRequest())
    finally:
        logging.getLogger("modelcatalog_server.access").removeHandler(handler)
    assert events == ["trailers", "access line", "metrics"]


@pytest.mark.parametrize("fmt", [LOG_FORMAT, LOG_FORMAT_WITH_PID])
def test_log_lines_read_as_the_standard_formatter_writes_them(fmt: str) -> None:
    """The server's formatter, which formats the time of day once a second, writes every line
    as logging's own formatter does: within a second, across seconds, at any millisecond."""
    ours, standard = _LogFormatter(fmt), logging.Formatter(fmt)
    for created in (1_700_000_000.0, 1_700_000_000.9996, 1_700_000_001.25, 1_700_003_600.5):
        record = logging.LogRecord("modelcatalog_server.access", logging.INFO, "", 0, "x", (), None)
        record.created, record.msecs = created, (created - int(created)) * 1000 // 1
        assert ours.format(record) == standard.format(record)


async def test_unexpected_failures_are_internal_and_hide_details(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug surfaces as INTERNAL with a generic message; the traceback goes to the log only."""

    async def broken(self: Accounts, username: str, password: str, peer: str | None) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(Accounts, "sign_up", broken)
    with pytest.raises(GRPCError) as caught:
        await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))
    assert caught.value.status == Status.INTERNAL
    assert "hunter2" not in (caught.value.message or "")
    assert "hunter2" in caplog.text


async def test_oversized_request_message_is_refused(api: Api) -> None:
    """A request message over the 4 MiB chunk limit is RESOURCE_EXHAUSTED, read no further."""
    with pytest.raises(GRPCError) as caught:
        await api.auth.sign_up(v1.SignUpRequest("alice", "x" * (5 << 20)))
    assert caught.value.status == Status.RESOURCE_EXHAUSTED
    assert "at most" in (caught.value.message or "")


async def test_a_full_4_mib_upload_chunk_is_accepted(api: Api) -> None:
    """The limit leaves room for the largest chunk the contract allows."""
    alice = await api.caller("alice")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("f"))).folder
    model = (await alice.models.create_model(v1.CreateModelRequest(folder.id, "m"))).model

    async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
        yield v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader(model.id, "f.bin"))
        yield v1.UploadModelVersionRequest(chunk=bytes(4 << 20))

    response = await alice.models.upload_model_version(messages())
    assert response.version.size_bytes == 4 << 20


async def test_compressed_requests_are_unimplemented_not_internal(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """grpclib cannot read compressed messages; the caller is told so, with UNIMPLEMENTED."""

    async def compressed(self: Accounts, username: str, password: str, peer: str | None) -> None:
        raise NotImplementedError("Compression not implemented")

    monkeypatch.setattr(Accounts, "sign_up", compressed)
    with pytest.raises(GRPCError) as caught:
        await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))
    assert caught.value.status == Status.UNIMPLEMENTED
    assert "uncompressed" in (caught.value.message or "")


@pytest.mark.parametrize("size", [10_000, 1 << 20])
async def test_huge_inputs_are_not_echoed_back(api: Api, size: int) -> None:
    """Oversized values are refused with a short message: replies never grow with the input."""
    alice = await api.caller("alice")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("f"))).folder
    grant = await expect_error(
        alice.folders.grant_folder_access(
            v1.GrantFolderAccessRequest(folder.id, "u" * size, VIEWER)
        ),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "username",
    )
    model = (await alice.models.create_model(v1.CreateModelRequest(folder.id, "m"))).model
    header = v1.UploadModelVersionHeader(model.id, "f.bin", labels={"k" * size: "v"})

    async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
        yield v1.UploadModelVersionRequest(header=header)

    label = await expect_error(
        alice.models.upload_model_version(messages()),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "header.labels",
    )
    for error in (grant, label):
        assert len(error.message or "") < 300


async def sign_in_with_raw_body(api: Api, body: bytes) -> GRPCError:
    """Sends ``body`` as SignIn's request stream, as is, and returns the error that follows.

    The client side says STREAM_UNARY: grpclib's unary client refuses to send such bodies.
    """
    async with api.channel.request(
        "/modelcatalog.v1.AuthService/SignIn",
        Cardinality.STREAM_UNARY,
        v1.SignInRequest,
        v1.SignInResponse,
    ) as stream:
        await stream.send_request()
        if body:
            await stream._stream.send_data(body)
        await stream.end()
        with pytest.raises(GRPCError) as caught:
            await stream.recv_message()
    return caught.value


async def test_unary_call_without_a_message_is_invalid_argument(api: Api) -> None:
    """A unary call whose stream ends before any message is the client's error, not INTERNAL."""
    error = await sign_in_with_raw_body(api, b"")
    assert error.status == Status.INVALID_ARGUMENT
    assert "no request message" in (error.message or "")


async def test_stream_ending_inside_a_message_is_invalid_argument(api: Api) -> None:
    """A message cut short by the end of the stream is the client's error, not INTERNAL."""
    declares_100_bytes_sends_3 = b"\x00\x00\x00\x00\x64abc"
    error = await sign_in_with_raw_body(api, declares_100_bytes_sends_3)
    assert error.status == Status.INVALID_ARGUMENT
    assert "ended inside a message" in (error.message or "")
