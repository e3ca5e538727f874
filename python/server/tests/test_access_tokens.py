"""Access tokens for machines: shown once, stored as a digest, scoped (read-only, listed
folders), never more than their owner has now, revoked at once; and account self-service."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.client import Channel
from grpclib.const import Status
from server_testing import EDITOR, OWNER, VIEWER, Api, Caller, channel_for, expect_error, sql
from test_token_revocation import refusals

from modelcatalog import v1
from modelcatalog_server.app import Application, build_application
from modelcatalog_server.auth.hook import METHOD_ACCESS, Access
from modelcatalog_server.config import Settings

READ = v1.AccessTokenScope.from_string("READ")
READ_WRITE = v1.AccessTokenScope.from_string("READ_WRITE")
DAY = 86400
PASSWORD = "correct horse"


async def token_of(
    api: Api, owner: Caller, scope: v1.AccessTokenScope, *folder_ids: str, name: str = "ci"
) -> Caller:
    """``owner``'s new access token as a caller."""
    made = await owner.auth.create_access_token(
        v1.CreateAccessTokenRequest(name, scope, list(folder_ids), ttl_seconds=DAY)
    )
    return api.as_token(owner.user, made.secret)


def used(token: v1.AccessToken) -> bool:
    """Whether the token has a last-use time (betterproto shows an unset one as the epoch)."""
    return token.last_use_time is not None and token.last_use_time.timestamp() > 0


async def folder_with_model(owner: Caller, name: str) -> tuple[v1.Folder, v1.Model]:
    folder = (await owner.folders.create_folder(v1.CreateFolderRequest(name))).folder
    model = (await owner.models.create_model(v1.CreateModelRequest(folder.id, "weights"))).model
    return folder, model


async def test_a_token_is_shown_once_and_stored_only_as_its_digest(
    api: Api, settings: Settings
) -> None:
    """The secret starts with mct_, the database holds its SHA-256 only, and the list shows
    name, scope and times but no secret."""
    alice = await api.caller("alice")
    made = await alice.auth.create_access_token(
        v1.CreateAccessTokenRequest("ci", READ, [], ttl_seconds=DAY)
    )
    assert made.secret.startswith("mct_")
    assert len(made.secret) > 40
    stored = await sql(settings, "SELECT * FROM access_tokens")
    assert len(stored) == 1
    assert hashlib.sha256(made.secret.encode()).hexdigest() in stored[0]
    assert not any(made.secret in str(value) for value in stored[0])
    listed = (await alice.auth.list_access_tokens(v1.ListAccessTokensRequest())).access_tokens
    assert [(t.id, t.name, t.scope, t.folder_ids) for t in listed] == [
        (made.access_token.id, "ci", READ, [])
    ]
    assert made.secret not in str(listed[0].to_dict())


async def test_a_read_only_token_reads_and_is_refused_every_change_before_any_work(
    app: Application, channel: Channel, api: Api
) -> None:
    """With a read-only token every method that changes something answers TOKEN_READ_ONLY (or
    TOKEN_SCOPE_INSUFFICIENT for account methods) to an empty request, which would otherwise be
    refused as invalid; reads still work."""
    alice = await api.caller("alice")
    folder, model = await folder_with_model(alice, "vision")
    reader = await token_of(api, alice, READ)
    answers = await refusals(app, channel, reader.token)
    for method, access in METHOD_ACCESS.items():
        if access in (Access.AUTHENTICATED, Access.ALL_FOLDERS):
            assert answers[method] == (Status.PERMISSION_DENIED, "TOKEN_READ_ONLY"), method
        elif access is Access.ACCOUNT:
            assert answers[method] == (Status.PERMISSION_DENIED, "TOKEN_SCOPE_INSUFFICIENT")
        elif access is Access.READ:
            assert answers[method][1] not in ("TOKEN_READ_ONLY", "TOKEN_SCOPE_INSUFFICIENT")
    got = await reader.models.get_model(v1.GetModelRequest(model.id))
    assert got.model.name == "weights"
    listed = await reader.folders.list_folders(v1.ListFoldersRequest())
    assert [f.id for f in listed.folders] == [folder.id]


