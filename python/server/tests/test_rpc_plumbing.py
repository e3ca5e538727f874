"""Every call is logged once, server faults become INTERNAL, and secrets never reach the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_testing import Api

from modelcatalog import v1
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


async def test_unexpected_failures_are_internal_and_hide_details(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug surfaces as INTERNAL with a generic message; the traceback goes to the log only."""

    async def broken(self: Accounts, username: str, password: str) -> None:
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

    async def compressed(self: Accounts, username: str, password: str) -> None:
        raise NotImplementedError("Compression not implemented")

    monkeypatch.setattr(Accounts, "sign_up", compressed)
    with pytest.raises(GRPCError) as caught:
        await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))
    assert caught.value.status == Status.UNIMPLEMENTED
    assert "uncompressed" in (caught.value.message or "")
