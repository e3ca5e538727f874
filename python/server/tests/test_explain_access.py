"""ExplainAccess: the role a user has in a folder or a model's folder, and the grant behind it."""

from __future__ import annotations

from grpclib.const import Status
from server_testing import EDITOR, OWNER, VIEWER, Api, Caller, expect_error

from modelcatalog import v1

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


async def shared_folder(api: Api) -> tuple[Caller, Caller, v1.Folder]:
    """alice's folder 'vision', in which she made bob an editor."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(folder.id, "bob", EDITOR))
    return alice, bob, folder


async def test_an_owner_learns_which_grant_gives_a_member_their_role(api: Api) -> None:
    """The owner asking about bob hears: editor, granted by alice, when; in words too."""
    alice, _bob, folder = await shared_folder(api)
    answer = await alice.folders.explain_access(
        v1.ExplainAccessRequest(folder_id=folder.id, username="bob")
    )
    assert (answer.folder_id, answer.username, answer.role) == (
        folder.id,
        "bob",
        v1.FolderRole.EDITOR,
    )
    assert (answer.grant.username, answer.grant.role, answer.grant.granted_by_username) == (
        "bob",
        v1.FolderRole.EDITOR,
        "alice",
    )
    assert answer.explanation.startswith(
        "bob is an editor of folder 'vision': granted by alice at "
    )


async def test_a_member_asks_about_themself_and_a_creator_is_told_they_created_it(
    api: Api,
) -> None:
    """Without a username the answer is about the caller; the creator owns by creating."""
    alice, bob, folder = await shared_folder(api)
    mine = await alice.folders.explain_access(v1.ExplainAccessRequest(folder_id=folder.id))
    assert (mine.username, mine.role, mine.grant.granted_by_username) == (
        "alice",
        v1.FolderRole.OWNER,
        "alice",
    )
    assert mine.explanation.startswith("alice is an owner of folder 'vision': they created it")
    bobs = await bob.folders.explain_access(
        v1.ExplainAccessRequest(folder_id=folder.id, username="bob")
    )
    assert bobs.role == v1.FolderRole.EDITOR


async def test_a_models_access_is_explained_by_its_folder(api: Api) -> None:
    """Asked about a model, the answer names the model's folder and the grant in it."""
    alice, bob, folder = await shared_folder(api)
    model = (await alice.models.create_model(v1.CreateModelRequest(folder.id, "resnet"))).model
    answer = await bob.folders.explain_access(v1.ExplainAccessRequest(model_id=model.id))
    assert (answer.folder_id, answer.username, answer.role) == (
        folder.id,
        "bob",
        v1.FolderRole.EDITOR,
    )


async def test_the_answer_changes_when_the_grant_is_revoked_or_replaced(api: Api) -> None:
    """A new grant is the one named; after revocation the user has no role and no grant."""
    alice, _bob, folder = await shared_folder(api)
    carol = await api.caller("carol")
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(folder.id, "carol", OWNER))
    await carol.folders.grant_folder_access(v1.GrantFolderAccessRequest(folder.id, "bob", VIEWER))
    request = v1.ExplainAccessRequest(folder_id=folder.id, username="bob")
    regranted = await alice.folders.explain_access(request)
    assert (regranted.role, regranted.grant.granted_by_username) == (
        v1.FolderRole.VIEWER,
        "carol",
    )
    await alice.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(folder.id, "bob"))
    revoked = await alice.folders.explain_access(request)
    assert revoked.role == v1.FolderRole.UNSPECIFIED
    assert not revoked.is_set("grant")
    assert revoked.explanation.startswith("bob has no role in folder 'vision'")