async def test_a_folder_limited_token_sees_only_its_folders(api: Api) -> None:
    """A token limited to one folder lists only it and its models; the other folder and its
    model answer as if they did not exist; it cannot create folders, but may work inside its
    folder."""
    alice = await api.caller("alice")
    vision, vision_model = await folder_with_model(alice, "vision")
    other, other_model = await folder_with_model(alice, "other")
    limited = await token_of(api, alice, READ_WRITE, vision.id)
    folders = (await limited.folders.list_folders(v1.ListFoldersRequest())).folders
    assert [f.id for f in folders] == [vision.id]
    models = (await limited.models.list_models(v1.ListModelsRequest())).models
    assert [m.id for m in models] == [vision_model.id]
    filtered = await limited.models.list_models(v1.ListModelsRequest(filter='name = "weights"'))
    assert [m.id for m in filtered.models] == [vision_model.id]
    await expect_error(
        limited.folders.get_folder(v1.GetFolderRequest(other.id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    await expect_error(
        limited.models.get_model(v1.GetModelRequest(other_model.id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    await expect_error(
        limited.models.list_models(v1.ListModelsRequest(folder_id=other.id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    await expect_error(
        limited.folders.create_folder(v1.CreateFolderRequest("new")),
        Status.PERMISSION_DENIED,
        "TOKEN_SCOPE_INSUFFICIENT",
    )
    made = await limited.models.create_model(v1.CreateModelRequest(vision.id, "second"))
    assert made.model.folder_id == vision.id
    all_folders = (await alice.folders.list_folders(v1.ListFoldersRequest())).folders
    assert {f.id for f in all_folders} == {vision.id, other.id}


async def test_a_folder_limited_token_gets_full_pages(api: Api) -> None:
    """Models of folders the token cannot see take no place in its pages: older ones than
    the one it sees do not leave it an empty page."""
    alice = await api.caller("alice")
    hidden = (await alice.folders.create_folder(v1.CreateFolderRequest("hidden"))).folder
    for name in ("first", "second", "third"):
        await alice.models.create_model(v1.CreateModelRequest(hidden.id, name))
    shown, shown_model = await folder_with_model(alice, "shown")
    limited = await token_of(api, alice, READ, shown.id)
    for request in (
        v1.ListModelsRequest(page_size=1),
        v1.ListModelsRequest(page_size=1, order_by="name"),
    ):
        page = await limited.models.list_models(request)
        assert ([m.id for m in page.models], page.next_page_token) == ([shown_model.id], "")


async def test_a_token_never_grants_more_than_its_owner_has_now(api: Api) -> None:
    """Bob's read-write token edits alice's folder while bob is editor there; once alice
    revokes bob's role, the token's next call is refused."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    folder, _ = await folder_with_model(alice, "shared")
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(folder.id, "bob", EDITOR))
    token = await token_of(api, bob, READ_WRITE)
    await token.models.create_model(v1.CreateModelRequest(folder.id, "by-token"))
    await expect_error(
        token.folders.grant_folder_access(v1.GrantFolderAccessRequest(folder.id, "bob", OWNER)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    await alice.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(folder.id, "bob"))
    await expect_error(
        token.folders.get_folder(v1.GetFolderRequest(folder.id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )


async def test_a_revoked_token_is_refused_on_every_method_at_once(
    app: Application, channel: Channel, api: Api
) -> None:
    """After RevokeAccessToken every authenticated method answers TOKEN_REVOKED to the token,
    although it was found standing a moment before; the owner's other token keeps working."""
    alice = await api.caller("alice")
    revoked = await token_of(api, alice, READ_WRITE, name="old")
    kept = await token_of(api, alice, READ, name="kept")
    await revoked.folders.list_folders(v1.ListFoldersRequest())
    listed = (await alice.auth.list_access_tokens(v1.ListAccessTokensRequest())).access_tokens
    old = next(t for t in listed if t.name == "old")
    await alice.auth.revoke_access_token(v1.RevokeAccessTokenRequest(old.id))
    answers = await refusals(app, channel, revoked.token)
    assert set(answers.values()) == {(Status.UNAUTHENTICATED, "TOKEN_REVOKED")}
    await kept.folders.list_folders(v1.ListFoldersRequest())
    await alice.auth.revoke_access_token(v1.RevokeAccessTokenRequest(old.id))
    names = [
        t.name
        for t in (await alice.auth.list_access_tokens(v1.ListAccessTokensRequest())).access_tokens
    ]
    assert names == ["kept"]


async def test_a_revocation_holds_on_another_server_process_sharing_the_database(
    settings: Settings,
) -> None:
    """A token another process found standing is refused there once its check interval has
    passed after the revocation (0 here: on the next call)."""
    every_call = replace(settings, token_check_interval=0)
    async with (
        build_application(settings) as first,
        channel_for(first) as first_channel,
        build_application(every_call) as second,
        channel_for(second) as second_channel,
    ):
        alice = await Api(first_channel).caller("alice")
        token = await token_of(Api(first_channel), alice, READ)
        elsewhere = Api(second_channel).as_token(alice.user, token.token)
        await elsewhere.folders.list_folders(v1.ListFoldersRequest())
        listed = await alice.auth.list_access_tokens(v1.ListAccessTokensRequest())
        await alice.auth.revoke_access_token(
            v1.RevokeAccessTokenRequest(listed.access_tokens[0].id)
        )
        await expect_error(
            elsewhere.folders.list_folders(v1.ListFoldersRequest()),
            Status.UNAUTHENTICATED,
            "TOKEN_REVOKED",
        )


async def test_tokens_of_other_users_cannot_be_revoked(api: Api) -> None:
    """Revoking another user's token id changes nothing: that token keeps working."""
    alice, mallory = await api.caller("alice"), await api.caller("mallory")
    token = await token_of(api, alice, READ)
    listed = (await alice.auth.list_access_tokens(v1.ListAccessTokensRequest())).access_tokens
    await mallory.auth.revoke_access_token(v1.RevokeAccessTokenRequest(listed[0].id))
    await token.folders.list_folders(v1.ListFoldersRequest())
    assert (await mallory.auth.list_access_tokens(v1.ListAccessTokensRequest())).access_tokens == []


async def test_creation_requires_a_name_scope_and_bounded_expiry(api: Api) -> None:
    """Each bad field is named; a folder the caller cannot see and a taken name are refused."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    hidden = (await bob.folders.create_folder(v1.CreateFolderRequest("hidden"))).folder
    cases = [
        (v1.CreateAccessTokenRequest("Bad Name", READ, [], DAY), "name"),
        (v1.CreateAccessTokenRequest("ci", v1.AccessTokenScope(0), [], DAY), "scope"),
        (v1.CreateAccessTokenRequest("ci", READ, [], 0), "ttl_seconds"),
        (v1.CreateAccessTokenRequest("ci", READ, [], 366 * DAY), "ttl_seconds"),
        (v1.CreateAccessTokenRequest("ci", READ, [f"f{n}" for n in range(101)], DAY), "folder_ids"),
    ]
    for request, field in cases:
        await expect_error(
            alice.auth.create_access_token(request),
            Status.INVALID_ARGUMENT,
            "INVALID_FIELD",
            field,
        )
    await expect_error(
        alice.auth.create_access_token(v1.CreateAccessTokenRequest("ci", READ, [hidden.id], DAY)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    await alice.auth.create_access_token(v1.CreateAccessTokenRequest("ci", READ, [], DAY))
    await expect_error(
        alice.auth.create_access_token(v1.CreateAccessTokenRequest("ci", READ, [], DAY)),
        Status.ALREADY_EXISTS,
        "ACCESS_TOKEN_NAME_TAKEN",
    )


async def test_an_expired_token_is_refused_as_expired(api: Api, settings: Settings) -> None:
    """A token past its expiry answers TOKEN_EXPIRED and is no longer listed."""
    alice = await api.caller("alice")
    token = await token_of(api, alice, READ)
    await sql(settings, "UPDATE access_tokens SET expires_us = 1")
    await expect_error(
        token.folders.list_folders(v1.ListFoldersRequest()),
        Status.UNAUTHENTICATED,
        "TOKEN_EXPIRED",
    )
    assert (await alice.auth.list_access_tokens(v1.ListAccessTokensRequest())).access_tokens == []


async def test_last_use_is_recorded_at_most_once_a_minute(api: Api, settings: Settings) -> None:
    """The first use sets the last-use time; uses within the next minute leave it as it is."""
    alice = await api.caller("alice")
    token = await token_of(api, alice, READ)
    listed = (await alice.auth.list_access_tokens(v1.ListAccessTokensRequest())).access_tokens
    assert not used(listed[0])
    await token.folders.list_folders(v1.ListFoldersRequest())
    [(first,)] = await sql(settings, "SELECT last_used_us FROM access_tokens")
    assert first is not None
    for _ in range(3):
        await token.folders.list_folders(v1.ListFoldersRequest())
    assert await sql(settings, "SELECT last_used_us FROM access_tokens") == [(first,)]
    listed = (await alice.auth.list_access_tokens(v1.ListAccessTokensRequest())).access_tokens
    assert used(listed[0])


async def test_changing_the_password_ends_sign_in_tokens_but_not_access_tokens(api: Api) -> None:
    """After ChangePassword the old sign-in tokens are TOKEN_REVOKED, the returned one works,
    only the new password signs in, and access tokens keep working."""
    alice = await api.caller("alice")
    other = (await api.auth.sign_in(v1.SignInRequest("alice", PASSWORD))).access_token
    machine = await token_of(api, alice, READ)
    await expect_error(
        alice.auth.change_password(v1.ChangePasswordRequest("wrong password", "new password")),
        Status.PERMISSION_DENIED,
        "INVALID_CREDENTIALS",
    )
    changed = await alice.auth.change_password(v1.ChangePasswordRequest(PASSWORD, "new password"))
    for token in (alice.token, other):
        await expect_error(
            api.as_token(alice.user, token).auth.get_current_user(v1.GetCurrentUserRequest()),
            Status.UNAUTHENTICATED,
            "TOKEN_REVOKED",
        )
    renewed = api.as_token(alice.user, changed.access_token)
    assert (await renewed.auth.get_current_user(v1.GetCurrentUserRequest())).user == alice.user
    await machine.folders.list_folders(v1.ListFoldersRequest())
    await expect_error(
        api.auth.sign_in(v1.SignInRequest("alice", PASSWORD)),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    await api.auth.sign_in(v1.SignInRequest("alice", "new password"))


async def test_signing_out_everywhere_ends_every_sign_in_token(api: Api) -> None:
    """Every sign-in token of the account is TOKEN_REVOKED afterwards; another account's and
    the account's access tokens keep working; a new sign-in works."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    other = (await api.auth.sign_in(v1.SignInRequest("alice", PASSWORD))).access_token
    machine = await token_of(api, alice, READ)
    await alice.auth.sign_out_everywhere(v1.SignOutEverywhereRequest())
    for token in (alice.token, other):
        await expect_error(
            api.as_token(alice.user, token).auth.get_current_user(v1.GetCurrentUserRequest()),
            Status.UNAUTHENTICATED,
            "TOKEN_REVOKED",
        )
    await bob.auth.get_current_user(v1.GetCurrentUserRequest())
    await machine.folders.list_folders(v1.ListFoldersRequest())
    await api.auth.sign_in(v1.SignInRequest("alice", PASSWORD))


async def test_deleting_an_account_is_refused_while_it_alone_owns_used_folders(
    api: Api, settings: Settings
) -> None:
    """The refusal names the folders alice alone owns that hold models or have members; once
    bob owns one and the other is deleted, the account goes: its tokens and password stop
    working, its empty folder goes, what it made in the shared folder stays, and its username
    is never given again."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    used, _ = await folder_with_model(alice, "used")
    shared = (await alice.folders.create_folder(v1.CreateFolderRequest("shared"))).folder
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(shared.id, "bob", VIEWER))
    empty = (await alice.folders.create_folder(v1.CreateFolderRequest("empty"))).folder
    machine = await token_of(api, alice, READ)
    await expect_error(
        alice.auth.delete_account(v1.DeleteAccountRequest("wrong password")),
        Status.PERMISSION_DENIED,
        "INVALID_CREDENTIALS",
    )
    error = await expect_error(
        alice.auth.delete_account(v1.DeleteAccountRequest(PASSWORD)),
        Status.FAILED_PRECONDITION,
        "ACCOUNT_OWNS_FOLDERS",
    )
    message = error.message or ""
    assert "'shared'" in message
    assert "'used'" in message
    assert "'empty'" not in message
    (info,) = [detail for detail in error.details or [] if isinstance(detail, ErrorInfo)]
    assert set(info.metadata["folder_ids"].split(",")) == {used.id, shared.id}
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(shared.id, "bob", OWNER))
    made = await alice.models.create_model(v1.CreateModelRequest(shared.id, "by-alice"))
    await alice.folders.delete_folder(v1.DeleteFolderRequest(used.id, force=True))
    await alice.auth.delete_account(v1.DeleteAccountRequest(PASSWORD))
    for caller in (alice, machine):
        await expect_error(
            caller.auth.get_current_user(v1.GetCurrentUserRequest()),
            Status.UNAUTHENTICATED,
            "TOKEN_REVOKED",
        )
    await expect_error(
        api.auth.sign_in(v1.SignInRequest("alice", PASSWORD)),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    await expect_error(
        api.auth.sign_up(v1.SignUpRequest("alice", PASSWORD)),
        Status.ALREADY_EXISTS,
        "USERNAME_TAKEN",
    )
    assert await sql(settings, "SELECT id FROM folders WHERE id = :id", id=empty.id) == []
    members = (await bob.folders.list_folder_access(v1.ListFolderAccessRequest(shared.id))).members
    assert [m.username for m in members] == ["bob"]
    kept = (await bob.models.get_model(v1.GetModelRequest(made.model.id))).model
    assert kept.creator_username == "alice"


async def test_an_id_is_malformed_only_when_empty_too_long_or_unprintable(api: Api) -> None:
    """INVALID_FIELD answers an id that is empty, longer than 64 characters or unprintable, as
    the contract defines a malformed id; any other id that names nothing gets the RPC's answer
    for a missing resource (here: revoking succeeds, a model is FOLDER_ACCESS_DENIED)."""
    alice = await api.caller("alice")
    for malformed in ("", "x" * 65, "tab\there"):
        await expect_error(
            alice.auth.revoke_access_token(v1.RevokeAccessTokenRequest(malformed)),
            Status.INVALID_ARGUMENT,
            "INVALID_FIELD",
            field="access_token_id",
        )
        await expect_error(
            alice.models.get_model(v1.GetModelRequest(malformed)),
            Status.INVALID_ARGUMENT,
            "INVALID_FIELD",
            field="model_id",
        )
    unknown = "x" * 64
    await alice.auth.revoke_access_token(v1.RevokeAccessTokenRequest(unknown))
    await expect_error(
        alice.models.get_model(v1.GetModelRequest(unknown)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
