"""The S3 blob store against moto's S3 server on loopback: content addresses, multipart uploads
that leave nothing behind when aborted (by the writer or by handle from another process),
ranged reads, and faults reported as StorageUnavailable.

The behaviour tests take the ``s3_store`` fixture; test_s3_seaweedfs.py runs them again against
a real SeaweedFS.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.session
import pytest
from moto.server import ThreadedMotoServer
from server_testing import poll_until, read_all, store_bytes

from modelcatalog_server.storage import s3
from modelcatalog_server.storage.blobs import READ_CHUNK_BYTES
from modelcatalog_server.storage.faults import StorageUnavailable
from modelcatalog_server.storage.locations import parse_s3_url
from modelcatalog_server.storage.s3 import (
    MIN_PART_BYTES,
    S3BlobStore,
    open_s3_blob_store,
    part_bytes_for,
)

BUCKET = "modelcatalog-tests"
#: The largest blob the test stores allow: parts of MIN_PART_BYTES.
MAX_BLOB_BYTES = 1 << 30
PART = MIN_PART_BYTES

# Where the stores are


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 on 127.0.0.1 (a free port) with the test bucket, for the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client: Any = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def use_s3_settings(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """The AWS environment of a store at ``endpoint``, and nothing from this machine's files or
    instance metadata."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


