"""SignUp, SignIn and GetCurrentUser, through the real service stack on an in-memory channel."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import bcrypt
import pytest
from grpclib.const import Status
from server_testing import Api, channel_for, expect_error, sql

from modelcatalog import v1
from modelcatalog_server.app import build_application
from modelcatalog_server.config import Settings


async def test_sign_up_then_sign_in_returns_a_token_for_the_account(api: Api) -> None:
    """The token of SignIn identifies the account SignUp created, and expires after 1 h."""
    created = (await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))).user
    assert created.username == "alice"
    assert created.id
    # Tokens carry whole seconds: the issue time is the sign-in's second, rounded down.
    before = datetime.now(UTC).replace(microsecond=0)
    signed_in = await api.auth.sign_in(v1.SignInRequest("alice", "correct horse"))
    after = datetime.now(UTC)
    assert signed_in.user.id == created.id
    lifetime = timedelta(hours=1)
    assert before + lifetime <= signed_in.expire_time <= after + lifetime
    me = api.as_token(created, signed_in.access_token)
    assert (await me.auth.get_current_user(v1.GetCurrentUserRequest())).user == created


async def test_duplicate_username_is_already_exists(api: Api) -> None:
    """A taken username gets ALREADY_EXISTS and the first account keeps its password."""
    await api.auth.sign_up(v1.SignUpRequest("alice", "first password"))
    await expect_error(
        api.auth.sign_up(v1.SignUpRequest("alice", "second password")),
        Status.ALREADY_EXISTS,
        "USERNAME_TAKEN",
    )
    await api.auth.sign_in(v1.SignInRequest("alice", "first password"))


@pytest.mark.parametrize(
    "username", ["", "ab", "Alice", "-alice", "al ice", "alice@example", "a" * 65, "élise"]
)
async def test_malformed_usernames_are_rejected(api: Api, username: str) -> None:
    """Usernames outside the documented pattern get INVALID_ARGUMENT naming the field."""
    error = await expect_error(
        api.auth.sign_up(v1.SignUpRequest(username, "correct horse")),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="username",
    )
    assert "3 to 64 characters" in (error.message or "")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 8 characters"),
        ("é" * 37, "at most 72 bytes"),
        ("x" * 73, "at most 72 bytes"),
        ("nul\0in the middle", "NUL"),
    ],
)
async def test_unusable_passwords_are_rejected(api: Api, password: str, message: str) -> None:
    """Too short, past bcrypt's 72 bytes (counted in UTF-8), or with NUL: INVALID_ARGUMENT."""
    error = await expect_error(
        api.auth.sign_up(v1.SignUpRequest("alice", password)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="password",
    )
    assert message in (error.message or "")


async def test_a_72_byte_password_is_accepted_in_full(api: Api) -> None:
    """Exactly 72 bytes works, and a different last byte does not sign in."""
    password = "p" * 71 + "1"
    await api.auth.sign_up(v1.SignUpRequest("alice", password))
    await api.auth.sign_in(v1.SignInRequest("alice", password))
    await expect_error(
        api.auth.sign_in(v1.SignInRequest("alice", "p" * 71 + "2")),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )


async def test_unknown_user_and_wrong_password_fail_alike(api: Api) -> None:
    """Status, reason and message are identical whether the user exists or not."""
    await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))
    wrong_password = await expect_error(
        api.auth.sign_in(v1.SignInRequest("alice", "wrong horse")),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    unknown_user = await expect_error(
        api.auth.sign_in(v1.SignInRequest("bob", "wrong horse")),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    too_long = await expect_error(
        api.auth.sign_in(v1.SignInRequest("alice", "x" * 100)),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    assert wrong_password.message == unknown_user.message == too_long.message


async def test_unknown_user_still_costs_a_bcrypt_check(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sign-in for a missing user runs bcrypt against a dummy hash, so timing reveals nothing."""
    checks: list[bytes] = []
    real_check = bcrypt.checkpw

    def counting_check(password: bytes, hashed: bytes) -> bool:
        checks.append(hashed)
        return bool(real_check(password, hashed))

    monkeypatch.setattr(bcrypt, "checkpw", counting_check)
    await expect_error(
        api.auth.sign_in(v1.SignInRequest("nobody", "whatever1")),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    assert len(checks) == 1
    assert checks[0].startswith(b"$2b$04$")


@pytest.mark.parametrize(("username", "password"), [("", "x"), ("alice", "")])
async def test_sign_in_with_an_empty_field_names_it(api: Api, username: str, password: str) -> None:
    """An empty username or password is INVALID_ARGUMENT naming that field."""
    await expect_error(
        api.auth.sign_in(v1.SignInRequest(username, password)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="username" if not username else "password",
    )


async def test_sign_up_can_be_turned_off(settings: Settings) -> None:
    """With sign-up off, SignUp is PERMISSION_DENIED and no account is created."""
    async with (
        build_application(replace(settings, allow_signup=False)) as app,
        channel_for(app) as channel,
    ):
        api = Api(channel)
        await expect_error(
            api.auth.sign_up(v1.SignUpRequest("alice", "correct horse")),
            Status.PERMISSION_DENIED,
            "SIGNUP_DISABLED",
        )
        await expect_error(
            api.auth.sign_in(v1.SignInRequest("alice", "correct horse")),
            Status.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
        )


async def test_passwords_are_stored_as_bcrypt_hashes(api: Api, settings: Settings) -> None:
    """The database holds a bcrypt hash at the configured cost, never the password."""
    await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))
    [(stored,)] = await sql(settings, "SELECT password_hash FROM users")
    assert stored.startswith("$2b$04$")
    assert "correct horse" not in stored


async def test_current_user_needs_a_token(api: Api) -> None:
    """GetCurrentUser without a token is UNAUTHENTICATED (TOKEN_MISSING)."""
    await expect_error(
        api.auth.get_current_user(v1.GetCurrentUserRequest()),
        Status.UNAUTHENTICATED,
        "TOKEN_MISSING",
    )


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer ", "token-without-scheme"])
async def test_malformed_authorization_is_token_invalid(api: Api, header: str) -> None:
    """An authorization entry that is not 'Bearer <token>' is TOKEN_INVALID."""
    stub = v1.AuthServiceStub(api.channel, metadata={"authorization": header})
    await expect_error(
        stub.get_current_user(v1.GetCurrentUserRequest()), Status.UNAUTHENTICATED, "TOKEN_INVALID"
    )


async def test_token_of_another_server_is_rejected(api: Api) -> None:
    """A well-formed JWT this server did not sign is TOKEN_INVALID."""
    forged = (
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjAwMDAwMDAwMDAwMDAwMDAiLCJ0eXAiOiJKV1QifQ."
        "eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    )
    stub = v1.FolderServiceStub(api.channel, metadata={"authorization": f"Bearer {forged}"})
    await expect_error(
        stub.list_folders(v1.ListFoldersRequest()), Status.UNAUTHENTICATED, "TOKEN_INVALID"
    )


@pytest.mark.parametrize("username", ["ali\0ce", "ALICE", "a" * 65, "al", "al ice"])
async def test_a_username_no_account_can_have_fails_like_an_unknown_one(
    api: Api, username: str
) -> None:
    """A sign-in with a username sign-up would refuse (NUL included, which PostgreSQL cannot
    even compare) answers as for an unknown user, never INTERNAL."""
    await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))
    await expect_error(
        api.auth.sign_in(v1.SignInRequest(username, "correct horse")),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
