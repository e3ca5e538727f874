"""Two separate server processes on one storage — on the scale-out leg PostgreSQL and S3, on
the embedded leg one SQLite file and one blob directory named by URL: what one stores the other
serves, their concurrent writes stay consistent, and neither loses or leaks the other's work.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from modelcatalog import (
    Aborted,
    AlreadyExists,
    AsyncClient,
    ModelCatalogError,
    PermissionDenied,
    v1,
)

from ..server_process import kill_during_upload, leftover_uploads, scaled_out, scaleout_storage
from .conftest import RunningServer, start_server, wait_for

PASSWORD = "correct horse battery"
MiB = 1 << 20


def shared_storage(tmp_path: Path) -> dict[str, str]:
    """The settings that put two servers on one storage."""
    if scaled_out():
        return scaleout_storage(tmp_path / "shared")
    shared = tmp_path / "shared"
    shared.mkdir()
    return {
        "MODELCATALOG_DATABASE_URL": f"sqlite:///{shared / 'catalog.sqlite3'}",
        "MODELCATALOG_BLOB_URL": str(shared / "blobs"),
    }


def start_on(
    tmp_path: Path, name: str, storage: dict[str, str], signing_key: Path, *args: str
) -> RunningServer:
    """A server in its own working directory on the shared ``storage``."""
    workdir = tmp_path / name
    workdir.mkdir(exist_ok=True)
    return start_server(workdir, *args, signing_key=signing_key, environment=storage)


@pytest.fixture
def pair(tmp_path: Path, signing_key: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two servers on one storage, each must exit cleanly afterwards."""
    storage = shared_storage(tmp_path)
    first = start_on(tmp_path, "a", storage, signing_key)
    second = start_on(tmp_path, "b", storage, signing_key)
    yield first, second
    assert first.stop() == 0, first.log()
    assert second.stop() == 0, second.log()


async def signed_in(server: RunningServer, username: str, *, sign_up: bool = True) -> AsyncClient:
    client = AsyncClient(server.address, ca_cert=server.ca_cert)
    if sign_up:
        await client.sign_up(username, PASSWORD)
    await client.sign_in(username, PASSWORD)
    return client


async def as_user(server: RunningServer, token: str | None) -> AsyncClient:
    return AsyncClient(server.address, ca_cert=server.ca_cert, token=token)


async def test_a_version_stored_through_one_server_downloads_identical_through_the_other(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path
) -> None:
    """Upload through one process, download through the other: the same bytes, verified."""
    first, second = pair
    data = os.urandom(3 * MiB + 17)
    (tmp_path / "model.bin").write_bytes(data)
    async with await signed_in(first, "alice") as alice_a:
        folder = await alice_a.create_folder("vision")
        model = await alice_a.create_model(folder.id, "resnet")
        await alice_a.upload(model.id, tmp_path / "model.bin")
        async with await as_user(second, alice_a.token) as alice_b:
            downloaded = await alice_b.download(model.id, 1, tmp_path / "copy.bin")
    assert downloaded.path.read_bytes() == data
    assert downloaded.version.sha256 == hashlib.sha256(data).hexdigest()


async def test_uploads_through_both_servers_at_once_get_every_number_once(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path
) -> None:
    """20 uploads to one model at once, spread over both processes, become versions 1 to 20."""
    first, second = pair
    files = []
    for number in range(20):
        path = tmp_path / f"v{number}.bin"
        path.write_bytes(os.urandom(64 * 1024 + number))
        files.append(path)
    async with await signed_in(first, "alice") as alice_a:
        folder = await alice_a.create_folder("vision")
        model = await alice_a.create_model(folder.id, "resnet")
        async with await as_user(second, alice_a.token) as alice_b:
            clients = [alice_a, alice_b]
            versions = await asyncio.gather(
                *(clients[i % 2].upload(model.id, path) for i, path in enumerate(files))
            )
            assert sorted(v.version for v in versions) == list(range(1, 21))
            listed = [v.version async for v in alice_b.list_model_versions(model.id)]
    assert sorted(listed) == list(range(1, 21))


