"""Folders, roles and sharing: who may see and change what."""

from __future__ import annotations

import asyncio

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_testing import EDITOR, OWNER, VIEWER, Api, Caller, expect_error

from modelcatalog import v1

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


async def folder(owner: Caller, name: str = "vision") -> v1.Folder:
    return (await owner.folders.create_folder(v1.CreateFolderRequest(name, "cats"))).folder


async def test_creator_owns_the_new_folder(api: Api) -> None:
    """The creator is the owner and the only member of a new folder."""
    alice = await api.caller("alice")
    created = await folder(alice)
    assert created.caller_role == v1.FolderRole.OWNER
    assert created.creator_username == "alice"
    got = (await alice.folders.get_folder(v1.GetFolderRequest(created.id))).folder
    assert got == created
    members = (
        await alice.folders.list_folder_access(v1.ListFolderAccessRequest(created.id))
    ).members
    assert [(m.username, m.role) for m in members] == [("alice", v1.FolderRole.OWNER)]


async def test_folder_names_are_unique_per_creator(api: Api) -> None:
    """The same creator cannot reuse a name; another user can."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    await folder(alice)
    await expect_error(
        alice.folders.create_folder(v1.CreateFolderRequest("vision")),
        Status.ALREADY_EXISTS,
        "FOLDER_NAME_TAKEN",
    )
    await folder(bob)


@pytest.mark.parametrize(
    ("name", "description", "field"),
    [
        ("", "", "name"),
        ("x" * 129, "", "name"),
        (" padded", "", "name"),
        ("tab\there", "", "name"),
        ("right\u202eto left", "", "name"),
        ("line\u2028break", "", "name"),
        ("ok", "d" * 4097, "description"),
        ("ok", "title \x1b]0;owned\x07", "description"),
        ("ok", "clipboard \x1b]52;c;Y3VybA==\x07", "description"),
        ("ok", "carriage\rreturn", "description"),
        ("ok", "del\x7f", "description"),
        ("ok", "c1 csi \x9b2J", "description"),
        ("ok", "isolate \u2066x\u2069", "description"),
        ("ok", "override \u202dx\u202c", "description"),
    ],
)
async def test_bad_folder_fields_are_named(
    api: Api, name: str, description: str, field: str
) -> None:
    """Bad names and descriptions (too long, controls, bidi overrides) name their field."""
    alice = await api.caller("alice")
    await expect_error(
        alice.folders.create_folder(v1.CreateFolderRequest(name, description)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field=field,
    )


async def test_descriptions_may_have_several_lines_and_any_script(api: Api) -> None:
    """Newlines, tabs, accents, right-to-left text and emoji are kept as sent."""
    alice = await api.caller("alice")
    description = (
        "Line one\n\tindented: Grüße, \u05e9\u05dc\u05d5\u05dd \u200fRTL mark\u200f, 模型 🚀"
    )
    created = (
        await alice.folders.create_folder(v1.CreateFolderRequest("multi", description))
    ).folder
    assert created.description == description


async def test_stranger_sees_the_same_denial_for_existing_and_missing_folders(api: Api) -> None:
    """GetFolder, CreateModel and ListModels on another's folder equal those on a missing id."""
    alice, mallory = await api.caller("alice"), await api.caller("mallory")
    existing = await folder(alice)
    for folder_id in (existing.id, UNKNOWN_ID):
        denials = [
            await expect_error(
                mallory.folders.get_folder(v1.GetFolderRequest(folder_id)),
                Status.PERMISSION_DENIED,
                "FOLDER_ACCESS_DENIED",
            ),
            await expect_error(
                mallory.models.create_model(v1.CreateModelRequest(folder_id, "m")),
                Status.PERMISSION_DENIED,
                "FOLDER_ACCESS_DENIED",
            ),
            await expect_error(
                mallory.models.list_models(v1.ListModelsRequest(folder_id=folder_id)),
                Status.PERMISSION_DENIED,
                "FOLDER_ACCESS_DENIED",
            ),
        ]
        messages = [denial.message for denial in denials]
        if folder_id == existing.id:
            existing_messages = messages
    assert messages == existing_messages


