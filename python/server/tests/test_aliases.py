"""SetModelAlias, DeleteModelAlias, ListModelAliases, and versions got and downloaded by alias."""

from __future__ import annotations

import asyncio
import os

import pytest
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_testing import EDITOR, VIEWER, Api, Caller, expect_error
from test_versions import model_of, upload

from modelcatalog import v1


async def set_alias(
    caller: Caller, model_id: str, name: str, version: int, expected: int | None = None
) -> v1.ModelAlias:
    request = v1.SetModelAliasRequest(model_id=model_id, name=name, version=version)
    if expected is not None:
        request.expected_version = expected
    return (await caller.models.set_model_alias(request)).alias


async def aliases_of(caller: Caller, model_id: str, page_size: int = 0) -> list[tuple[str, int]]:
    """Every alias of the model as (name, version), following the pages."""
    found: list[tuple[str, int]] = []
    token = ""
    while True:
        page = await caller.models.list_model_aliases(
            v1.ListModelAliasesRequest(model_id, page_size, token)
        )
        found += [(a.name, a.version) for a in page.aliases]
        if not page.next_page_token:
            return found
        token = page.next_page_token


def current_version(error: GRPCError) -> str:
    info = next(d for d in error.details or [] if isinstance(d, ErrorInfo))
    return info.metadata["current_version"]


async def model_with_versions(caller: Caller, count: int) -> tuple[v1.Model, list[bytes]]:
    model = await model_of(caller)
    contents = [os.urandom(1000 + n) for n in range(count)]
    for data in contents:
        await upload(caller, model.id, data)
    return model, contents


async def test_set_move_delete_and_list(api: Api) -> None:
    """An alias is created, moved, listed by name over pages and deleted; versions stay."""
    alice = await api.caller("alice")
    model, _ = await model_with_versions(alice, 2)
    created = await set_alias(alice, model.id, "production", 1)
    assert (created.model_id, created.name, created.version) == (model.id, "production", 1)
    assert created.updater_username == "alice"
    await set_alias(alice, model.id, "staging", 2)
    await set_alias(alice, model.id, "canary", 2)
    moved = await set_alias(alice, model.id, "production", 2)
    assert moved.version == 2
    assert moved.update_time >= created.update_time
    expected = [("canary", 2), ("production", 2), ("staging", 2)]
    assert await aliases_of(alice, model.id, page_size=1) == expected
    assert await aliases_of(alice, model.id) == expected
    await alice.models.delete_model_alias(v1.DeleteModelAliasRequest(model.id, "canary"))
    assert await aliases_of(alice, model.id) == [("production", 2), ("staging", 2)]
    versions = await alice.models.list_model_versions(v1.ListModelVersionsRequest(model.id))
    assert [v.version for v in versions.versions] == [2, 1]
    await expect_error(
        alice.models.delete_model_alias(v1.DeleteModelAliasRequest(model.id, "canary")),
        Status.NOT_FOUND,
        "ALIAS_NOT_FOUND",
    )


async def test_compare_and_swap_moves_only_from_the_expected_version(api: Api) -> None:
    """With expected_version the change happens only if the alias points there now; otherwise
    ABORTED (ALIAS_MOVED) says where it points, and nothing changes."""
    alice = await api.caller("alice")
    model, _ = await model_with_versions(alice, 3)
    assert (await set_alias(alice, model.id, "production", 1, expected=0)).version == 1
    error = await expect_error(
        set_alias(alice, model.id, "production", 3, expected=0), Status.ABORTED, "ALIAS_MOVED"
    )
    assert current_version(error) == "1"
    assert (await set_alias(alice, model.id, "production", 2, expected=1)).version == 2
    error = await expect_error(
        set_alias(alice, model.id, "production", 3, expected=1), Status.ABORTED, "ALIAS_MOVED"
    )
    assert current_version(error) == "2"
    error = await expect_error(
        set_alias(alice, model.id, "staging", 3, expected=2), Status.ABORTED, "ALIAS_MOVED"
    )
    assert current_version(error) == "0"
    error = await expect_error(
        alice.models.delete_model_alias(
            v1.DeleteModelAliasRequest(model.id, "production", expected_version=1)
        ),
        Status.ABORTED,
        "ALIAS_MOVED",
    )
    assert current_version(error) == "2"
    assert await aliases_of(alice, model.id) == [("production", 2)]
    await alice.models.delete_model_alias(
        v1.DeleteModelAliasRequest(model.id, "production", expected_version=2)
    )
    assert await aliases_of(alice, model.id) == []