async def test_only_owners_explain_another_users_access(api: Api) -> None:
    """An editor asking about the owner is denied like a stranger; strangers learn nothing."""
    _alice, bob, folder = await shared_folder(api)
    mallory = await api.caller("mallory")
    await expect_error(
        bob.folders.explain_access(v1.ExplainAccessRequest(folder_id=folder.id, username="alice")),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    denials = [
        await expect_error(
            mallory.folders.explain_access(v1.ExplainAccessRequest(folder_id=folder_id)),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
        for folder_id in (folder.id, UNKNOWN_ID)
    ]
    assert denials[0].message == denials[1].message
    await expect_error(
        mallory.folders.explain_access(v1.ExplainAccessRequest(model_id=UNKNOWN_ID)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )


async def test_unknown_users_and_missing_resources_get_clear_errors(api: Api) -> None:
    """An owner naming nobody gets USER_NOT_FOUND; a request naming nothing is INVALID_FIELD."""
    alice, _bob, folder = await shared_folder(api)
    await expect_error(
        alice.folders.explain_access(
            v1.ExplainAccessRequest(folder_id=folder.id, username="ghost")
        ),
        Status.NOT_FOUND,
        "USER_NOT_FOUND",
    )
    await expect_error(
        alice.folders.explain_access(v1.ExplainAccessRequest(username="alice")),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="folder_id",
    )


async def test_the_member_list_says_who_granted_each_role(api: Api) -> None:
    """ListFolderAccess names each role's granter."""
    alice, _bob, folder = await shared_folder(api)
    members = (
        await alice.folders.list_folder_access(v1.ListFolderAccessRequest(folder.id))
    ).members
    assert [(m.username, m.granted_by_username) for m in members] == [
        ("alice", "alice"),
        ("bob", "alice"),
    ]


async def new_token(
    owner: Caller, name: str, scope: str, *folder_ids: str
) -> v1.CreateAccessTokenResponse:
    return await owner.auth.create_access_token(
        v1.CreateAccessTokenRequest(
            name, v1.AccessTokenScope.from_string(scope), list(folder_ids), ttl_seconds=3600
        )
    )


async def test_a_read_only_token_is_explained_as_a_viewer_whatever_its_owners_role(
    api: Api,
) -> None:
    """Asked about one of bob's tokens, or by the token itself, the role is capped by its scope
    and the token is named."""
    _alice, bob, folder = await shared_folder(api)
    made = await new_token(bob, "deploy", "READ")
    by_id = await bob.folders.explain_access(
        v1.ExplainAccessRequest(folder_id=folder.id, access_token_id=made.access_token.id)
    )
    assert (by_id.role, by_id.grant.role, by_id.access_token.name) == (
        v1.FolderRole.VIEWER,
        v1.FolderRole.EDITOR,
        "deploy",
    )
    assert by_id.explanation.endswith("'deploy' is read-only, so it acts as a viewer")
    as_token = api.as_token(bob.user, made.secret)
    itself = await as_token.folders.explain_access(v1.ExplainAccessRequest(folder_id=folder.id))
    assert (itself.role, itself.access_token.id) == (v1.FolderRole.VIEWER, made.access_token.id)


async def test_a_token_limited_to_other_folders_has_no_role_here(api: Api) -> None:
    """A token of bob's limited to his own folder has no access to alice's, though bob has."""
    _alice, bob, folder = await shared_folder(api)
    own = (await bob.folders.create_folder(v1.CreateFolderRequest("own"))).folder
    made = await new_token(bob, "ci", "READ_WRITE", own.id)
    answer = await bob.folders.explain_access(
        v1.ExplainAccessRequest(folder_id=folder.id, access_token_id=made.access_token.id)
    )
    assert (answer.role, answer.grant.role) == (v1.FolderRole.UNSPECIFIED, v1.FolderRole.EDITOR)
    assert answer.explanation.endswith("'ci' is limited to other folders, so it has no access here")
    in_own = await bob.folders.explain_access(
        v1.ExplainAccessRequest(folder_id=own.id, access_token_id=made.access_token.id)
    )
    assert in_own.role == v1.FolderRole.OWNER


async def test_only_the_owner_of_a_token_has_it_explained(api: Api) -> None:
    """Another user's token id is not found, and a token id goes with no other username."""
    alice, bob, folder = await shared_folder(api)
    made = await new_token(bob, "ci", "READ")
    await expect_error(
        alice.folders.explain_access(
            v1.ExplainAccessRequest(folder_id=folder.id, access_token_id=made.access_token.id)
        ),
        Status.NOT_FOUND,
        "ACCESS_TOKEN_NOT_FOUND",
    )
    await expect_error(
        alice.folders.explain_access(
            v1.ExplainAccessRequest(
                folder_id=folder.id, username="bob", access_token_id=made.access_token.id
            )
        ),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="access_token_id",
    )