async def test_list_folders_shows_only_shared_folders(api: Api) -> None:
    """A user lists own folders and those shared with them, never others."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    mine = await folder(alice, "mine")
    theirs = await folder(bob, "theirs")
    await folder(bob, "private")
    await bob.folders.grant_folder_access(v1.GrantFolderAccessRequest(theirs.id, "alice", VIEWER))
    listed = (await alice.folders.list_folders(v1.ListFoldersRequest())).folders
    assert [(f.id, f.caller_role) for f in listed] == [
        (mine.id, v1.FolderRole.OWNER),
        (theirs.id, v1.FolderRole.VIEWER),
    ]


async def test_roles_decide_what_members_may_do(api: Api) -> None:
    """Viewers read; editors also create models; only owners grant and revoke."""
    alice = await api.caller("alice")
    viewer, editor = await api.caller("victor"), await api.caller("edith")
    shared = await folder(alice)
    for user, role in (("victor", VIEWER), ("edith", EDITOR)):
        await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(shared.id, user, role))
    await viewer.folders.get_folder(v1.GetFolderRequest(shared.id))
    await expect_error(
        viewer.models.create_model(v1.CreateModelRequest(shared.id, "m")),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    await editor.models.create_model(v1.CreateModelRequest(shared.id, "m"))
    for member in (viewer, editor):
        await expect_error(
            member.folders.grant_folder_access(
                v1.GrantFolderAccessRequest(shared.id, "victor", OWNER)
            ),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
        await expect_error(
            member.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(shared.id, "alice")),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
    members = (
        await viewer.folders.list_folder_access(v1.ListFolderAccessRequest(shared.id))
    ).members
    assert [(m.username, m.role) for m in members] == [
        ("alice", v1.FolderRole.OWNER),
        ("edith", v1.FolderRole.EDITOR),
        ("victor", v1.FolderRole.VIEWER),
    ]


async def test_grant_replaces_the_role_and_revoke_removes_access(api: Api) -> None:
    """A second grant changes the role; after revoke the folder is denied again."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    shared = await folder(alice)
    request = v1.GrantFolderAccessRequest(shared.id, "bob", VIEWER)
    await alice.folders.grant_folder_access(request)
    request.role = EDITOR
    member = (await alice.folders.grant_folder_access(request)).member
    assert (member.username, member.role) == ("bob", v1.FolderRole.EDITOR)
    got = (await bob.folders.get_folder(v1.GetFolderRequest(shared.id))).folder
    assert got.caller_role == v1.FolderRole.EDITOR
    await alice.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(shared.id, "bob"))
    await alice.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(shared.id, "bob"))
    await expect_error(
        bob.folders.get_folder(v1.GetFolderRequest(shared.id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )


async def test_any_member_can_leave_and_then_no_longer_sees_the_folder(api: Api) -> None:
    """A viewer, an editor and a second owner each revoke their own role and lose the folder."""
    alice = await api.caller("alice")
    shared = await folder(alice)
    for name, role in (("victor", VIEWER), ("edith", EDITOR), ("oscar", OWNER)):
        member = await api.caller(name)
        await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(shared.id, name, role))
        await member.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(shared.id, name))
        assert (await member.folders.list_folders(v1.ListFoldersRequest())).folders == []
        await expect_error(
            member.folders.get_folder(v1.GetFolderRequest(shared.id)),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
    members = await alice.folders.list_folder_access(v1.ListFolderAccessRequest(shared.id))
    assert [m.username for m in members.members] == ["alice"]


async def test_leaving_reveals_nothing_to_strangers(api: Api) -> None:
    """A stranger leaving a folder gets the same denial for an existing and a missing one."""
    alice, mallory = await api.caller("alice"), await api.caller("mallory")
    existing = await folder(alice)
    denials = [
        await expect_error(
            mallory.folders.revoke_folder_access(
                v1.RevokeFolderAccessRequest(folder_id, "mallory")
            ),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
        for folder_id in (existing.id, UNKNOWN_ID)
    ]
    assert denials[0].message == denials[1].message
    await alice.folders.get_folder(v1.GetFolderRequest(existing.id))


async def test_members_may_remove_only_themselves(api: Api) -> None:
    """An editor cannot revoke another member, not even one unknown to the server."""
    alice, edith = await api.caller("alice"), await api.caller("edith")
    await api.caller("victor")
    shared = await folder(alice)
    for name, role in (("edith", EDITOR), ("victor", VIEWER)):
        await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(shared.id, name, role))
    for target in ("victor", "ghost"):
        await expect_error(
            edith.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(shared.id, target)),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
    members = await alice.folders.list_folder_access(v1.ListFolderAccessRequest(shared.id))
    assert [m.username for m in members.members] == ["alice", "edith", "victor"]


async def test_grant_to_unknown_user_or_without_role_fails(api: Api) -> None:
    """An unknown username is NOT_FOUND; an unspecified or unknown role is INVALID_ARGUMENT."""
    alice = await api.caller("alice")
    shared = await folder(alice)
    await expect_error(
        alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(shared.id, "ghost", VIEWER)),
        Status.NOT_FOUND,
        "USER_NOT_FOUND",
    )
    for role in (v1.FolderRole.UNSPECIFIED, 9):
        await expect_error(
            alice.folders.grant_folder_access(
                v1.GrantFolderAccessRequest(shared.id, "alice", role)  # type: ignore[arg-type]
            ),
            Status.INVALID_ARGUMENT,
            "INVALID_FIELD",
            field="role",
        )


