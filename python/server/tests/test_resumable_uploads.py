"""Resumable uploads: an upload with a request_id whose stream breaks keeps its bytes, says how
many (GetUploadStatus) and goes on from there, to the very version an unbroken upload stores."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.const import Status
from server_testing import Api, Caller, expect_error, poll_until

from modelcatalog import v1
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.errors import Aborted
from modelcatalog_server.domain.paging import PageTokens
from modelcatalog_server.domain.uploads import PendingUploads, UploadStatus
from modelcatalog_server.domain.versions import UploadHeader, UploadTrailer, Versions
from modelcatalog_server.storage.blobs import LocalBlobStore
from modelcatalog_server.storage.metadata import MetadataStore, Transaction, now_us

MiB = 1 << 20


def header_for(
    model_id: str, data: bytes, request_id: str, offset: int = 0
) -> v1.UploadModelVersionHeader:
    return v1.UploadModelVersionHeader(
        model_id=model_id,
        file_name="model.onnx",
        size_bytes=len(data),
        request_id=request_id,
        offset=offset,
    )


async def messages(
    header: v1.UploadModelVersionHeader,
    chunks: list[bytes],
    *,
    trailer: str | None = None,
    then_wait: asyncio.Event | None = None,
) -> AsyncIterator[v1.UploadModelVersionRequest]:
    """The header and ``chunks``; then the trailer, or (with ``then_wait``) ``then_wait`` is
    set and the stream stays open without another message."""
    yield v1.UploadModelVersionRequest(header=header)
    for chunk in chunks:
        yield v1.UploadModelVersionRequest(chunk=chunk)
    if then_wait is not None:
        then_wait.set()
        await asyncio.Event().wait()
    if trailer is not None:
        yield v1.UploadModelVersionRequest(trailer=v1.UploadModelVersionTrailer(sha256=trailer))


def split(data: bytes) -> list[bytes]:
    return [data[i : i + MiB] for i in range(0, len(data), MiB)]


async def model_of(caller: Caller) -> v1.Model:
    folder = (await caller.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    return (await caller.models.create_model(v1.CreateModelRequest(folder.id, "resnet"))).model


async def broken_upload(
    caller: Caller, header: v1.UploadModelVersionHeader, sent: bytes, settings: Settings
) -> None:
    """Sends ``header`` and ``sent``, then, once the server has written them, breaks the stream
    off (the client cancels it)."""
    all_sent = asyncio.Event()
    task = asyncio.create_task(
        caller.models.upload_model_version(messages(header, split(sent), then_wait=all_sent))
    )
    await all_sent.wait()
    assert await poll_until(
        lambda: sum(p.stat().st_size for p in temporary_files(settings)) >= len(sent)
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def held_bytes(
    caller: Caller, header: v1.UploadModelVersionHeader, at_least: int = 1
) -> v1.GetUploadStatusResponse:
    """GetUploadStatus, asked until the server has paused the upload with ``at_least`` bytes."""
    deadline = time.monotonic() + 10
    while True:
        status = await caller.models.get_upload_status(v1.GetUploadStatusRequest(header=header))
        if (not status.in_progress and status.offset >= at_least) or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.01)


def temporary_files(settings: Settings) -> list[Path]:
    return list((settings.data_dir / "blobs" / "tmp").iterdir())


async def test_a_broken_upload_resumes_to_the_version_an_unbroken_one_stores(
    api: Api, settings: Settings
) -> None:
    """Cut after 3 of 5 MiB, the upload is held with 3 MiB; resumed at that offset with the
    other 2 MiB and the whole file's SHA-256 it becomes version 1 with that digest and bytes,
    and GetUploadStatus then answers with that version."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(5 * MiB)
    request_id = str(uuid.uuid4())
    header = header_for(model.id, data, request_id)
    await broken_upload(alice, header, data[: 3 * MiB], settings)
    status = await held_bytes(alice, header)
    assert (status.offset, status.in_progress, status.version.version) == (3 * MiB, False, 0)
    assert status.expire_time.timestamp() > time.time() + 23 * 3600

    resumed = header_for(model.id, data, request_id, offset=status.offset)
    digest = hashlib.sha256(data).hexdigest()
    response = await alice.models.upload_model_version(
        messages(resumed, split(data[status.offset :]), trailer=digest)
    )
    assert (response.version.version, response.version.sha256) == (1, digest)
    assert response.version.size_bytes == len(data)
    downloaded = [
        m
        async for m in alice.models.download_model_version(
            v1.DownloadModelVersionRequest(model.id, 1)
        )
    ]
    assert b"".join(m.chunk for m in downloaded[1:]) == data
    after = await alice.models.get_upload_status(v1.GetUploadStatusRequest(header=header))
    assert (after.version.version, after.offset) == (1, 0)
    assert temporary_files(settings) == []