@pytest.fixture
async def s3_url(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix in the moto bucket, with the AWS settings pointing there."""
    use_s3_settings(monkeypatch, moto_endpoint)
    return f"s3://{BUCKET}/tests/{uuid.uuid4().hex}"


@pytest.fixture
async def s3_store(s3_url: str) -> AsyncIterator[S3BlobStore]:
    store = await open_s3_blob_store(s3_url, max_blob_bytes=MAX_BLOB_BYTES)
    yield store
    await store.close()


# Helpers


async def leftovers(store: S3BlobStore) -> tuple[list[str], list[str]]:
    """The object keys (below the prefix) and multipart uploads in progress under the prefix."""
    listed = await store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
    keys = [item["Key"].removeprefix(store.prefix) for item in listed.get("Contents", [])]
    uploads = await store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    pending = [item["Key"].removeprefix(store.prefix) for item in uploads.get("Uploads", [])]
    return sorted(keys), sorted(pending)


def megabytes(count: float) -> bytes:
    return os.urandom(int(count * (1 << 20)))


class HeldParts:
    """upload_part patched to record each part's size and, once ``hold`` is set, to wait until
    ``release`` is set."""

    def __init__(self, store: S3BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        self.hold = False
        self.release = asyncio.Event()
        real = store.client.upload_part

        async def upload_part(**kwargs: Any) -> Any:
            self.sizes.append(len(kwargs["Body"]))
            if self.hold:
                await self.release.wait()
            return await real(**kwargs)

        monkeypatch.setattr(store.client, "upload_part", upload_part)


# Behaviour (also run against SeaweedFS)


async def test_commit_stores_under_the_sha256(s3_store: S3BlobStore) -> None:
    """The digest is the SHA-256 of all parts, and the only object left is sha256/<digest>."""
    parts = [os.urandom(300_000) for _ in range(5)]
    digest = await store_bytes(s3_store, *parts)
    assert digest == hashlib.sha256(b"".join(parts)).hexdigest()
    assert await leftovers(s3_store) == ([f"sha256/{digest}"], [])


async def test_an_upload_of_several_parts_is_stored_whole(s3_store: S3BlobStore) -> None:
    """Bytes spanning several multipart parts read back identical, with nothing else left."""
    data = megabytes(2.5 * PART / (1 << 20))
    digest = await store_bytes(
        s3_store, *(data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20))
    )
    assert await read_all(s3_store, digest) == data
    assert await leftovers(s3_store) == ([f"sha256/{digest}"], [])


async def test_an_empty_upload_is_an_empty_blob(s3_store: S3BlobStore) -> None:
    """A file of no bytes is stored and reads back empty."""
    digest = await store_bytes(s3_store)
    assert digest == hashlib.sha256(b"").hexdigest()
    assert await read_all(s3_store, digest) == b""


async def test_reads_are_chunked_and_start_at_the_offset(s3_store: S3BlobStore) -> None:
    """Reading yields chunks of at most 1 MiB from the requested offset to the end."""
    data = os.urandom(2 * READ_CHUNK_BYTES + 5)
    digest = await store_bytes(s3_store, data)
    chunks = [chunk async for chunk in s3_store.read(digest)]
    assert [len(c) for c in chunks] == [READ_CHUNK_BYTES, READ_CHUNK_BYTES, 5]
    tail = await read_all(s3_store, digest, READ_CHUNK_BYTES + 1)
    assert tail == data[READ_CHUNK_BYTES + 1 :]
    assert await read_all(s3_store, digest, len(data)) == b""


@pytest.mark.parametrize("finish", [False, True], ids=["streaming", "finished"])
async def test_abort_leaves_nothing(s3_store: S3BlobStore, finish: bool) -> None:
    """An aborted upload, finished or not, leaves no object and no multipart upload (the
    second part's write waits until the first part is stored)."""
    writer = s3_store.writer()
    for _ in range(2 * PART // (1 << 20) + 1):
        await writer.write(megabytes(1))
    assert await leftovers(s3_store) == ([], ["uploads/" + writer.handle])
    if finish:
        await writer.finish()
    await writer.abort()
    await writer.abort()
    assert await leftovers(s3_store) == ([], [])


async def test_nothing_is_readable_before_commit(s3_store: S3BlobStore) -> None:
    """A finished but uncommitted blob cannot be read under its digest."""
    writer = s3_store.writer()
    await writer.write(b"pending")
    digest = await writer.finish()
    with pytest.raises(FileNotFoundError):
        await read_all(s3_store, digest)
    await writer.commit()
    assert await read_all(s3_store, digest) == b"pending"
    await writer.abort()


async def test_identical_content_is_kept_once(s3_store: S3BlobStore) -> None:
    """Committing the same bytes again keeps one object and no upload."""
    first = await store_bytes(s3_store, b"same bytes")
    second = await store_bytes(s3_store, b"same ", b"bytes")
    assert first == second
    assert await leftovers(s3_store) == ([f"sha256/{first}"], [])


async def test_concurrent_uploads_of_the_same_content_all_commit(s3_store: S3BlobStore) -> None:
    """Several uploads of identical bytes at once all succeed and leave one blob."""
    data = megabytes(PART / (1 << 20) + 1)
    digests = await asyncio.gather(*(store_bytes(s3_store, data) for _ in range(4)))
    assert set(digests) == {hashlib.sha256(data).hexdigest()}
    assert await read_all(s3_store, digests[0]) == data
    assert await leftovers(s3_store) == ([f"sha256/{digests[0]}"], [])


@pytest.mark.parametrize("finish", [False, True], ids=["streaming", "finished"])
async def test_another_store_discards_an_upload_by_its_handle(s3_url: str, finish: bool) -> None:
    """The bytes of an upload left behind (its process died) — a multipart upload in progress
    or a finished object — are removed by another store through the handle; twice is no error."""
    interrupted = await open_s3_blob_store(s3_url, max_blob_bytes=MAX_BLOB_BYTES)
    writer = interrupted.writer()
    for _ in range(PART // (1 << 20) + 1):
        await writer.write(megabytes(1))
    if finish:
        await writer.finish()
    else:
        await writer.write(megabytes(PART / (1 << 20)))  # waits until the first part is sent
    assert await leftovers(interrupted) != ([], [])
    survivor = await open_s3_blob_store(s3_url, max_blob_bytes=MAX_BLOB_BYTES)
    await survivor.discard(writer.handle)
    await survivor.discard(writer.handle)
    assert await leftovers(survivor) == ([], [])
    await survivor.close()
    await interrupted.close()


@pytest.mark.parametrize(
    "handle",
    ["../sha256", "x", "0" * 31, "0" * 33, "A" * 32, "0" * 32 + ".part", "/etc/passwd", ""],
)
async def test_discard_refuses_what_no_writer_named(s3_store: S3BlobStore, handle: str) -> None:
    """A handle that is not one a writer makes never becomes a key."""
    with pytest.raises(ValueError, match="not a handle"):
        await s3_store.discard(handle)


async def test_a_reading_of_a_missing_blob_is_file_not_found(s3_store: S3BlobStore) -> None:
    """A blob that is not there reads as a missing file (the domain's BLOB_DAMAGED)."""
    with pytest.raises(FileNotFoundError):
        await read_all(s3_store, hashlib.sha256(b"never stored").hexdigest(), 3)


async def test_delete_removes_a_committed_blob(s3_store: S3BlobStore) -> None:
    """delete removes the blob and tolerates one that is already gone."""
    digest = await store_bytes(s3_store, b"to remove")
    await s3_store.delete(digest)
    await s3_store.delete(digest)
    assert await leftovers(s3_store) == ([], [])


async def test_writable_check_passes_and_leaves_nothing(s3_store: S3BlobStore) -> None:
    """On a writable bucket the probe succeeds and removes its object."""
    await s3_store.check_writable()
    assert await leftovers(s3_store) == ([], [])


@pytest.mark.parametrize("held_parts", [0.5, 2.5])
async def test_a_paused_upload_resumes_by_its_handle_in_another_store(
    s3_store: S3BlobStore, s3_url: str, held_parts: float
) -> None:
    """Paused within its first part or after two and a half, an upload's bytes are one object;
    another store resumes it by its handle (whole parts copied inside the store, the rest sent
    again), appends the rest, and the blob is the whole file, with nothing else left."""
    data = megabytes(4 * PART / (1 << 20))
    held = int(held_parts * PART)
    writer = s3_store.writer()
    for start in range(0, held, 1 << 20):
        await writer.write(data[start : min(start + (1 << 20), held)])
    assert await writer.pause() == held
    assert await leftovers(s3_store) == ([f"uploads/{writer.handle}"], [])
    other = await open_s3_blob_store(s3_url, max_blob_bytes=MAX_BLOB_BYTES)
    try:
        resumed = await other.resume(writer.handle, held)
        for start in range(held, len(data), 1 << 20):
            await resumed.write(data[start : start + (1 << 20)])
        digest = await resumed.finish()
        await resumed.commit()
    finally:
        await other.close()
    assert digest == hashlib.sha256(data).hexdigest()
    assert await read_all(s3_store, digest) == data
    assert await leftovers(s3_store) == ([f"sha256/{digest}"], [])


async def test_resuming_with_another_size_than_held_is_file_not_found(
    s3_store: S3BlobStore,
) -> None:
    """A paused upload resumed with another size than it holds, or one that is gone, is
    FileNotFoundError; the paused bytes stay until discarded."""
    writer = s3_store.writer()
    await writer.write(b"x" * 100)
    await writer.pause()
    with pytest.raises(FileNotFoundError):
        await s3_store.resume(writer.handle, 99)
    assert await leftovers(s3_store) == ([f"uploads/{writer.handle}"], [])
    await s3_store.discard(writer.handle)
    with pytest.raises(FileNotFoundError):
        await s3_store.resume(writer.handle, 100)


BEHAVIOUR_TESTS = [
    test_a_paused_upload_resumes_by_its_handle_in_another_store,
    test_resuming_with_another_size_than_held_is_file_not_found,
    test_commit_stores_under_the_sha256,
    test_an_upload_of_several_parts_is_stored_whole,
    test_an_empty_upload_is_an_empty_blob,
    test_reads_are_chunked_and_start_at_the_offset,
    test_abort_leaves_nothing,
    test_nothing_is_readable_before_commit,
    test_identical_content_is_kept_once,
    test_concurrent_uploads_of_the_same_content_all_commit,
    test_another_store_discards_an_upload_by_its_handle,
    test_a_reading_of_a_missing_blob_is_file_not_found,
    test_delete_removes_a_committed_blob,
    test_writable_check_passes_and_leaves_nothing,
]


# Streaming: parts, memory and cancellation (moto only)


async def test_parts_are_sent_one_while_the_next_is_gathered(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write returns while a part is being sent; the next full part waits for it, so an upload
    holds about two parts however fast its client sends; parts are at least PART bytes."""
    held = HeldParts(s3_store, monkeypatch)
    held.hold = True
    writer = s3_store.writer()
    data = megabytes(2 * PART / (1 << 20) + 1)
    chunks = [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
    per_part = PART // (1 << 20)
    for chunk in chunks[:per_part]:
        await asyncio.wait_for(writer.write(chunk), timeout=5)
    assert await poll_until(lambda: held.sizes == [PART])
    for chunk in chunks[per_part : 2 * per_part - 1]:
        await asyncio.wait_for(writer.write(chunk), timeout=5)
    blocked = asyncio.ensure_future(writer.write(chunks[2 * per_part - 1]))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not blocked.done()
    held.release.set()
    await blocked
    for chunk in chunks[2 * per_part :]:
        await writer.write(chunk)
    digest = await writer.finish()
    assert held.sizes == [PART, PART, 1 << 20]
    assert digest == hashlib.sha256(data).hexdigest()
    await writer.commit()
    await writer.abort()
    assert await read_all(s3_store, digest) == data


async def test_a_cancelled_upload_aborts_its_multipart_upload(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while a part is on its way: abort stops it and leaves no multipart upload."""
    held = HeldParts(s3_store, monkeypatch)
    held.hold = True
    writer = s3_store.writer()

    async def upload() -> None:
        for _ in range(3 * PART // (1 << 20)):
            await writer.write(megabytes(1))

    task = asyncio.ensure_future(upload())
    assert await poll_until(lambda: len(held.sizes) == 1)
    assert await poll_until(lambda: writer.size >= 2 * PART)  # blocked behind the held part
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()
    assert await leftovers(s3_store) == ([], [])


async def test_an_abort_cancelled_again_still_cleans_up(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clean-up of an aborted upload finishes even when the aborting task is cancelled."""
    writer = s3_store.writer()
    for _ in range(PART // (1 << 20) + 1):
        await writer.write(megabytes(1))
    await writer.finish()
    aborting = asyncio.ensure_future(writer.abort())
    await asyncio.sleep(0)
    aborting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await aborting
    await s3_store.close()  # waits for the clean-up
    store = await open_s3_blob_store(
        f"s3://{s3_store.bucket}/{s3_store.prefix}", max_blob_bytes=MAX_BLOB_BYTES
    )
    assert await leftovers(store) == ([], [])
    await store.close()


async def test_blobs_above_the_copy_object_limit_are_copied_in_parts(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above CopyObject's limit the commit copies with UploadPartCopy, whole and in order."""
    monkeypatch.setattr(s3, "MAX_COPY_OBJECT_BYTES", 1 << 20)
    monkeypatch.setattr(s3, "COPY_PART_BYTES", 5 << 20)
    copied: list[str] = []
    real = s3_store.client.upload_part_copy

    async def upload_part_copy(**kwargs: Any) -> Any:
        copied.append(kwargs["CopySourceRange"])
        return await real(**kwargs)

    monkeypatch.setattr(s3_store.client, "upload_part_copy", upload_part_copy)
    data = megabytes(12)
    digest = await store_bytes(s3_store, data)
    size = len(data)
    mib5 = 5 << 20
    assert sorted(copied) == sorted(
        [f"bytes=0-{mib5 - 1}", f"bytes={mib5}-{2 * mib5 - 1}", f"bytes={2 * mib5}-{size - 1}"]
    )
    assert await read_all(s3_store, digest) == data
    assert await leftovers(s3_store) == ([f"sha256/{digest}"], [])


async def test_a_read_resumes_where_a_broken_connection_stopped(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that breaks mid-body is replaced by a ranged GET from the bytes already
    sent on: the download is complete and in order."""
    data = os.urandom(3 * READ_CHUNK_BYTES)
    digest = await store_bytes(s3_store, data)
    real = s3._read_block
    calls = 0

    async def breaking_once(body: Any) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 2:
            await body.read(1000)
            raise botocore.exceptions.ResponseStreamingError(error="connection reset")
        return await real(body)

    monkeypatch.setattr(s3, "_read_block", breaking_once)
    assert await read_all(s3_store, digest) == data
    assert calls > 4


async def test_the_next_block_is_read_while_one_is_sent_and_no_more(
    s3_store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the consumer handles a block the next one is read, but never a second one ahead."""
    data = os.urandom(4 * READ_CHUNK_BYTES)
    digest = await store_bytes(s3_store, data)
    real = s3._read_block
    started = 0

    async def counted(body: Any) -> bytes:
        nonlocal started
        started += 1
        return await real(body)

    monkeypatch.setattr(s3, "_read_block", counted)
    async with aclosing(s3_store.read(digest)) as blocks:
        first = await anext(blocks)
        assert await poll_until(lambda: started == 2)
        for _ in range(5):
            await asyncio.sleep(0)
        assert started == 2
        rest = [block async for block in blocks]
    assert first + b"".join(rest) == data


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_store_is_storage_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connection refused: uploads and downloads fail with StorageUnavailable, the health
    probe with an OSError, and nothing is raised as an internal error."""
    use_s3_settings(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(s3, "MAX_ATTEMPTS", 1)
    store = await open_s3_blob_store(f"s3://{BUCKET}/x", max_blob_bytes=MAX_BLOB_BYTES)
    writer = store.writer()
    await writer.write(b"bytes")
    with pytest.raises(StorageUnavailable, match="unavailable"):
        await writer.finish()
    await writer.abort()  # logged, left for a later discard
    with pytest.raises(StorageUnavailable):
        await read_all(store, hashlib.sha256(b"x").hexdigest())
    with pytest.raises(OSError, match="unavailable"):
        await store.check_writable()
    await store.close()


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    answer: Any = {
        "Error": {"Code": code, "Message": "said the store"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return botocore.exceptions.ClientError(answer, "PutObject")


@pytest.mark.parametrize(
    ("code", "status"),
    [("SlowDown", 503), ("InternalError", 500), ("AccessDenied", 403), ("Whatever", 502)],
)
async def test_answers_meaning_the_store_cannot_serve_are_storage_unavailable(
    s3_store: S3BlobStore, code: str, status: int
) -> None:
    """Throttling, server errors and refused credentials are StorageUnavailable."""
    with pytest.raises(StorageUnavailable, match=code), s3_store.faults("testing"):
        raise client_error(code, status)


async def test_other_answers_are_not_called_unavailable(s3_store: S3BlobStore) -> None:
    """An answer that means a bug (a malformed request) stays what it is."""
    with pytest.raises(botocore.exceptions.ClientError), s3_store.faults("testing"):
        raise client_error("InvalidArgument", 400)


# Settings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://my.bucket-1/", ("my.bucket-1", "")),
        ("s3://bucket/models", ("bucket", "models/")),
        ("s3://bucket//a/b/", ("bucket", "a/b/")),
    ],
)
def test_blob_urls_name_a_bucket_and_a_prefix(url: str, expected: tuple[str, str]) -> None:
    """s3://bucket/prefix gives the bucket and a prefix ending in a slash (or none)."""
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bucket/x", "must start with s3://"),
        ("/data/blobs", "must start with s3://"),
        ("s3://Bucket/x", "no valid bucket"),
        ("s3://ab", "no valid bucket"),
        ("s3://", "no valid bucket"),
        ("s3://bucket..x", "no valid bucket"),
        ("s3://key:secret@bucket", "s3://bucket/prefix only"),
        ("s3://bucket:9000/x", "s3://bucket/prefix only"),
        ("s3://bucket/x?region=eu", "s3://bucket/prefix only"),
        ("s3://bucket/a/../b", "not a plain name"),
        ("s3://bucket/a b", "not a plain name"),
    ],
)
def test_bad_blob_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    """Anything but s3://bucket/prefix is a ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_s3_url(url)


def test_parts_are_large_enough_for_the_largest_blob() -> None:
    """S3 allows 10,000 parts: the part size grows with the largest blob, never below 8 MiB."""
    assert part_bytes_for(1 << 30) == MIN_PART_BYTES
    for largest in (100 << 30, (1 << 40) + 1):
        assert part_bytes_for(largest) * 10_000 >= largest
        assert part_bytes_for(largest) % (1 << 20) == 0


async def test_missing_credentials_are_a_clear_error(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No AWS credentials anywhere: opening the store says which settings to give."""
    use_s3_settings(monkeypatch, moto_endpoint)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ValueError, match="AWS_ACCESS_KEY_ID"):
        await open_s3_blob_store(f"s3://{BUCKET}", max_blob_bytes=MAX_BLOB_BYTES)


async def test_an_endpoint_that_is_no_http_url_is_refused(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AWS_ENDPOINT_URL must be an http(s) URL; the error names the setting."""
    use_s3_settings(monkeypatch, str(tmp_path))
    with pytest.raises(ValueError, match="AWS_ENDPOINT_URL"):
        await open_s3_blob_store(f"s3://{BUCKET}", max_blob_bytes=MAX_BLOB_BYTES)
