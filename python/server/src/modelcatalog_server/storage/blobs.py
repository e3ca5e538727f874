"""The blob store: version files kept by content address, behind a small interface.

``LocalBlobStore`` (the embedded default) keeps ``DATA_DIR/blobs/sha256/ab/<digest>``. An upload
is written to a temporary file while its SHA-256 is computed, fsynced, then renamed to its
content address, so a blob is either complete or absent and identical content is stored once.
File I/O and hashing run in worker threads: the event loop never waits on the disk. A full disk
is a ``StorageFull`` fault, not a server error, and the upload it interrupts leaves no file.
Another backend (S3-compatible) implements the same two classes.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import AsyncGenerator, Collection
from pathlib import Path
from typing import BinaryIO

from .faults import disk_full_is_a_fault

#: Bytes read from disk per download chunk (see DESIGN.md, transport facts).
READ_CHUNK_BYTES = 1 << 20
#: Incoming bytes are gathered to about this much before one hop to a worker thread.
WRITE_BATCH_BYTES = 1 << 20
#: What the writability probe writes: one block, the least a new blob needs.
PROBE_BYTES = 4096


class BlobWriter(abc.ABC):
    """One upload in progress: append bytes, then commit or abort."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes received so far."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Appends ``data``."""

    @abc.abstractmethod
    async def finish(self) -> str:
        """Makes every byte durable in the temporary location; returns the SHA-256 (hex)."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Moves the finished blob to its content address; after this it can be read."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Discards everything written; safe to call more than once and after commit."""


class BlobStore(abc.ABC):
    """Where version files live."""

    @abc.abstractmethod
    def writer(self) -> BlobWriter:
        """Starts a new upload."""

    @abc.abstractmethod
    def read(self, sha256: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """The blob's bytes from ``offset`` on, in chunks of at most ``READ_CHUNK_BYTES``."""

    @abc.abstractmethod
    async def delete(self, sha256: str) -> None:
        """Removes a committed blob; no error when it is already gone."""

    @abc.abstractmethod
    async def check_writable(self) -> None:
        """Raises OSError when a new blob could not be stored now (full, read-only, gone)."""

    @abc.abstractmethod
    async def recover(self, referenced: Collection[str]) -> int:
        """Removes leftovers of interrupted uploads and unreferenced blobs; returns the count.

        Called once at start-up, before any upload can be running.
        """


class LocalBlobStore(BlobStore):
    """Blobs as files under one directory on a local (or mounted) file system."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._temporary = root / "tmp"
        self._objects = root / "sha256"
        self._temporary.mkdir(parents=True, exist_ok=True)
        self._objects.mkdir(parents=True, exist_ok=True)
        self._prefix_lock = threading.Lock()

    def path_of(self, sha256: str) -> Path:
        """Where a committed blob lives."""
        return self._objects / sha256[:2] / sha256

    def ensure_prefix_directory(self, directory: Path) -> None:
        """Creates a blob's prefix directory durably unless it exists (in a worker thread).

        Commits run in parallel threads: the lock makes one create it while the others wait,
        so none fails on a directory another just made, or renames into one not yet synced.
        """
        with self._prefix_lock:
            if not directory.exists():
                directory.mkdir()
                _fsync_directory(directory.parent)

    def writer(self) -> BlobWriter:
        return _LocalWriter(self, self._temporary / f"{uuid.uuid4().hex}.part")

    async def read(self, sha256: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        file = await asyncio.to_thread(open, self.path_of(sha256), "rb")
        try:
            await asyncio.to_thread(file.seek, offset)
            while chunk := await asyncio.to_thread(file.read, READ_CHUNK_BYTES):
                yield chunk
        finally:
            file.close()

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(self.path_of(sha256).unlink, missing_ok=True)

    async def check_writable(self) -> None:
        await asyncio.to_thread(self._probe, self._temporary / f"probe-{uuid.uuid4().hex}.part")

    def _probe(self, path: Path) -> None:
        """Creates, fills, fsyncs and removes a small file, as every upload does."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, bytes(PROBE_BYTES))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
            path.unlink()

    async def recover(self, referenced: Collection[str]) -> int:
        return await asyncio.to_thread(self._recover, set(referenced))

    def _recover(self, referenced: set[str]) -> int:
        removed = 0
        for leftover in self._temporary.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        for blob in self._objects.glob("*/*"):
            if blob.name not in referenced:
                blob.unlink(missing_ok=True)
                removed += 1
        return removed


class _LocalWriter(BlobWriter):
    def __init__(self, store: LocalBlobStore, path: Path) -> None:
        self._store = store
        self._path = path
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._size = 0
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._size += len(data)
        if self._pending_bytes >= WRITE_BATCH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        if batch:
            with disk_full_is_a_fault("writing an upload"):
                await asyncio.to_thread(self._write_batch, self._opened(), batch)

    def _opened(self) -> BinaryIO:
        """The temporary file, created with the first bytes (a silent client costs no file).

        Called on the event loop, so that ``abort`` never races a worker thread creating it.
        """
        if self._file is None:
            self._file = self._path.open("xb")
        return self._file

    def _write_batch(self, file: BinaryIO, batch: list[bytes]) -> None:
        for data in batch:
            self._hash.update(data)
            file.write(data)

    async def finish(self) -> str:
        await self._flush()
        with disk_full_is_a_fault("writing an upload"):
            await asyncio.to_thread(self._sync, self._opened())
        return self._hash.hexdigest()

    def _sync(self, file: BinaryIO) -> None:
        file.flush()
        os.fsync(file.fileno())
        file.close()

    async def commit(self) -> None:
        with disk_full_is_a_fault("storing an upload"):
            await asyncio.to_thread(self._move, self._store.path_of(self._hash.hexdigest()))
        self._closed = True

    def _move(self, destination: Path) -> None:
        self._store.ensure_prefix_directory(destination.parent)
        if destination.exists():
            self._path.unlink()
        else:
            os.replace(self._path, destination)
        _fsync_directory(destination.parent)

    async def abort(self) -> None:
        # Synchronous on purpose: it must also run in a task that is being cancelled.
        if not self._closed:
            self._closed = True
            if self._file is not None:
                # Closing flushes what is still buffered, which fails again on a full disk.
                with contextlib.suppress(OSError):
                    self._file.close()
            self._path.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    """Makes a rename in ``path`` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
