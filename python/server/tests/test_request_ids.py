"""Retry-safe mutations: a request_id makes a repeated create, upload or alias move count once."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import pytest
from grpclib.const import Status
from server_testing import Api, Caller, expect_error, sql
from test_aliases import model_with_versions, set_alias
from test_versions import blob_files, model_of, request_stream, split, storing, upload

from modelcatalog import v1
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.catalog import Catalog
from modelcatalog_server.domain.paging import PageTokens
from modelcatalog_server.domain.requests import RequestResults
from modelcatalog_server.storage.metadata import MetadataStore, Transaction, now_us


def new_request_id() -> str:
    return str(uuid.uuid4())


async def folder_count(caller: Caller) -> int:
    return len((await caller.folders.list_folders(v1.ListFoldersRequest())).folders)


async def test_a_repeated_create_returns_the_first_folder_and_model(api: Api) -> None:
    """CreateFolder and CreateModel sent twice with one request_id create one of each, and the
    repeat answers with what the first call made."""
    alice = await api.caller("alice")
    folder_request = v1.CreateFolderRequest("vision", "first", request_id=new_request_id())
    first = (await alice.folders.create_folder(folder_request)).folder
    again = (await alice.folders.create_folder(folder_request)).folder
    assert again.id == first.id
    assert await folder_count(alice) == 1
    model_request = v1.CreateModelRequest(first.id, "resnet", request_id=new_request_id())
    model = (await alice.models.create_model(model_request)).model
    assert (await alice.models.create_model(model_request)).model.id == model.id
    listed = await alice.models.list_models(v1.ListModelsRequest(folder_id=first.id))
    assert [m.id for m in listed.models] == [model.id]


async def test_without_a_request_id_a_repeat_is_a_new_request(api: Api) -> None:
    """Without a request_id nothing is remembered: the same create again is refused as a
    duplicate name, as before."""
    alice = await api.caller("alice")
    await alice.folders.create_folder(v1.CreateFolderRequest("vision"))
    await expect_error(
        alice.folders.create_folder(v1.CreateFolderRequest("vision")),
        Status.ALREADY_EXISTS,
        "FOLDER_NAME_TAKEN",
    )


async def test_a_request_id_reused_for_another_request_is_refused(api: Api) -> None:
    """The same request_id with other arguments, or for another RPC, is INVALID_ARGUMENT
    (REQUEST_ID_REUSED) and changes nothing."""
    alice = await api.caller("alice")
    request_id = new_request_id()
    await alice.folders.create_folder(v1.CreateFolderRequest("vision", request_id=request_id))
    await expect_error(
        alice.folders.create_folder(v1.CreateFolderRequest("nlp", request_id=request_id)),
        Status.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
        field="request_id",
    )
    folder = (await alice.folders.list_folders(v1.ListFoldersRequest())).folders[0]
    await expect_error(
        alice.models.create_model(v1.CreateModelRequest(folder.id, "x", request_id=request_id)),
        Status.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    assert await folder_count(alice) == 1


async def test_request_ids_belong_to_their_user(api: Api) -> None:
    """Another user's request with the same id is a request of its own."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    request_id = new_request_id()
    mine = await alice.folders.create_folder(
        v1.CreateFolderRequest("vision", request_id=request_id)
    )
    theirs = await bob.folders.create_folder(
        v1.CreateFolderRequest("vision", request_id=request_id)
    )
    assert mine.folder.id != theirs.folder.id


