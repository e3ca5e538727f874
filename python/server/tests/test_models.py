"""Models: created by editors, visible to members of their folder only, paged in full pages."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from grpclib.const import Status
from server_testing import VIEWER, Api, Caller, expect_error

from modelcatalog import v1
from modelcatalog_server.domain.catalog import Catalog
from modelcatalog_server.domain.paging import PageTokens
from modelcatalog_server.domain.requests import RequestResults
from modelcatalog_server.storage.metadata import MetadataStore, Transaction

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


async def folder(owner: Caller, name: str) -> v1.Folder:
    return (await owner.folders.create_folder(v1.CreateFolderRequest(name))).folder


async def model(caller: Caller, folder_id: str, name: str) -> v1.Model:
    return (await caller.models.create_model(v1.CreateModelRequest(folder_id, name, "d"))).model


async def all_models(caller: Caller, folder_id: str = "", page_size: int = 0) -> list[v1.Model]:
    found: list[v1.Model] = []
    token = ""
    while True:
        page = await caller.models.list_models(v1.ListModelsRequest(folder_id, page_size, token))
        found += page.models
        token = page.next_page_token
        if not token:
            return found


async def test_create_and_get_a_model(api: Api) -> None:
    """A created model is returned by GetModel with its folder, creator and no version yet."""
    alice = await api.caller("alice")
    vision = await folder(alice, "vision")
    created = await model(alice, vision.id, "resnet")
    assert (created.folder_id, created.name, created.creator_username) == (
        vision.id,
        "resnet",
        "alice",
    )
    assert created.latest_version == 0
    assert (await alice.models.get_model(v1.GetModelRequest(created.id))).model == created


async def test_model_names_are_unique_within_a_folder(api: Api) -> None:
    """The same name twice in one folder is ALREADY_EXISTS; in another folder it is fine."""
    alice = await api.caller("alice")
    first, second = await folder(alice, "a"), await folder(alice, "b")
    await model(alice, first.id, "resnet")
    await expect_error(
        alice.models.create_model(v1.CreateModelRequest(first.id, "resnet")),
        Status.ALREADY_EXISTS,
        "MODEL_NAME_TAKEN",
    )
    await model(alice, second.id, "resnet")


@pytest.mark.parametrize(
    ("name", "description", "field"),
    [
        ("resnet\x1b[2J", "", "name"),
        ("\u202eresnet", "", "name"),
        ("resnet", "title \x1b]0;owned\x07", "description"),
        ("resnet", "override \u202ex", "description"),
    ],
)
async def test_control_and_bidi_characters_are_refused_in_models(
    api: Api, name: str, description: str, field: str
) -> None:
    """A model name or description with ESC or a bidi override is INVALID_ARGUMENT naming it."""
    alice = await api.caller("alice")
    vision = await folder(alice, "vision")
    await expect_error(
        alice.models.create_model(v1.CreateModelRequest(vision.id, name, description)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field=field,
    )


async def test_stranger_cannot_tell_a_hidden_model_from_a_missing_one(api: Api) -> None:
    """GetModel on another's model and on a missing id fail with the same status and message."""
    alice, mallory = await api.caller("alice"), await api.caller("mallory")
    hidden = await model(alice, (await folder(alice, "vision")).id, "resnet")
    denials = [
        await expect_error(
            mallory.models.get_model(v1.GetModelRequest(model_id)),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
        for model_id in (hidden.id, UNKNOWN_ID)
    ]
    assert denials[0].message == denials[1].message


async def test_list_only_authorized_models(api: Api) -> None:
    """User 1 sees their 2 models; user 2's folder appears only once user 2 shares it."""
    user1, user2 = await api.caller("user1"), await api.caller("user2")
    folder1 = await folder(user1, "one")
    await model(user1, folder1.id, "m1")
    await model(user1, folder1.id, "m2")
    folder2 = await folder(user2, "two")
    await model(user2, folder2.id, "m3")
    assert [m.name for m in await all_models(user1)] == ["m1", "m2"]
    await user2.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(folder2.id, "user1", VIEWER)
    )
    assert [m.name for m in await all_models(user1)] == ["m1", "m2", "m3"]
    assert [m.name for m in await all_models(user1, folder2.id)] == ["m3"]