async def test_membership_races_across_servers_always_leave_an_owner(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """Two owners on different processes demote each other while a third member is granted
    and removed, ten times: never INTERNAL, and the folder always keeps an owner."""
    first, second = pair
    async with (
        await signed_in(first, "alice") as alice,
        await signed_in(second, "bob") as bob,
        await signed_in(first, "carol") as _carol,
    ):
        folder = await alice.create_folder("shared")
        for _ in range(10):
            await alice.grant_folder_access(folder.id, "bob", "owner")
            outcomes = await asyncio.gather(
                alice.grant_folder_access(folder.id, "bob", "viewer"),
                bob.grant_folder_access(folder.id, "alice", "viewer"),
                alice.grant_folder_access(folder.id, "carol", "editor"),
                bob.revoke_folder_access(folder.id, "carol"),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    assert isinstance(outcome, ModelCatalogError), repr(outcome)
                    assert outcome.reason in ("LAST_OWNER", "FOLDER_ACCESS_DENIED"), outcome
            owners = await owners_seen_by(alice, folder.id) or await owners_seen_by(bob, folder.id)
            assert owners, "the folder lost its last owner"
            if "alice" not in owners:
                await bob.grant_folder_access(folder.id, "alice", "owner")


async def test_alias_moves_through_both_servers_at_once_have_one_winner(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path
) -> None:
    """Two pipelines on different processes promote "production" from the same version, ten
    times: exactly one wins each time, the other is Aborted and told the winner's version;
    a download by alias through either server returns the winner's bytes."""
    first, second = pair
    contents = [os.urandom(64 * 1024 + n) for n in range(3)]
    async with await signed_in(first, "alice") as alice_a:
        folder = await alice_a.create_folder("vision")
        model = await alice_a.create_model(folder.id, "resnet")
        for number, data in enumerate(contents, start=1):
            (tmp_path / f"v{number}.bin").write_bytes(data)
            await alice_a.upload(model.id, tmp_path / f"v{number}.bin")
        async with await as_user(second, alice_a.token) as alice_b:
            current = (await alice_a.set_model_alias(model.id, "production", 1)).version
            for attempt in range(10):
                outcomes = await asyncio.gather(
                    alice_a.set_model_alias(model.id, "production", 2, expected_version=current),
                    alice_b.set_model_alias(model.id, "production", 3, expected_version=current),
                    return_exceptions=True,
                )
                winners = [o for o in outcomes if isinstance(o, v1.ModelAlias)]
                losers = [o for o in outcomes if isinstance(o, Aborted)]
                assert len(winners) == 1, outcomes
                assert len(losers) == 1, outcomes
                current = winners[0].version
                assert losers[0].reason == "ALIAS_MOVED"
                assert losers[0].metadata["current_version"] == str(current)
                for side, client in (("a", alice_a), ("b", alice_b)):
                    saved = tmp_path / f"production-{attempt}-{side}.bin"
                    downloaded = await client.download(model.id, "production", saved)
                    assert downloaded.version.version == current
                    assert saved.read_bytes() == contents[current - 1]
                current = (await alice_a.set_model_alias(model.id, "production", 1)).version


async def test_a_retried_request_counts_once_through_either_server(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path
) -> None:
    """A create, an upload and an alias move sent again with their request_id, through the
    other process (as a retry after a lost answer may go), make one folder, one model and
    one version, and answer with them."""
    first, second = pair
    weights = tmp_path / "weights.bin"
    async with await signed_in(first, "alice") as alice_a:
        weights.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
        ids = [str(uuid.uuid4()) for _ in range(4)]
        async with await as_user(second, alice_a.token) as alice_b:
            folders = [
                await c.create_folder("vision", request_id=ids[0]) for c in (alice_a, alice_b)
            ]
            assert folders[0].id == folders[1].id
            models = [
                await c.create_model(folders[0].id, "resnet", request_id=ids[1])
                for c in (alice_a, alice_b)
            ]
            assert models[0].id == models[1].id
            model_id = models[0].id
            uploads = await asyncio.gather(
                alice_a.upload(model_id, weights, request_id=ids[2]),
                alice_b.upload(model_id, weights, request_id=ids[2]),
                alice_b.upload(model_id, weights, request_id=ids[2]),
            )
            assert {v.version for v in uploads} == {1}
            versions = [v async for v in alice_a.list_model_versions(model_id)]
            assert [v.version for v in versions] == [1]
            moves = [
                await c.set_model_alias(
                    model_id, "production", 1, expected_version=0, request_id=ids[3]
                )
                for c in (alice_a, alice_b)
            ]
            assert [m.version for m in moves] == [1, 1]
            assert [f.id async for f in alice_b.list_folders()] == [folders[0].id]


async def test_edits_through_both_servers_from_one_etag_have_one_winner(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path
) -> None:
    """Two clients on different processes label a version from the same etag, ten times:
    exactly one wins each time, the other is Aborted (ETAG_MISMATCH) and the version carries
    the winner's labels; a rename to a taken name is AlreadyExists; a viewer edits nothing."""
    first, second = pair
    (tmp_path / "weights.bin").write_bytes(os.urandom(4096))
    async with await signed_in(first, "alice") as alice_a, await signed_in(second, "vic") as vic:
        folder = await alice_a.create_folder("vision")
        model = await alice_a.create_model(folder.id, "resnet")
        await alice_a.create_model(folder.id, "vit")
        uploaded = await alice_a.upload(model.id, tmp_path / "weights.bin")
        await alice_a.grant_folder_access(folder.id, "vic", "viewer")
        async with await as_user(second, alice_a.token) as alice_b:
            etag = uploaded.etag
            for attempt in range(10):
                outcomes = await asyncio.gather(
                    alice_a.update_model_version(
                        model.id, 1, labels={"stage": f"a{attempt}"}, etag=etag
                    ),
                    alice_b.update_model_version(
                        model.id, 1, labels={"stage": f"b{attempt}"}, etag=etag
                    ),
                    return_exceptions=True,
                )
                winners = [o for o in outcomes if isinstance(o, v1.ModelVersion)]
                losers = [o for o in outcomes if isinstance(o, Aborted)]
                assert (len(winners), len(losers)) == (1, 1), outcomes
                assert losers[0].reason == "ETAG_MISMATCH"
                stored = await alice_b.get_model_version(model.id, 1)
                assert stored.labels == winners[0].labels
                assert (stored.etag, stored.sha256) == (winners[0].etag, uploaded.sha256)
                etag = stored.etag
            with pytest.raises(AlreadyExists) as taken:
                await alice_b.update_model(model.id, name="vit")
            assert taken.value.reason == "MODEL_NAME_TAKEN"
        for edit in (
            vic.update_folder(folder.id, name="mine"),
            vic.update_model(model.id, description="mine"),
            vic.update_model_version(model.id, 1, description="mine"),
        ):
            with pytest.raises(PermissionDenied):
                await edit
        assert (await alice_a.get_model(model.id)).name == "resnet"


async def owners_seen_by(client: AsyncClient, folder_id: str) -> set[str]:
    """The folder's owners, or nothing if ``client`` no longer has a role in it."""
    try:
        return {
            member.username
            async for member in client.list_folder_access(folder_id)
            if member.role == v1.FolderRole.OWNER
        }
    except PermissionDenied:
        return set()


async def test_a_server_killed_mid_upload_is_cleaned_up_by_the_other(
    tmp_path: Path, signing_key: Path
) -> None:
    """SIGKILL one process in the middle of an upload: the version it acknowledged before is
    intact through the other, no partial version shows, and once the grace period has passed
    the other has removed what the dead upload left (its multipart upload on S3)."""
    storage = shared_storage(tmp_path)
    # Each upload carries the deadline of the server running it (the killed one's: 1 s); the
    # other sweeps every third of its own grace period.
    first = start_on(tmp_path, "a", storage, signing_key, "--upload-grace-period", "1")
    second = start_on(tmp_path, "b", storage, signing_key, "--upload-grace-period", "1")
    try:
        data = os.urandom(2 * MiB)
        (tmp_path / "model.bin").write_bytes(data)
        async with await signed_in(first, "alice") as alice:
            folder = await alice.create_folder("vision")
            model = await alice.create_model(folder.id, "resnet")
            await alice.upload(model.id, tmp_path / "model.bin")
            token = alice.token
        await kill_during_upload(first, token, model.id)
        async with await as_user(second, token) as alice:
            assert [v.version async for v in alice.list_model_versions(model.id)] == [1]
            await alice.download(model.id, 1, tmp_path / "copy.bin")
        assert (tmp_path / "copy.bin").read_bytes() == data
        assert await asyncio.to_thread(
            wait_for, lambda: "cleaned up 1 abandoned upload(s)" in second.log()
        )
        assert leftover_uploads(second) == []
    finally:
        assert second.stop() == 0, second.log()


async def test_a_restarting_server_leaves_another_servers_upload_alone(
    tmp_path: Path, signing_key: Path
) -> None:
    """One process restarts while the other is in the middle of an upload: the upload goes on
    and becomes a version with exactly its bytes."""
    storage = shared_storage(tmp_path)
    first = start_on(tmp_path, "a", storage, signing_key)
    second = start_on(tmp_path, "b", storage, signing_key)
    try:
        chunks = [os.urandom(MiB) for _ in range(12)]
        async with await signed_in(second, "alice") as alice:
            folder = await alice.create_folder("vision")
            model = await alice.create_model(folder.id, "resnet")
            token = alice.token
        half_sent, restarted = asyncio.Event(), asyncio.Event()

        async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
            header = v1.UploadModelVersionHeader(model.id, "big.bin", size_bytes=12 * MiB)
            yield v1.UploadModelVersionRequest(header=header)
            for number, chunk in enumerate(chunks):
                if number == 6:
                    half_sent.set()
                    await restarted.wait()
                yield v1.UploadModelVersionRequest(chunk=chunk)

        channel = second.channel()
        stub = v1.ModelServiceStub(channel, metadata={"authorization": f"Bearer {token}"})
        uploading = asyncio.create_task(stub.upload_model_version(messages()))
        await half_sent.wait()
        assert first.stop() == 0, first.log()
        first = start_on(tmp_path, "a", storage, signing_key)
        restarted.set()
        version = (await uploading).version
        channel.close()
        async with await as_user(first, token) as alice:
            await alice.download(model.id, version.version, tmp_path / "copy.bin")
        assert (tmp_path / "copy.bin").read_bytes() == b"".join(chunks)
    finally:
        assert first.stop() == 0, first.log()
        assert second.stop() == 0, second.log()
