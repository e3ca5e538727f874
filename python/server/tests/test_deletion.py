"""DeleteModelVersion, DeleteModel, DeleteFolder: who may delete, what goes with it, numbers
never given again, and bytes reclaimed once no version uses them."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_testing import EDITOR, VIEWER, Api, Caller, expect_error, poll_until, sql
from test_aliases import aliases_of, set_alias
from test_versions import (
    Domain,
    MiB,
    blob_files,
    chunks_of,
    domain,  # noqa: F401 - the fixture, used by name
    download,
    model_of,
    split,
    storing,
    upload,
)

from modelcatalog import v1
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.deletion import Deletions
from modelcatalog_server.domain.paging import PageTokens
from modelcatalog_server.domain.uploads import PendingUploads
from modelcatalog_server.domain.versions import UploadHeader, Versions
from modelcatalog_server.storage.blobs import LocalBlobStore
from modelcatalog_server.storage.faults import StorageUnavailable


def error_metadata(error: GRPCError) -> dict[str, str]:
    info = next(d for d in error.details or [] if isinstance(d, ErrorInfo))
    return dict(info.metadata)


async def delete_version(
    caller: Caller, model_id: str, version: int, *, force: bool = False
) -> v1.DeleteModelVersionResponse:
    return await caller.models.delete_model_version(
        v1.DeleteModelVersionRequest(model_id, version, force)
    )


async def version_numbers(caller: Caller, model_id: str) -> list[int]:
    page = await caller.models.list_model_versions(v1.ListModelVersionsRequest(model_id))
    return [v.version for v in page.versions]


async def latest_version(caller: Caller, model_id: str) -> int:
    return (await caller.models.get_model(v1.GetModelRequest(model_id))).model.latest_version


def stored_digests(settings: Settings) -> set[str]:
    """The SHA-256 of every committed blob on disk."""
    return {p.name for p in (settings.data_dir / "blobs" / "sha256").rglob("*") if p.is_file()}


async def test_a_deleted_versions_number_is_never_given_again(api: Api) -> None:
    """Versions 1-3, delete 3 then 2: the next upload is 4, the model's latest follows the
    versions it has, and deleting 3 again is NOT_FOUND."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    for n in range(3):
        await upload(alice, model.id, os.urandom(100 + n))
    assert await delete_version(alice, model.id, 3) == v1.DeleteModelVersionResponse()
    await delete_version(alice, model.id, 2)
    assert await latest_version(alice, model.id) == 1
    assert (await upload(alice, model.id, b"next")).version == 4
    assert await version_numbers(alice, model.id) == [4, 1]
    assert await latest_version(alice, model.id) == 4
    await expect_error(delete_version(alice, model.id, 3), Status.NOT_FOUND, "VERSION_NOT_FOUND")
    await expect_error(
        alice.models.get_model_version(v1.GetModelVersionRequest(model.id, 3)),
        Status.NOT_FOUND,
        "VERSION_NOT_FOUND",
    )
    await delete_version(alice, model.id, 4)
    await delete_version(alice, model.id, 1)
    assert await latest_version(alice, model.id) == 0
    assert (await upload(alice, model.id, b"again")).version == 5


async def test_a_shared_blob_survives_until_its_last_version_is_deleted(
    api: Api, settings: Settings
) -> None:
    """Two versions (in two models) with the same bytes share one blob: deleting one keeps it
    and the other downloads intact; deleting the other removes the bytes from disk."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    other = (await alice.models.create_model(v1.CreateModelRequest(model.folder_id, "copy"))).model
    data, own = os.urandom(MiB + 5), os.urandom(1000)
    await upload(alice, model.id, data)
    await upload(alice, model.id, own)
    await upload(alice, other.id, data)
    digest, own_digest = hashlib.sha256(data).hexdigest(), hashlib.sha256(own).hexdigest()
    assert stored_digests(settings) == {digest, own_digest}
    await delete_version(alice, model.id, 1)
    await delete_version(alice, model.id, 2)
    assert stored_digests(settings) == {digest}
    assert (await download(alice, other.id, 1))[1] == data
    await delete_version(alice, other.id, 1)
    assert blob_files(settings) == []
    assert await sql(settings, "SELECT sha256 FROM blob_deletions") == []


async def test_a_version_an_alias_points_at_is_deleted_only_with_force(api: Api) -> None:
    """Deleting a version aliases point at is FAILED_PRECONDITION (VERSION_HAS_ALIASES) naming
    them, and changes nothing; with force the version and those aliases go, others stay."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    for n in range(2):
        await upload(alice, model.id, os.urandom(100 + n))
    await set_alias(alice, model.id, "staging", 1)
    await set_alias(alice, model.id, "production", 1)
    await set_alias(alice, model.id, "canary", 2)
    error = await expect_error(
        delete_version(alice, model.id, 1), Status.FAILED_PRECONDITION, "VERSION_HAS_ALIASES"
    )
    assert error_metadata(error)["aliases"] == "production,staging"
    assert await version_numbers(alice, model.id) == [2, 1]
    deleted = await delete_version(alice, model.id, 1, force=True)
    assert deleted.deleted_aliases == ["production", "staging"]
    assert await version_numbers(alice, model.id) == [2]
    assert await aliases_of(alice, model.id) == [("canary", 2)]