async def test_model_pages_are_full_despite_hidden_models(api: Api) -> None:
    """Hidden models interleaved with visible ones never shorten a page."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    mine, theirs = await folder(alice, "mine"), await folder(bob, "theirs")
    expected = []
    for i in range(5):
        expected.append((await model(alice, mine.id, f"a{i}")).id)
        await model(bob, theirs.id, f"b{i}")
    first = await alice.models.list_models(v1.ListModelsRequest(page_size=2))
    assert len(first.models) == 2
    assert [m.id for m in await all_models(alice, page_size=2)] == expected


async def test_page_token_is_bound_to_the_folder_filter(api: Api) -> None:
    """A ListModels token cannot be replayed with another folder_id."""
    alice = await api.caller("alice")
    vision = await folder(alice, "vision")
    for i in range(3):
        await model(alice, vision.id, f"m{i}")
    token = (await alice.models.list_models(v1.ListModelsRequest(page_size=1))).next_page_token
    await expect_error(
        alice.models.list_models(v1.ListModelsRequest(vision.id, 1, token)),
        Status.INVALID_ARGUMENT,
        "PAGE_TOKEN_INVALID",
        field="page_token",
    )


async def test_model_rpcs_need_a_token(api: Api) -> None:
    """Every model RPC without a token is UNAUTHENTICATED before anything else is checked."""
    await expect_error(
        api.models.create_model(v1.CreateModelRequest(UNKNOWN_ID, "m")),
        Status.UNAUTHENTICATED,
        "TOKEN_MISSING",
    )
    await expect_error(
        api.models.list_models(v1.ListModelsRequest()), Status.UNAUTHENTICATED, "TOKEN_MISSING"
    )


async def test_empty_ids_are_invalid_arguments(api: Api) -> None:
    """An empty model_id or folder_id names the field instead of being treated as missing."""
    alice = await api.caller("alice")
    await expect_error(
        alice.models.get_model(v1.GetModelRequest("")),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="model_id",
    )
    await expect_error(
        alice.models.create_model(v1.CreateModelRequest("", "m")),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="folder_id",
    )


async def test_the_unfiltered_model_list_is_read_on_the_event_loops_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common list (no filter, default order), which walks an index, is read on the event
    loop's thread as a lookup by key is, sparing the trip to a pool thread; a filtered list,
    which may scan every model its caller sees, is read in a pool thread."""
    store = await MetadataStore.open_sqlite(tmp_path / "catalog.sqlite3")
    try:
        user = await store.write(lambda tx: tx.insert_user("alice", "not a real hash"))
        catalog = Catalog(store, PageTokens(b"k" * 32), RequestResults())
        vision = await catalog.create_folder(user.id, "vision", "")
        resnet = await catalog.create_model(user.id, vision.id, "resnet", "")
        threads: list[int] = []
        models_for = Transaction.models_for

        def recording_thread(tx: Transaction, *args: Any, **kwargs: Any) -> Any:
            threads.append(threading.get_ident())
            return models_for(tx, *args, **kwargs)

        monkeypatch.setattr(Transaction, "models_for", recording_thread)
        for folder_id in ("", vision.id):
            page = await catalog.list_models(user.id, folder_id, 0, "")
            assert [model.id for model in page.items] == [resnet.id]
        assert threads == [threading.get_ident()] * 2
        threads.clear()
        page = await catalog.list_models(user.id, "", 0, "", filter_text='name = "resnet"')
        assert [model.id for model in page.items] == [resnet.id]
        assert len(threads) == 1
        assert threads[0] != threading.get_ident()
    finally:
        await store.close()