async def test_nothing_held_is_offset_zero(api: Api) -> None:
    """For a request id the server never saw, GetUploadStatus says 0 bytes, no stream, no
    version: the client starts from the first byte."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    header = header_for(model.id, b"x" * 10, str(uuid.uuid4()))
    status = await alice.models.get_upload_status(v1.GetUploadStatusRequest(header=header))
    assert (status.offset, status.in_progress, status.version.version) == (0, False, 0)


async def test_a_resume_at_another_offset_says_how_many_bytes_are_held(
    api: Api, settings: Settings
) -> None:
    """Resuming at an offset other than the bytes held is FAILED_PRECONDITION
    (UPLOAD_OFFSET_MISMATCH) with held_bytes; so is resuming an upload the server never held
    (held_bytes 0). The held bytes stay resumable."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(3 * MiB)
    request_id = str(uuid.uuid4())
    await broken_upload(alice, header_for(model.id, data, request_id), data[:MiB], settings)
    await held_bytes(alice, header_for(model.id, data, request_id))
    for request_id_used, offset, held in ((request_id, 2 * MiB, MiB), (str(uuid.uuid4()), 5, 0)):
        error = await expect_error(
            alice.models.upload_model_version(
                messages(header_for(model.id, data, request_id_used, offset), [data[offset:]])
            ),
            Status.FAILED_PRECONDITION,
            "UPLOAD_OFFSET_MISMATCH",
        )
        info = next(d for d in error.details or [] if isinstance(d, ErrorInfo))
        assert info.metadata["held_bytes"] == str(held)
    status = await held_bytes(alice, header_for(model.id, data, request_id))
    assert status.offset == MiB


async def test_a_resume_with_another_header_is_a_reused_request_id(
    api: Api, settings: Settings
) -> None:
    """Resuming, or asking the status, with the request id of an upload but another header
    (here another file name) is INVALID_ARGUMENT (REQUEST_ID_REUSED)."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(2 * MiB)
    request_id = str(uuid.uuid4())
    await broken_upload(alice, header_for(model.id, data, request_id), data[:MiB], settings)
    await held_bytes(alice, header_for(model.id, data, request_id))
    other = header_for(model.id, data, request_id, offset=MiB)
    other.file_name = "other.onnx"
    await expect_error(
        alice.models.upload_model_version(messages(other, [data[MiB:]])),
        Status.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
        field="header.request_id",
    )
    await expect_error(
        alice.models.get_upload_status(v1.GetUploadStatusRequest(header=other)),
        Status.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
        field="header.request_id",
    )


@pytest.mark.parametrize(
    ("request_id", "offset", "size"),
    [("", 5, 10), ("7d3a2c1e-0000-4000-8000-000000000000", 11, 10), ("", -1, 10)],
)
async def test_bad_offsets_are_refused_naming_the_field(
    api: Api, request_id: str, offset: int, size: int
) -> None:
    """An offset without a request id, beyond the declared size, or negative is INVALID_FIELD
    on header.offset."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    header = header_for(model.id, bytes(size), request_id, offset)
    await expect_error(
        alice.models.upload_model_version(messages(header, [b"x"])),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="header.offset",
    )