async def test_the_last_owner_cannot_leave_or_be_demoted(api: Api) -> None:
    """Removing or demoting the only owner is FAILED_PRECONDITION; with two owners it works."""
    alice = await api.caller("alice")
    await api.caller("bob")
    shared = await folder(alice)
    await expect_error(
        alice.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(shared.id, "alice")),
        Status.FAILED_PRECONDITION,
        "LAST_OWNER",
    )
    await expect_error(
        alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(shared.id, "alice", EDITOR)),
        Status.FAILED_PRECONDITION,
        "LAST_OWNER",
    )
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(shared.id, "bob", OWNER))
    await alice.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(shared.id, "alice"))
    await expect_error(
        alice.folders.get_folder(v1.GetFolderRequest(shared.id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )


async def test_owners_demoting_each_other_at_once_leave_an_owner(api: Api) -> None:
    """Two owners demote each other (and a third is granted and revoked) at the same moment,
    ten times over: every call succeeds or is LAST_OWNER, never INTERNAL, and the folder always
    keeps an owner. (On PostgreSQL this needs the folder's row lock.)"""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    await api.caller("carol")
    shared = await folder(alice)
    for _ in range(10):
        await alice.folders.grant_folder_access(
            v1.GrantFolderAccessRequest(shared.id, "bob", OWNER)
        )
        outcomes = await asyncio.gather(
            alice.folders.grant_folder_access(
                v1.GrantFolderAccessRequest(shared.id, "bob", VIEWER)
            ),
            bob.folders.grant_folder_access(
                v1.GrantFolderAccessRequest(shared.id, "alice", VIEWER)
            ),
            alice.folders.grant_folder_access(
                v1.GrantFolderAccessRequest(shared.id, "carol", EDITOR)
            ),
            bob.folders.revoke_folder_access(v1.RevokeFolderAccessRequest(shared.id, "carol")),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, GRPCError), outcome
                assert outcome.status in (
                    Status.FAILED_PRECONDITION,
                    Status.PERMISSION_DENIED,
                    Status.NOT_FOUND,
                ), outcome
        owners = []
        for caller in (alice, bob):
            try:
                members = await caller.folders.list_folder_access(
                    v1.ListFolderAccessRequest(shared.id)
                )
            except GRPCError:
                continue
            owners = [m.username for m in members.members if m.role == OWNER]
            break
        assert owners, "the folder lost its last owner"
        if "alice" not in owners:
            await bob.folders.grant_folder_access(
                v1.GrantFolderAccessRequest(shared.id, "alice", OWNER)
            )


async def test_folder_pages_are_full_and_complete(api: Api) -> None:
    """Paging through 7 folders 3 at a time yields 3, 3, 1, each exactly once, in order."""
    alice = await api.caller("alice")
    created = [(await folder(alice, f"f{i}")).id for i in range(7)]
    seen: list[list[str]] = []
    token = ""
    while True:
        page = await alice.folders.list_folders(v1.ListFoldersRequest(3, token))
        seen.append([f.id for f in page.folders])
        token = page.next_page_token
        if not token:
            break
    assert [len(ids) for ids in seen] == [3, 3, 1]
    assert [i for ids in seen for i in ids] == created


async def test_page_tokens_cannot_be_altered_or_reused_by_others(api: Api) -> None:
    """An altered token, or one replayed by another user, is INVALID_ARGUMENT (page_token)."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    for i in range(3):
        await folder(alice, f"f{i}")
    token = (await alice.folders.list_folders(v1.ListFoldersRequest(1))).next_page_token
    assert token
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for caller, page_token in ((alice, altered), (bob, token), (alice, "garbage")):
        await expect_error(
            caller.folders.list_folders(v1.ListFoldersRequest(1, page_token)),
            Status.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
            field="page_token",
        )
    await expect_error(
        alice.folders.list_folders(v1.ListFoldersRequest(-1)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="page_size",
    )