async def test_who_may_delete_what(api: Api) -> None:
    """Viewers delete nothing; editors delete versions but not models or folders; strangers
    are refused as if nothing existed; owners delete all three."""
    alice, bob, vic, eve = [await api.caller(name) for name in ("alice", "bob", "vic", "eve")]
    model = await model_of(alice)
    await upload(alice, model.id, b"weights")
    await upload(alice, model.id, b"more weights")
    for name, role in (("bob", EDITOR), ("vic", VIEWER)):
        await alice.folders.grant_folder_access(
            v1.GrantFolderAccessRequest(model.folder_id, name, role)
        )
    denied = (Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED")
    for caller in (vic, eve):
        await expect_error(delete_version(caller, model.id, 1), *denied)
    for caller in (bob, vic, eve):
        await expect_error(caller.models.delete_model(v1.DeleteModelRequest(model.id)), *denied)
        await expect_error(
            caller.folders.delete_folder(v1.DeleteFolderRequest(model.folder_id, force=True)),
            *denied,
        )
    assert await version_numbers(alice, model.id) == [2, 1]
    await delete_version(bob, model.id, 1)
    assert await version_numbers(alice, model.id) == [2]
    deleted = await alice.models.delete_model(v1.DeleteModelRequest(model.id))
    assert deleted.deleted_versions == 1
    await alice.folders.delete_folder(v1.DeleteFolderRequest(model.folder_id))


async def test_a_deleted_model_is_gone_with_its_versions_and_aliases(
    api: Api, settings: Settings
) -> None:
    """After DeleteModel the model is refused like one that never existed (deleting it again
    too), its bytes are gone, and a new model of the same name is another one, from 1."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    for n in range(3):
        await upload(alice, model.id, os.urandom(1000 + n))
    await set_alias(alice, model.id, "production", 2)
    deleted = await alice.models.delete_model(v1.DeleteModelRequest(model.id))
    assert deleted.deleted_versions == 3
    denied = (Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED")
    await expect_error(alice.models.get_model(v1.GetModelRequest(model.id)), *denied)
    await expect_error(alice.models.delete_model(v1.DeleteModelRequest(model.id)), *denied)
    await expect_error(upload(alice, model.id, b"late"), *denied)
    assert blob_files(settings) == []
    for table in ("model_versions", "model_aliases"):
        assert await sql(settings, f"SELECT * FROM {table}") == []
    again = (
        await alice.models.create_model(v1.CreateModelRequest(model.folder_id, "resnet"))
    ).model
    assert again.id != model.id
    assert (await upload(alice, again.id, b"fresh")).version == 1


async def test_a_folder_with_models_is_deleted_only_with_force(
    api: Api, settings: Settings
) -> None:
    """A folder holding models is FAILED_PRECONDITION (FOLDER_NOT_EMPTY, with the count) and
    stays; with force it goes with its models, versions, aliases, memberships and bytes."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    model = await model_of(alice)
    folder_id = model.folder_id
    second = (await alice.models.create_model(v1.CreateModelRequest(folder_id, "bert"))).model
    await upload(alice, model.id, os.urandom(2000))
    await upload(alice, model.id, os.urandom(2001))
    await upload(alice, second.id, os.urandom(2002))
    await set_alias(alice, model.id, "production", 1)
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(folder_id, "bob", VIEWER))
    error = await expect_error(
        alice.folders.delete_folder(v1.DeleteFolderRequest(folder_id)),
        Status.FAILED_PRECONDITION,
        "FOLDER_NOT_EMPTY",
    )
    assert error_metadata(error)["models"] == "2"
    assert await version_numbers(bob, model.id) == [2, 1]
    deleted = await alice.folders.delete_folder(v1.DeleteFolderRequest(folder_id, force=True))
    assert (deleted.deleted_models, deleted.deleted_versions) == (2, 3)
    for caller in (alice, bob):
        await expect_error(
            caller.folders.get_folder(v1.GetFolderRequest(folder_id)),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
        assert (await caller.folders.list_folders(v1.ListFoldersRequest())).folders == []
        assert (await caller.models.list_models(v1.ListModelsRequest())).models == []
    assert blob_files(settings) == []
    for table in ("folders", "folder_members", "models", "model_versions", "model_aliases"):
        assert await sql(settings, f"SELECT * FROM {table}") == [], table


async def test_an_empty_folder_is_deleted_without_force(api: Api) -> None:
    """An owner deletes a folder without models; its name is free again; deleting it again is
    PERMISSION_DENIED."""
    alice = await api.caller("alice")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    deleted = await alice.folders.delete_folder(v1.DeleteFolderRequest(folder.id))
    assert (deleted.deleted_models, deleted.deleted_versions) == (0, 0)
    await expect_error(
        alice.folders.delete_folder(v1.DeleteFolderRequest(folder.id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    again = (await alice.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    assert again.id != folder.id


async def test_bad_requests_name_the_field(api: Api) -> None:
    """An empty id or a version below 1 is INVALID_ARGUMENT naming the field."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    invalid = Status.INVALID_ARGUMENT, "INVALID_FIELD"
    await expect_error(delete_version(alice, model.id, 0), *invalid, field="version")
    await expect_error(delete_version(alice, "", 1), *invalid, field="model_id")
    await expect_error(
        alice.models.delete_model(v1.DeleteModelRequest("")), *invalid, field="model_id"
    )
    await expect_error(
        alice.folders.delete_folder(v1.DeleteFolderRequest("")), *invalid, field="folder_id"
    )


async def test_an_upload_to_a_model_deleted_meanwhile_stores_nothing(
    api: Api, settings: Settings
) -> None:
    """An upload whose model is deleted before it commits is refused and leaves no blob."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    all_sent, deleted = asyncio.Event(), asyncio.Event()

    async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
        yield v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader(model.id, "f.bin"))
        for chunk in split(os.urandom(2 * MiB)):
            yield v1.UploadModelVersionRequest(chunk=chunk)
        all_sent.set()
        await deleted.wait()

    upload_call = asyncio.create_task(alice.models.upload_model_version(messages()))
    await all_sent.wait()
    assert await poll_until(lambda: storing(settings)), "the upload was not stored"
    await alice.models.delete_model(v1.DeleteModelRequest(model.id))
    deleted.set()
    await expect_error(upload_call, Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED")
    assert blob_files(settings) == []


class UnreachableForDeletes(LocalBlobStore):
    """A local store that cannot delete committed blobs until ``reachable`` is set."""

    reachable = False

    async def delete(self, sha256: str) -> None:
        if not self.reachable:
            raise StorageUnavailable("the blob store does not answer")
        await super().delete(sha256)


async def test_bytes_the_store_cannot_delete_now_are_deleted_by_a_later_round(
    domain: Domain,  # noqa: F811 - the fixture
) -> None:
    """When the blob store fails right after a deletion committed, the version is gone, its
    blob stays marked, and any process's next clean-up round deletes the bytes."""
    blobs = UnreachableForDeletes(domain.blobs_dir)
    pending = PendingUploads(domain.store, blobs)
    versions = Versions(
        domain.store, blobs, PageTokens(b"k"), max_version_bytes=MiB, pending=pending
    )
    data = os.urandom(1000)
    await versions.upload(domain.user_id, UploadHeader(domain.model_id, "a.bin"), chunks_of(data))
    digest = hashlib.sha256(data).hexdigest()
    stored = domain.blobs_dir / "sha256" / digest[:2] / digest
    assert stored.exists()
    deletions = Deletions(domain.store, pending)
    assert await deletions.delete_version(domain.user_id, domain.model_id, 1, force=False) == []
    assert stored.exists()
    marked = await domain.store.read(lambda tx: tx.blobs_being_deleted(10))
    assert marked == [digest]
    blobs.reachable = True
    await PendingUploads(domain.store, LocalBlobStore(domain.blobs_dir)).sweep()
    assert not stored.exists()
    assert await domain.store.read(lambda tx: tx.blobs_being_deleted(10)) == []


async def test_uploads_racing_a_model_deletion_leave_nothing_behind(
    api: Api, settings: Settings
) -> None:
    """Uploads running while their model is deleted either commit first (and are deleted with
    it) or are refused; afterwards no version row and no byte is left."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    uploads = [upload(alice, model.id, os.urandom(256 * 1024 + n)) for n in range(6)]
    outcomes = await asyncio.gather(
        *uploads[:3],
        alice.models.delete_model(v1.DeleteModelRequest(model.id)),
        *uploads[3:],
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, GRPCError):
            assert outcome.status == Status.PERMISSION_DENIED, outcome
        else:
            assert isinstance(outcome, v1.ModelVersion | v1.DeleteModelResponse), outcome
    assert await poll_until(lambda: blob_files(settings) == [])
    assert await sql(settings, "SELECT * FROM model_versions") == []
    assert await sql(settings, "SELECT * FROM blob_deletions") == []


async def test_an_alias_set_racing_the_deletion_of_its_version_never_dangles(api: Api) -> None:
    """Setting an alias on a version while it is deleted: exactly one of the two succeeds."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"one")
    await upload(alice, model.id, b"two")
    alias, deletion = await asyncio.gather(
        set_alias(alice, model.id, "production", 2),
        delete_version(alice, model.id, 2),
        return_exceptions=True,
    )
    if isinstance(alias, GRPCError):
        assert alias.status == Status.NOT_FOUND
        assert isinstance(deletion, v1.DeleteModelVersionResponse)
        assert await aliases_of(alice, model.id) == []
    else:
        assert isinstance(deletion, GRPCError)
        assert deletion.status == Status.FAILED_PRECONDITION
        assert await aliases_of(alice, model.id) == [("production", 2)]
