"""The local blob store: all-or-nothing commits by content address, ranged reads, recovery."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelcatalog_server.storage.blobs import READ_CHUNK_BYTES, LocalBlobStore


async def store_bytes(store: LocalBlobStore, *parts: bytes) -> str:
    writer = store.writer()
    for part in parts:
        await writer.write(part)
    digest = await writer.finish()
    await writer.commit()
    await writer.abort()
    return digest


async def read_all(store: LocalBlobStore, digest: str, offset: int = 0) -> bytes:
    return b"".join([chunk async for chunk in store.read(digest, offset)])


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


async def test_commit_stores_under_the_sha256(tmp_path: Path) -> None:
    """The digest is the SHA-256 of all parts, and the file lives at sha256/<2 hex>/<digest>."""
    store = LocalBlobStore(tmp_path)
    parts = [os.urandom(300_000) for _ in range(5)]
    digest = await store_bytes(store, *parts)
    assert digest == hashlib.sha256(b"".join(parts)).hexdigest()
    assert files_under(tmp_path) == [tmp_path / "sha256" / digest[:2] / digest]


async def test_reads_are_chunked_and_start_at_the_offset(tmp_path: Path) -> None:
    """Reading yields chunks of at most 1 MiB from the requested offset to the end."""
    store = LocalBlobStore(tmp_path)
    data = os.urandom(2 * READ_CHUNK_BYTES + 5)
    digest = await store_bytes(store, data)
    chunks = [chunk async for chunk in store.read(digest)]
    assert [len(c) for c in chunks] == [READ_CHUNK_BYTES, READ_CHUNK_BYTES, 5]
    assert await read_all(store, digest, READ_CHUNK_BYTES + 1) == data[READ_CHUNK_BYTES + 1 :]
    assert await read_all(store, digest, len(data)) == b""


async def test_abort_leaves_nothing(tmp_path: Path) -> None:
    """An aborted upload, finished or not, leaves no file behind."""
    store = LocalBlobStore(tmp_path)
    for finish in (False, True):
        writer = store.writer()
        await writer.write(os.urandom(3 * 1024 * 1024))
        if finish:
            await writer.finish()
        await writer.abort()
    assert files_under(tmp_path) == []


async def test_nothing_is_readable_before_commit(tmp_path: Path) -> None:
    """A finished but uncommitted blob cannot be read under its digest."""
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    await writer.write(b"pending")
    digest = await writer.finish()
    with pytest.raises(FileNotFoundError):
        await read_all(store, digest)
    await writer.commit()
    assert await read_all(store, digest) == b"pending"


async def test_identical_content_is_kept_once(tmp_path: Path) -> None:
    """Committing the same bytes twice keeps one file and no temporary."""
    store = LocalBlobStore(tmp_path)
    first = await store_bytes(store, b"same bytes")
    second = await store_bytes(store, b"same ", b"bytes")
    assert first == second
    assert len(files_under(tmp_path)) == 1


async def test_recover_removes_temporaries_and_unreferenced_blobs(tmp_path: Path) -> None:
    """Start-up recovery deletes interrupted uploads and blobs no version points to."""
    store = LocalBlobStore(tmp_path)
    kept = await store_bytes(store, b"kept")
    orphan = await store_bytes(store, b"orphan")
    interrupted = store.writer()
    await interrupted.write(os.urandom(2 * READ_CHUNK_BYTES))
    assert await store.recover({kept}) == 2
    assert files_under(tmp_path) == [store.path_of(kept)]
    assert not store.path_of(orphan).exists()
    await interrupted.abort()


async def test_no_temporary_file_before_the_first_bytes(tmp_path: Path) -> None:
    """An upload that has sent nothing yet holds no file: silent clients cost no descriptors."""
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    assert files_under(tmp_path) == []
    await writer.abort()


async def test_delete_removes_a_committed_blob(tmp_path: Path) -> None:
    """delete removes the blob and tolerates one that is already gone."""
    store = LocalBlobStore(tmp_path)
    digest = await store_bytes(store, b"to remove")
    await store.delete(digest)
    await store.delete(digest)
    assert files_under(tmp_path) == []