async def test_of_two_concurrent_moves_with_the_same_expectation_one_wins(api: Api) -> None:
    """Two pipelines moving production from 1 at once: exactly one succeeds, the other is
    ABORTED and learns the winner's version."""
    alice = await api.caller("alice")
    model, _ = await model_with_versions(alice, 3)
    await set_alias(alice, model.id, "production", 1)
    outcomes = await asyncio.gather(
        set_alias(alice, model.id, "production", 2, expected=1),
        set_alias(alice, model.id, "production", 3, expected=1),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, v1.ModelAlias)]
    losers = [o for o in outcomes if isinstance(o, GRPCError)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    assert losers[0].status == Status.ABORTED
    assert current_version(losers[0]) == str(winners[0].version)
    assert await aliases_of(alice, model.id) == [("production", winners[0].version)]


async def test_get_and_download_by_alias_return_the_aliased_version(api: Api) -> None:
    """A viewer gets and downloads the version an alias points at, and follows its moves."""
    alice = await api.caller("alice")
    vic = await api.caller("vic")
    model, contents = await model_with_versions(alice, 2)
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "vic", VIEWER)
    )
    for number in (2, 1):
        await set_alias(alice, model.id, "production", number)
        got = await vic.models.get_model_version(
            v1.GetModelVersionRequest(model.id, alias="production")
        )
        assert got.version.version == number
        messages = [
            m
            async for m in vic.models.download_model_version(
                v1.DownloadModelVersionRequest(model.id, alias="production")
            )
        ]
        assert messages[0].version.version == number
        assert b"".join(m.chunk for m in messages[1:]) == contents[number - 1]
    await expect_error(
        vic.models.get_model_version(v1.GetModelVersionRequest(model.id, alias="staging")),
        Status.NOT_FOUND,
        "ALIAS_NOT_FOUND",
    )
    await expect_error(
        vic.models.get_model_version(v1.GetModelVersionRequest(model.id, 1, alias="production")),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "alias",
    )


async def test_viewers_read_aliases_and_only_editors_change_them(api: Api) -> None:
    """A viewer lists aliases but cannot set or delete one; an editor can; a stranger sees
    neither, with the same answer as for a model that does not exist."""
    alice = await api.caller("alice")
    vic = await api.caller("vic")
    eve = await api.caller("eve")
    mallory = await api.caller("mallory")
    model, _ = await model_with_versions(alice, 1)
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "vic", VIEWER)
    )
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "eve", EDITOR)
    )
    await expect_error(
        set_alias(vic, model.id, "production", 1), Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED"
    )
    assert (await set_alias(eve, model.id, "production", 1)).updater_username == "eve"
    assert await aliases_of(vic, model.id) == [("production", 1)]
    await expect_error(
        vic.models.delete_model_alias(v1.DeleteModelAliasRequest(model.id, "production")),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    for model_id in (model.id, "no-such-model"):
        await expect_error(
            aliases_of(mallory, model_id), Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED"
        )
        await expect_error(
            mallory.models.get_model_version(
                v1.GetModelVersionRequest(model_id, alias="production")
            ),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )


@pytest.mark.parametrize(
    "name", ["", "Production", "7", "0042", "-x", "_x", "a b", "ä", "a" * 64, "x/y", "a.b"]
)
async def test_invalid_alias_names_are_refused(api: Api, name: str) -> None:
    """Names outside 1-63 lowercase letters, digits, '-' and '_' (or digits only) are refused
    when setting, deleting and reading by alias."""
    alice = await api.caller("alice")
    model, _ = await model_with_versions(alice, 1)
    await expect_error(
        set_alias(alice, model.id, name, 1), Status.INVALID_ARGUMENT, "INVALID_FIELD", "name"
    )
    await expect_error(
        alice.models.delete_model_alias(v1.DeleteModelAliasRequest(model.id, name)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "name",
    )
    if name:
        await expect_error(
            alice.models.get_model_version(v1.GetModelVersionRequest(model.id, alias=name)),
            Status.INVALID_ARGUMENT,
            "INVALID_FIELD",
            "alias",
        )


async def test_longest_and_mixed_names_are_accepted(api: Api) -> None:
    """Names at the limits of the rule (63 characters, digits with a letter) are valid."""
    alice = await api.caller("alice")
    model, _ = await model_with_versions(alice, 1)
    for name in ("a" * 63, "v2", "2024-prod", "x_1"):
        assert (await set_alias(alice, model.id, name, 1)).name == name


async def test_an_alias_only_points_at_an_existing_version(api: Api) -> None:
    """Setting an alias to a missing version is NOT_FOUND (VERSION_NOT_FOUND), to version 0
    or with a negative expectation INVALID_ARGUMENT; nothing is created."""
    alice = await api.caller("alice")
    model, _ = await model_with_versions(alice, 1)
    await expect_error(
        set_alias(alice, model.id, "production", 2), Status.NOT_FOUND, "VERSION_NOT_FOUND"
    )
    await expect_error(
        set_alias(alice, model.id, "production", 0), Status.INVALID_ARGUMENT, "INVALID_FIELD"
    )
    await expect_error(
        set_alias(alice, model.id, "production", 1, expected=-1),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "expected_version",
    )
    await expect_error(
        alice.models.delete_model_alias(
            v1.DeleteModelAliasRequest(model.id, "production", expected_version=0)
        ),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "expected_version",
    )
    assert await aliases_of(alice, model.id) == []
