"""Tokens that stop working: sign-out, deleted accounts and token generations, checked on
every authenticated method through the one authorization path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_testing import VIEWER, Api, Caller, channel_for, expect_error

from modelcatalog import v1
from modelcatalog_server.app import Application, build_application
from modelcatalog_server.auth.hook import METHOD_ACCESS, Access
from modelcatalog_server.auth.passwords import PasswordHasher
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.accounts import Accounts
from modelcatalog_server.domain.sign_in_limits import SignInGuard, SignInLimits
from modelcatalog_server.storage.metadata import MetadataStore, now_us

AUTHENTICATED = sorted(
    method for method, access in METHOD_ACCESS.items() if access is not Access.PUBLIC
)


def database(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.data_dir / "catalog.sqlite3")


async def refusals(app: Application, channel: Channel, token: str) -> dict[str, tuple[Status, str]]:
    """The status and reason every authenticated method answers to a call with ``token``
    (an empty request, of whatever cardinality the method has); OK for one that accepts it."""
    handlers = {
        method: h for service in app.services for method, h in service.__mapping__().items()
    }
    answers: dict[str, tuple[Status, str]] = {}
    for method in AUTHENTICATED:
        handler = handlers[method]
        try:
            async with channel.request(
                method,
                handler.cardinality,
                handler.request_type,
                handler.reply_type,
                timeout=10,
                metadata={"authorization": f"Bearer {token}"},
            ) as stream:
                await stream.send_message(handler.request_type(), end=True)
                await stream.recv_initial_metadata()
            answers[method] = (Status.OK, "")
        except GRPCError as error:
            (info,) = [d for d in error.details or [] if isinstance(d, ErrorInfo)]
            answers[method] = (error.status, info.reason)
    return answers


def revoked_everywhere() -> dict[str, tuple[Status, str]]:
    return dict.fromkeys(AUTHENTICATED, (Status.UNAUTHENTICATED, "TOKEN_REVOKED"))


async def test_a_signed_out_token_is_refused_on_every_method(
    app: Application, channel: Channel, api: Api
) -> None:
    """After SignOut, every authenticated method refuses the token with TOKEN_REVOKED, while
    the account's other token and another account's token keep working."""
    alice = await api.caller("alice")
    second = (await api.auth.sign_in(v1.SignInRequest("alice", "correct horse"))).access_token
    bob = await api.caller("bob")
    await alice.auth.sign_out(v1.SignOutRequest())
    assert await refusals(app, channel, alice.token) == revoked_everywhere()
    other_session = api.as_token(alice.user, second)
    assert (
        await other_session.auth.get_current_user(v1.GetCurrentUserRequest())
    ).user == alice.user
    assert (await bob.auth.get_current_user(v1.GetCurrentUserRequest())).user == bob.user


async def test_a_deleted_account_token_is_refused_on_every_method(
    app: Application, channel: Channel, api: Api, settings: Settings
) -> None:
    """A token whose account was deleted reads nothing, not even folders shared with it."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("shared"))).folder
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(folder.id, "bob", VIEWER))
    with database(settings) as db:
        db.execute("DELETE FROM folder_members WHERE user_id = ?", (bob.user.id,))
        db.execute("DELETE FROM users WHERE id = ?", (bob.user.id,))
    assert await refusals(app, channel, bob.token) == revoked_everywhere()
    listed = await alice.folders.list_folders(v1.ListFoldersRequest())
    assert [f.id for f in listed.folders] == [folder.id]


async def test_a_raised_token_generation_revokes_the_tokens_issued_before(
    api: Api, settings: Settings
) -> None:
    """Tokens carry the account's generation; once it moves on they are TOKEN_REVOKED, and a
    new sign-in issues tokens that work."""
    alice = await api.caller("alice")
    with database(settings) as db:
        db.execute("UPDATE users SET token_generation = token_generation + 1")
    await expect_error(
        alice.auth.get_current_user(v1.GetCurrentUserRequest()),
        Status.UNAUTHENTICATED,
        "TOKEN_REVOKED",
    )
    fresh = await api.auth.sign_in(v1.SignInRequest("alice", "correct horse"))
    again = api.as_token(alice.user, fresh.access_token)
    assert (await again.auth.get_current_user(v1.GetCurrentUserRequest())).user == alice.user


async def test_a_sign_out_holds_for_the_next_server_process(settings: Settings) -> None:
    """The revocation is in the database: a server started afterwards refuses the token."""
    async with build_application(settings) as first, channel_for(first) as channel:
        alice: Caller = await Api(channel).caller("alice")
        await alice.auth.sign_out(v1.SignOutRequest())
    async with build_application(settings) as second, channel_for(second) as channel:
        await expect_error(
            Api(channel)
            .as_token(alice.user, alice.token)
            .auth.get_current_user(v1.GetCurrentUserRequest()),
            Status.UNAUTHENTICATED,
            "TOKEN_REVOKED",
        )


async def test_signing_out_twice_is_refused_as_revoked(api: Api) -> None:
    """A second SignOut with the same token is UNAUTHENTICATED (TOKEN_REVOKED)."""
    alice = await api.caller("alice")
    await alice.auth.sign_out(v1.SignOutRequest())
    await expect_error(
        alice.auth.sign_out(v1.SignOutRequest()), Status.UNAUTHENTICATED, "TOKEN_REVOKED"
    )


async def test_revocations_of_expired_tokens_are_deleted(tmp_path: Path) -> None:
    """Each sign-out deletes the revocations of tokens that have expired since."""
    store = await MetadataStore.open_sqlite(tmp_path / "catalog.sqlite3")
    hasher = PasswordHasher(cost=4)
    try:
        accounts = Accounts(store, hasher, SignInGuard(store, SignInLimits()), allow_signup=True)
        alice = await accounts.sign_up("alice", "correct horse", None)
        await accounts.sign_out(alice.id, "expired-token", now_us() - 1)
        await accounts.sign_out(alice.id, "current-token", now_us() + 60_000_000)
    finally:
        hasher.close()
        await store.close()
    with sqlite3.connect(tmp_path / "catalog.sqlite3") as db:
        kept = db.execute("SELECT token_id FROM revoked_tokens").fetchall()
    assert kept == [("current-token",)]
