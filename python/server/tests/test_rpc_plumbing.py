"""Every call is logged once, server faults become INTERNAL, and secrets never reach the log."""

from __future__ import annotations

import logging

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
