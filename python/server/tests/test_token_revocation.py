"""Tokens that stop working: sign-out, deleted accounts and token generations, checked on
every authenticated method through the one authorization path."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_testing import VIEWER, Api, Caller, channel_for, expect_error, sql

from modelcatalog import v1
from modelcatalog_server.app import Application, build_application
from modelcatalog_server.auth.hook import METHOD_ACCESS, Access
from modelcatalog_server.auth.passwords import PasswordHasher
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.accounts import Accounts
from modelcatalog_server.domain.errors import Unauthenticated
from modelcatalog_server.domain.sign_in_limits import SignInGuard, SignInLimits
from modelcatalog_server.storage.metadata import MetadataStore, Transaction, now_us
from modelcatalog_server.storage.records import TokenStanding

AUTHENTICATED = sorted(
    method for method, access in METHOD_ACCESS.items() if access is not Access.PUBLIC
)


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
                if handler.cardinality.server_streaming:
                    await stream.cancel()  # an accepted watch would stream on
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
    await sql(settings, "DELETE FROM folder_members WHERE user_id = :id", id=bob.user.id)
    await sql(settings, "DELETE FROM users WHERE id = :id", id=bob.user.id)
    assert await refusals(app, channel, bob.token) == revoked_everywhere()
    listed = await alice.folders.list_folders(v1.ListFoldersRequest())
    assert [f.id for f in listed.folders] == [folder.id]


async def test_a_raised_token_generation_revokes_the_tokens_issued_before(
    api: Api, settings: Settings
) -> None:
    """Tokens carry the account's generation; once it moves on they are TOKEN_REVOKED, and a
    new sign-in issues tokens that work."""
    alice = await api.caller("alice")
    await sql(settings, "UPDATE users SET token_generation = token_generation + 1")
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


# The standing of a token, remembered for the token check interval


class Standing:
    """Accounts over a real store with a clock the test moves, counting the standing queries;
    the queries can be held in their database thread until released."""

    def __init__(self, accounts: Accounts, now: list[float]) -> None:
        self.accounts = accounts
        self.now = now
        self.queries = 0
        self.hold = threading.Event()
        self.hold.set()
        self.holding = threading.Event()


@pytest.fixture
async def standing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Standing]:
    store = await MetadataStore.open_sqlite(tmp_path / "catalog.sqlite3")
    hasher = PasswordHasher(cost=4)
    now = [1000.0]
    accounts = Accounts(
        store,
        hasher,
        SignInGuard(store, SignInLimits()),
        allow_signup=True,
        token_check_interval=5,
        clock=lambda: now[0],
    )
    counted = Standing(accounts, now)
    read = Transaction.token_standing

    def token_standing(tx: Transaction, user_id: str, token_id: str) -> TokenStanding | None:
        counted.queries += 1
        answer = read(tx, user_id, token_id)
        counted.holding.set()
        assert counted.hold.wait(timeout=30)
        return answer

    monkeypatch.setattr(Transaction, "token_standing", token_standing)
    try:
        yield counted
    finally:
        counted.hold.set()
        hasher.close()
        await store.close()


async def test_a_standing_token_is_asked_about_once_per_check_interval(
    standing: Standing,
) -> None:
    """Checks of a token found standing ask the database again only once the interval since
    the last question has passed."""
    alice = await standing.accounts.sign_up("alice", "correct horse", None)
    for _ in range(3):
        await standing.accounts.check_token(alice.id, "token", 0)
    assert standing.queries == 1
    standing.now[0] += 4.9
    await standing.accounts.check_token(alice.id, "token", 0)
    assert standing.queries == 1
    standing.now[0] += 0.1
    await standing.accounts.check_token(alice.id, "token", 0)
    assert standing.queries == 2


async def test_a_sign_out_is_refused_on_the_next_check_despite_the_interval(
    standing: Standing,
) -> None:
    """A token signed out on this server is refused on its very next check, though it was
    found standing a moment before; the account's other tokens keep working."""
    alice = await standing.accounts.sign_up("alice", "correct horse", None)
    for token in ("token", "other"):
        await standing.accounts.check_token(alice.id, token, 0)
    await standing.accounts.sign_out(alice.id, "token", now_us() + 60_000_000)
    with pytest.raises(Unauthenticated) as refused:
        await standing.accounts.check_token(alice.id, "token", 0)
    assert refused.value.reason == "TOKEN_REVOKED"
    queries = standing.queries
    await standing.accounts.check_token(alice.id, "other", 0)
    assert standing.queries == queries


async def test_a_check_that_read_before_a_sign_out_committed_is_not_remembered(
    standing: Standing,
) -> None:
    """A check whose query ran before a concurrent sign-out committed may pass, but its answer
    is not remembered: the next check asks the database and is refused."""
    alice = await standing.accounts.sign_up("alice", "correct horse", None)
    standing.hold.clear()
    standing.holding.clear()
    in_flight = asyncio.create_task(standing.accounts.check_token(alice.id, "token", 0))
    assert await asyncio.to_thread(standing.holding.wait, 30)
    await standing.accounts.sign_out(alice.id, "token", now_us() + 60_000_000)
    standing.hold.set()
    await in_flight
    with pytest.raises(Unauthenticated):
        await standing.accounts.check_token(alice.id, "token", 0)


async def test_a_revocation_by_another_server_holds_once_the_interval_has_passed(
    standing: Standing, tmp_path: Path
) -> None:
    """A revocation written to the database by another process is refused by this one at the
    latest one check interval after it last found the token standing."""
    alice = await standing.accounts.sign_up("alice", "correct horse", None)
    await standing.accounts.check_token(alice.id, "token", 0)
    with sqlite3.connect(tmp_path / "catalog.sqlite3") as db:
        db.execute(
            "INSERT INTO revoked_tokens (token_id, user_id, until_us) VALUES (?, ?, ?)",
            ("token", alice.id, now_us() + 60_000_000),
        )
    standing.now[0] += 5
    with pytest.raises(Unauthenticated):
        await standing.accounts.check_token(alice.id, "token", 0)


async def test_an_interval_of_zero_asks_on_every_check(tmp_path: Path) -> None:
    """With --token-check-interval 0 every check reads the database: a revocation written by
    another process is refused on the next call."""
    store = await MetadataStore.open_sqlite(tmp_path / "catalog.sqlite3")
    hasher = PasswordHasher(cost=4)
    try:
        accounts = Accounts(
            store,
            hasher,
            SignInGuard(store, SignInLimits()),
            allow_signup=True,
            token_check_interval=0,
        )
        alice = await accounts.sign_up("alice", "correct horse", None)
        await accounts.check_token(alice.id, "token", 0)
        with sqlite3.connect(tmp_path / "catalog.sqlite3") as db:
            db.execute("UPDATE users SET token_generation = 1")
        with pytest.raises(Unauthenticated):
            await accounts.check_token(alice.id, "token", 0)
    finally:
        hasher.close()
        await store.close()


async def test_a_signed_out_token_is_refused_over_the_api_right_after_being_used(
    api: Api,
) -> None:
    """A token used a moment ago (so found standing) is refused on the call after SignOut."""
    alice = await api.caller("alice")
    for _ in range(3):
        await alice.auth.get_current_user(v1.GetCurrentUserRequest())
    await alice.auth.sign_out(v1.SignOutRequest())
    await expect_error(
        alice.auth.get_current_user(v1.GetCurrentUserRequest()),
        Status.UNAUTHENTICATED,
        "TOKEN_REVOKED",
    )
