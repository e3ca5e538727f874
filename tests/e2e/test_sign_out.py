"""Tokens that stop working on the real server: sign-out (SDK and CLI), a deleted account,
and both across a restart; other tokens keep working."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from modelcatalog import AsyncClient, PermissionDenied, Unauthenticated

from .conftest import RunningServer, start_server

PASSWORD = "correct horse battery"
#: The token check interval of the server whose account is deleted behind its back.
TOKEN_CHECK_INTERVAL_SECONDS = 1
#: How late the server may notice on a loaded machine and still count as on time.
TIMER_SLACK_SECONDS = 3.0


async def signed_in(server: RunningServer, username: str, *, sign_up: bool = True) -> AsyncClient:
    client = AsyncClient(server.address, ca_cert=server.ca_cert)
    if sign_up:
        await client.sign_up(username, PASSWORD)
    await client.sign_in(username, PASSWORD)
    return client


async def refused_as_revoked(server: RunningServer, token: str) -> None:
    async with AsyncClient(server.address, ca_cert=server.ca_cert, token=token) as client:
        with pytest.raises(Unauthenticated) as refused:
            await client.get_current_user()
    assert refused.value.reason == "TOKEN_REVOKED"


async def test_sign_out_revokes_only_the_calling_token(server: RunningServer) -> None:
    """After sign_out the token is refused; the account's other session and another account
    keep working."""
    first = await signed_in(server, "alice")
    second = await signed_in(server, "alice", sign_up=False)
    bob = await signed_in(server, "bob")
    token = first.token
    assert token is not None
    await first.sign_out()
    assert first.token is None
    await refused_as_revoked(server, token)
    assert (await second.get_current_user()).username == "alice"
    assert (await bob.get_current_user()).username == "bob"
    for client in (first, second, bob):
        client.close()


async def first_unauthenticated(call: Callable[[], Awaitable[object]]) -> str | None:
    """The reason of the first UNAUTHENTICATED answer to ``call`` within the token check
    interval (polled); None if there is none by then."""
    deadline = time.monotonic() + TOKEN_CHECK_INTERVAL_SECONDS + TIMER_SLACK_SECONDS
    while time.monotonic() < deadline:
        try:
            await call()
        except Unauthenticated as refused:
            return refused.reason
        except PermissionDenied:
            pass  # still trusted for the interval, but no longer a member of the folder
        await asyncio.sleep(0.05)
    return None


@pytest.fixture
def quick_check_server(tmp_path: Path, signing_key: Path) -> Iterator[RunningServer]:
    """A server that trusts a token found standing for 1 s before asking the database again."""
    running = start_server(
        tmp_path,
        "--token-check-interval",
        str(TOKEN_CHECK_INTERVAL_SECONDS),
        signing_key=signing_key,
    )
    yield running
    assert running.stop() == 0, running.log()


@pytest.mark.embedded_only("deletes the account in the SQLite file")
async def test_a_deleted_account_token_is_refused_on_every_kind_of_rpc(
    quick_check_server: RunningServer, tmp_path: Path
) -> None:
    """Once bob's account is deleted in the database (as by another process), his token is
    refused within the token check interval, and then reads nothing shared with him: unary
    calls, lists, the download stream and the upload stream all answer TOKEN_REVOKED."""
    server = quick_check_server
    alice, bob = await signed_in(server, "alice"), await signed_in(server, "bob")
    folder = await alice.create_folder("shared")
    model = await alice.create_model(folder.id, "weights")
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights" * 1000)
    await alice.upload(model.id, source)
    await alice.grant_folder_access(folder.id, "bob", "editor")
    await bob.download(model.id, 1, tmp_path / "before.bin")
    bob_id = (await bob.get_current_user()).id
    with sqlite3.connect(server.data_dir / "catalog.sqlite3", timeout=30) as database:
        database.execute("DELETE FROM folder_members WHERE user_id = ?", (bob_id,))
        database.execute("DELETE FROM users WHERE id = ?", (bob_id,))
    assert await first_unauthenticated(lambda: bob.get_folder(folder.id)) == "TOKEN_REVOKED"
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "unary": lambda: bob.get_folder(folder.id),
        "list": lambda: anext(bob.list_models(folder.id)),
        "download stream": lambda: bob.download(model.id, 1, tmp_path / "after.bin"),
        "upload stream": lambda: bob.upload(model.id, source),
    }
    for kind, call in calls.items():
        with pytest.raises(Unauthenticated) as refused:
            await call()
        assert refused.value.reason == "TOKEN_REVOKED", kind
    assert [f.name async for f in alice.list_folders()] == ["shared"]
    alice.close()
    bob.close()


async def test_a_sign_out_survives_a_restart(tmp_path: Path, signing_key: Path) -> None:
    """The revocation is stored: the restarted server still refuses the token."""
    first = start_server(tmp_path, signing_key=signing_key)
    try:
        alice = await signed_in(first, "alice")
        token = alice.token
        assert token is not None
        await alice.sign_out()
        alice.close()
    finally:
        assert first.stop() == 0
    second = start_server(tmp_path, data_dir=first.data_dir, signing_key=signing_key)
    try:
        await refused_as_revoked(second, token)
    finally:
        assert second.stop() == 0


def cli(
    config_home: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `modelcatalog` with its config in ``config_home``."""
    command = shutil.which("modelcatalog")
    assert command, "the modelcatalog command is not installed in this environment"
    environment = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    environment.pop("MODELCATALOG_TOKEN", None)
    return subprocess.run(
        [command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )


def log_in_with_the_cli(server: RunningServer, config_home: Path) -> str:
    """Signs alice up and in with the CLI; the token it saved."""
    connection = ("--server", server.address, "--ca-cert", str(server.ca_cert))
    for command in ("signup", "login"):
        done = cli(
            config_home,
            command,
            "alice",
            *connection,
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert done.returncode == 0, done.stderr
    saved = json.loads((config_home / "modelcatalog" / "config.json").read_text())
    return str(saved["token"])


async def test_logout_revokes_the_saved_token(server: RunningServer, tmp_path: Path) -> None:
    """`modelcatalog logout` signs the token out on the server before forgetting it."""
    token = log_in_with_the_cli(server, tmp_path / "config")
    logout = cli(tmp_path / "config", "logout")
    assert logout.returncode == 0, logout.stderr
    assert "the server revoked the token" in logout.stdout
    await refused_as_revoked(server, token)


def test_logout_without_the_server_still_forgets_the_token(
    tmp_path: Path, signing_key: Path
) -> None:
    """With the server gone, logout warns that the token stays valid and still forgets it."""
    server = start_server(tmp_path, signing_key=signing_key)
    try:
        log_in_with_the_cli(server, tmp_path / "config")
    finally:
        assert server.stop() == 0
    logout = cli(tmp_path / "config", "logout")
    assert logout.returncode == 0, logout.stderr
    assert "could not revoke the token" in logout.stderr
    assert "stays valid until it expires" in logout.stderr
    saved = json.loads((tmp_path / "config" / "modelcatalog" / "config.json").read_text())
    assert saved["token"] is None