async def test_status_needs_a_request_id_and_an_editor(api: Api) -> None:
    """GetUploadStatus without a request id is INVALID_FIELD; by a user without a role in the
    folder, PERMISSION_DENIED."""
    alice, mallory = await api.caller("alice"), await api.caller("mallory")
    model = await model_of(alice)
    header = header_for(model.id, b"", "")
    await expect_error(
        alice.models.get_upload_status(v1.GetUploadStatusRequest(header=header)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="header.request_id",
    )
    header.request_id = str(uuid.uuid4())
    await expect_error(
        mallory.models.get_upload_status(v1.GetUploadStatusRequest(header=header)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )


async def test_a_second_stream_resuming_the_same_upload_is_aborted(
    api: Api, settings: Settings
) -> None:
    """While one stream resumes an upload, another resuming it too is ABORTED
    (UPLOAD_IN_PROGRESS) and GetUploadStatus says it is in progress; the first completes."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(3 * MiB)
    request_id = str(uuid.uuid4())
    await broken_upload(alice, header_for(model.id, data, request_id), data[:MiB], settings)
    await held_bytes(alice, header_for(model.id, data, request_id))
    resumed = header_for(model.id, data, request_id, offset=MiB)
    going_on, more = asyncio.Event(), asyncio.Event()

    async def first_stream() -> AsyncIterator[v1.UploadModelVersionRequest]:
        async for message in messages(resumed, [data[MiB : 2 * MiB]]):
            yield message
        going_on.set()
        await more.wait()
        yield v1.UploadModelVersionRequest(chunk=data[2 * MiB :])
        sha256 = hashlib.sha256(data).hexdigest()
        yield v1.UploadModelVersionRequest(trailer=v1.UploadModelVersionTrailer(sha256=sha256))

    first = asyncio.create_task(alice.models.upload_model_version(first_stream()))
    await going_on.wait()
    assert await poll_until(lambda: any(p.stat().st_size > MiB for p in temporary_files(settings)))
    await expect_error(
        alice.models.upload_model_version(messages(resumed, [data[MiB:]])),
        Status.ABORTED,
        "UPLOAD_IN_PROGRESS",
    )
    status = await alice.models.get_upload_status(v1.GetUploadStatusRequest(header=resumed))
    assert status.in_progress
    more.set()
    assert (await first).version.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_resumed_upload_with_damaged_bytes_stores_nothing_and_is_not_kept(
    api: Api, settings: Settings
) -> None:
    """A resumed upload whose whole-file digest does not match is DATA_LOSS and leaves nothing:
    no version, no bytes, and nothing to resume."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(2 * MiB)
    request_id = str(uuid.uuid4())
    header = header_for(model.id, data, request_id)
    await broken_upload(alice, header, data[:MiB], settings)
    await held_bytes(alice, header)
    await expect_error(
        alice.models.upload_model_version(
            messages(
                header_for(model.id, data, request_id, MiB),
                [bytes(MiB)],
                trailer=hashlib.sha256(data).hexdigest(),
            )
        ),
        Status.DATA_LOSS,
        "DIGEST_MISMATCH",
    )
    status = await alice.models.get_upload_status(v1.GetUploadStatusRequest(header=header))
    assert (status.offset, status.version.version) == (0, 0)
    assert temporary_files(settings) == []


async def test_a_broken_upload_without_a_request_id_is_not_kept(
    api: Api, settings: Settings
) -> None:
    """Without a request id a broken upload leaves nothing, as before resumable uploads."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(2 * MiB)
    await broken_upload(alice, header_for(model.id, data, ""), data[:MiB], settings)
    assert await poll_until(lambda: not temporary_files(settings))


# The domain, with its clock: expiry and the per-user cap


async def open_domain(tmp_path: Path) -> tuple[MetadataStore, str, str]:
    store = await MetadataStore.open_sqlite(tmp_path / "catalog.sqlite3")

    def create(tx: Transaction) -> tuple[str, str]:
        user = tx.insert_user("alice", "not a real hash")
        folder = tx.insert_folder(user, "vision", "")
        return user.id, tx.insert_model(folder, user, "resnet", "").id

    user_id, model_id = await store.write(create)
    return store, user_id, model_id


async def chunks_then_break(data: bytes) -> AsyncIterator[bytes | UploadTrailer]:
    """``data``, then the stream breaks (as a connection that drops)."""
    yield data
    raise ConnectionResetError("the client went away")


async def pause_upload(versions: Versions, user_id: str, header: UploadHeader) -> None:
    with pytest.raises(ConnectionResetError):
        await versions.upload(user_id, header, chunks_then_break(b"x" * 1000))


async def test_paused_uploads_expire_after_the_resume_period(tmp_path: Path) -> None:
    """A paused upload nobody resumes is kept through the resume period and removed by the
    first sweep after it, bytes and all."""
    store, user_id, model_id = await open_domain(tmp_path)
    try:
        blobs = LocalBlobStore(tmp_path / "blobs")
        clock = [now_us()]
        pending = PendingUploads(store, blobs, resume_seconds=3600, clock=lambda: clock[0])
        versions = Versions(store, blobs, PageTokens(b"k"), max_version_bytes=MiB, pending=pending)
        header = UploadHeader(model_id, "f.bin", request_id=str(uuid.uuid4()))
        await pause_upload(versions, user_id, header)
        assert len(list(blobs.temporary_directory.iterdir())) == 1
        clock[0] += 3599 * 1_000_000
        assert await pending.sweep() == 0
        assert await versions.upload_status(user_id, header) == UploadStatus(
            offset=1000, expires_us=clock[0] + 1_000_000
        )
        clock[0] += 2 * 1_000_000
        assert await pending.sweep() == 1
        assert list(blobs.temporary_directory.iterdir()) == []
        assert await versions.upload_status(user_id, header) == UploadStatus()
    finally:
        await store.close()


async def test_a_user_keeps_at_most_the_paused_uploads_allowed(tmp_path: Path) -> None:
    """With room for 2 paused uploads per user, pausing a third gives up the oldest one, whose
    bytes the next sweep removes; the two newest stay resumable."""
    store, user_id, model_id = await open_domain(tmp_path)
    try:
        blobs = LocalBlobStore(tmp_path / "blobs")
        clock = [now_us()]
        pending = PendingUploads(store, blobs, max_paused_per_user=2, clock=lambda: clock[0])
        versions = Versions(store, blobs, PageTokens(b"k"), max_version_bytes=MiB, pending=pending)
        headers = [UploadHeader(model_id, "f.bin", request_id=str(uuid.uuid4())) for _ in range(3)]
        for header in headers:
            await pause_upload(versions, user_id, header)
            clock[0] += 1_000_000
        assert await pending.sweep() == 1
        statuses = [await versions.upload_status(user_id, h) for h in headers]
        assert [s.offset for s in statuses if isinstance(s, UploadStatus)] == [0, 1000, 1000]
        assert len(list(blobs.temporary_directory.iterdir())) == 2
    finally:
        await store.close()


async def test_of_two_streams_resuming_one_paused_upload_one_wins(tmp_path: Path) -> None:
    """Two streams resuming the same paused upload at once: exactly one takes it, the other is
    ABORTED (UPLOAD_IN_PROGRESS) at once, and the winner stores the version."""
    store, user_id, model_id = await open_domain(tmp_path)
    try:
        blobs = LocalBlobStore(tmp_path / "blobs")
        versions = Versions(store, blobs, PageTokens(b"k"), max_version_bytes=MiB)
        header = UploadHeader(model_id, "f.bin", request_id=str(uuid.uuid4()))
        await pause_upload(versions, user_id, header)
        release = asyncio.Event()

        async def rest() -> AsyncIterator[bytes | UploadTrailer]:
            await release.wait()
            yield b"y" * 10

        resumed = replace(header, offset=1000)
        streams = [asyncio.create_task(versions.upload(user_id, resumed, rest())) for _ in range(2)]
        done, _ = await asyncio.wait(streams, return_when=asyncio.FIRST_COMPLETED)
        assert isinstance(done.pop().exception(), Aborted)
        release.set()
        (version,) = [await task for task in streams if not task.done() or not task.exception()]
        assert version.sha256 == hashlib.sha256(b"x" * 1000 + b"y" * 10).hexdigest()
    finally:
        await store.close()
