"""Deleting versions and models on the real server: numbers are never given again, shared
bytes stay while a version uses them, and the bytes of a deleted version leave the disk."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelcatalog import AsyncClient, FailedPrecondition, NotFound, PermissionDenied

from ..server_process import stored_blobs
from .conftest import RunningServer, wait_for

PASSWORD = "correct horse battery"
RECLAIM_SECONDS = 10.0


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[AsyncClient]:
    """A signed-in SDK client that trusts the server's certificate."""
    async with AsyncClient(server.address, ca_cert=server.ca_cert, timeout=30) as client:
        await client.sign_up("alice", PASSWORD)
        await client.sign_in("alice", PASSWORD)
        yield client


def blob_on_disk(server: RunningServer, data: bytes) -> bool:
    """Whether the server's blob store (its directory, or its S3 bucket on the scale-out
    leg) holds the bytes, under their SHA-256."""
    return hashlib.sha256(data).hexdigest() in stored_blobs(server)


async def test_a_deleted_versions_number_is_never_given_again(client: AsyncClient) -> None:
    """Delete version 2 of 2, upload again: the new version is 3; deleting 2 again is
    NotFound."""
    folder = await client.create_folder("vision")
    model = await client.create_model(folder.id, "resnet")
    for n in range(2):
        await client.upload(model.id, io.BytesIO(os.urandom(1000 + n)), file_name="w.bin")
    await client.delete_model_version(model.id, 2)
    assert (await client.get_model(model.id)).latest_version == 1
    again = await client.upload(model.id, io.BytesIO(b"retrained"), file_name="w.bin")
    assert again.version == 3
    assert [v.version async for v in client.list_model_versions(model.id)] == [3, 1]
    with pytest.raises(NotFound) as missing:
        await client.delete_model_version(model.id, 2)
    assert missing.value.reason == "VERSION_NOT_FOUND"


async def test_a_blob_shared_by_two_versions_survives_deleting_one(
    server: RunningServer, client: AsyncClient, tmp_path: Path
) -> None:
    """Two models hold the same bytes: after one version is deleted the other downloads them
    verified; after both are deleted the file leaves the disk."""
    folder = await client.create_folder("vision")
    first = await client.create_model(folder.id, "resnet")
    second = await client.create_model(folder.id, "resnet-copy")
    data = os.urandom(3 * (1 << 20) + 7)
    for model in (first, second):
        await client.upload(model.id, io.BytesIO(data), file_name="w.bin")
    await client.delete_model(first.id)
    with pytest.raises(PermissionDenied):
        await client.get_model(first.id)
    assert blob_on_disk(server, data)
    saved = await client.download(second.id, 1, tmp_path / "w.bin")
    assert saved.path.read_bytes() == data
    await client.delete_model_version(second.id, 1)
    assert wait_for(lambda: not blob_on_disk(server, data), RECLAIM_SECONDS), server.log()


async def test_the_bytes_of_a_deleted_version_are_reclaimed(
    server: RunningServer, client: AsyncClient
) -> None:
    """An aliased version is refused without force; deleted with force (and its alias), its
    file leaves the disk while the other version's stays."""
    folder = await client.create_folder("vision")
    model = await client.create_model(folder.id, "resnet")
    doomed, kept = os.urandom(200_000), os.urandom(200_001)
    await client.upload(model.id, io.BytesIO(doomed), file_name="w.bin")
    await client.upload(model.id, io.BytesIO(kept), file_name="w.bin")
    await client.set_model_alias(model.id, "production", 1)
    assert blob_on_disk(server, doomed)
    with pytest.raises(FailedPrecondition) as held:
        await client.delete_model_version(model.id, 1)
    assert held.value.reason == "VERSION_HAS_ALIASES"
    assert held.value.metadata["aliases"] == "production"
    deleted = await client.delete_model_version(model.id, 1, force=True)
    assert deleted.deleted_aliases == ["production"]
    assert wait_for(lambda: not blob_on_disk(server, doomed), RECLAIM_SECONDS), server.log()
    assert blob_on_disk(server, kept)


async def test_a_folder_is_deleted_with_its_models_only_when_forced(
    server: RunningServer, client: AsyncClient
) -> None:
    """A folder with a model is refused (FOLDER_NOT_EMPTY); forced, it goes with the model's
    bytes."""
    folder = await client.create_folder("vision")
    model = await client.create_model(folder.id, "resnet")
    data = os.urandom(50_000)
    await client.upload(model.id, io.BytesIO(data), file_name="w.bin")
    with pytest.raises(FailedPrecondition) as refused:
        await client.delete_folder(folder.id)
    assert refused.value.reason == "FOLDER_NOT_EMPTY"
    deleted = await client.delete_folder(folder.id, force=True)
    assert (deleted.deleted_models, deleted.deleted_versions) == (1, 1)
    assert [f async for f in client.list_folders()] == []
    assert wait_for(lambda: not blob_on_disk(server, data), RECLAIM_SECONDS), server.log()