@pytest.mark.parametrize("request_id", ["42", "not-a-uuid", "x" * 100])
async def test_a_request_id_must_be_a_uuid(api: Api, request_id: str) -> None:
    """A request_id that is not a UUID is INVALID_ARGUMENT naming the field."""
    alice = await api.caller("alice")
    await expect_error(
        alice.folders.create_folder(v1.CreateFolderRequest("vision", request_id=request_id)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="request_id",
    )


async def test_copies_of_one_create_racing_each_other_make_one_model(api: Api) -> None:
    """Five copies of a CreateModel sent at once with one request_id create one model and all
    answer with it."""
    alice = await api.caller("alice")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    request = v1.CreateModelRequest(folder.id, "resnet", request_id=new_request_id())
    answers = await asyncio.gather(*(alice.models.create_model(request) for _ in range(5)))
    assert len({a.model.id for a in answers}) == 1
    listed = await alice.models.list_models(v1.ListModelsRequest(folder_id=folder.id))
    assert len(listed.models) == 1


async def test_a_repeated_upload_returns_the_first_version_without_its_bytes(
    api: Api, settings: Settings
) -> None:
    """An upload repeated with its request_id stores no second version; its answer comes from
    the header alone (here the repeat's bytes are cut short and still it succeeds)."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(3 << 20)
    request_id = new_request_id()
    first = await upload(alice, model.id, data, request_id=request_id)
    header = v1.UploadModelVersionHeader(
        model_id=model.id,
        file_name="model.onnx",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        request_id=request_id,
    )
    again = await alice.models.upload_model_version(request_stream(header, split(data)[:1]))
    assert again.version.version == first.version == 1
    listed = await alice.models.list_model_versions(v1.ListModelVersionsRequest(model.id))
    assert [v.version for v in listed.versions] == [1]
    assert (await sql(settings, "SELECT COUNT(*) FROM upload_sessions"))[0][0] == 0


async def test_a_repeat_after_its_result_was_deleted_makes_nothing_again(api: Api) -> None:
    """A create or upload repeated after what it made was deleted creates nothing anew and says
    that it is gone, with the statuses the contract lists for such a repeat."""
    alice = await api.caller("alice")
    folder_request = v1.CreateFolderRequest("vision", request_id=new_request_id())
    folder = (await alice.folders.create_folder(folder_request)).folder
    await alice.folders.delete_folder(v1.DeleteFolderRequest(folder.id))
    await expect_error(
        alice.folders.create_folder(folder_request),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    assert await folder_count(alice) == 0
    model = await model_of(alice)
    data = b"weights"
    request_id = new_request_id()
    stored = await upload(alice, model.id, data, request_id=request_id)
    await alice.models.delete_model_version(v1.DeleteModelVersionRequest(model.id, stored.version))
    await expect_error(
        upload(alice, model.id, data, request_id=request_id),
        Status.NOT_FOUND,
        "VERSION_NOT_FOUND",
    )
    listed = await alice.models.list_model_versions(v1.ListModelVersionsRequest(model.id))
    assert listed.versions == []


async def test_copies_of_one_upload_racing_each_other_store_one_version(
    api: Api, settings: Settings
) -> None:
    """Three copies of one upload at once, with one request_id, store one version; the
    others' bytes are not kept."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(2 << 20)
    request_id = new_request_id()
    versions = await asyncio.gather(
        *(upload(alice, model.id, data, request_id=request_id) for _ in range(3))
    )
    assert {v.version for v in versions} == {1}
    listed = await alice.models.list_model_versions(v1.ListModelVersionsRequest(model.id))
    assert len(listed.versions) == 1
    assert (await sql(settings, "SELECT COUNT(*) FROM upload_sessions"))[0][0] == 0
    if storing(settings):
        assert len(blob_files(settings)) == 1


async def test_a_repeated_alias_move_succeeds_after_the_first_moved_it(api: Api) -> None:
    """A compare-and-swap alias move repeated with its request_id (its answer was lost)
    succeeds again instead of failing because the alias no longer points where it expected."""
    alice = await api.caller("alice")
    model, _ = await model_with_versions(alice, 2)
    await set_alias(alice, model.id, "production", 1)
    move = v1.SetModelAliasRequest(
        model.id, "production", 2, expected_version=1, request_id=new_request_id()
    )
    assert (await alice.models.set_model_alias(move)).alias.version == 2
    assert (await alice.models.set_model_alias(move)).alias.version == 2
    without_id = v1.SetModelAliasRequest(model.id, "production", 2, expected_version=1)
    await expect_error(alice.models.set_model_alias(without_id), Status.ABORTED, "ALIAS_MOVED")


async def test_a_request_id_is_forgotten_after_the_retention_period(tmp_path: Path) -> None:
    """After the retention period a request id is a new request, and expired records are
    pruned as new ones are written."""
    clock = [now_us()]
    store = await MetadataStore.open_sqlite(tmp_path / "catalog.sqlite3")
    try:
        user = await store.write(lambda tx: tx.insert_user("alice", "not a real hash"))
        catalog = Catalog(
            store,
            PageTokens(b"k" * 32),
            RequestResults(retention_seconds=60, clock=lambda: clock[0]),
        )
        request_id = new_request_id()
        first = await catalog.create_folder(user.id, "vision", "", request_id)
        clock[0] += 59_000_000
        assert (await catalog.create_folder(user.id, "vision", "", request_id)).id == first.id
        clock[0] += 2_000_000
        later = await catalog.create_folder(user.id, "nlp", "", request_id)
        assert later.id != first.id

        def remembered(tx: Transaction) -> int:
            return len(tx.connection.exec_driver_sql("SELECT * FROM request_results").all())

        assert await store.read(remembered) == 1
    finally:
        await store.close()
