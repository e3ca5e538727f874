"""The blob store: version files kept by content address, behind a small interface.

``LocalBlobStore`` (the embedded default) keeps ``DATA_DIR/blobs/sha256/ab/<digest>``. An upload
is written to a temporary file while its SHA-256 is computed, fsynced, then renamed to its
content address, so a blob is either complete or absent and identical content is stored once.
The temporary file is synced in steps while it grows (``modelcatalog.wire.SyncAhead``), so the
fsync before commit has only the last step to flush.
File I/O and hashing run in the store's worker threads, overlapped with the network: an upload
hashes and writes up to two batches while the event loop gathers the next, and a download reads
the next block while the current one is sent. The event loop never waits on the disk. A full
disk is a ``StorageFull`` fault, not a server error, and the upload it interrupts leaves no file.
``storage/s3.py`` implements the same two classes on an S3-compatible object store.

An upload can be paused (``BlobWriter.pause``: every byte received made durable where it
waits) and continued later, by any process, from its handle (``BlobStore.resume``): the bytes
kept are read back to hash them, since a SHA-256 in progress cannot be stored, and new bytes
are appended after them.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import hashlib
import os
import threading
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from io import FileIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from modelcatalog.wire import SyncAhead

from ..files import start_writeback
from .faults import disk_full_is_a_fault

if TYPE_CHECKING:
    from _hashlib import HASH

T = TypeVar("T")

#: Bytes read from disk per download chunk (see DESIGN.md, transport facts).
READ_CHUNK_BYTES = 1 << 20
#: Incoming bytes are gathered to about this much before they go to a worker thread at once.
WRITE_BATCH_BYTES = 1 << 20
#: Batches an upload may have in its worker threads at once, each hashed and written after the
#: one before: handing a batch to a thread and learning it is done took about 2 ms on a busy
#: 2-core machine (a thread waits for a core, then the event loop for its turn), longer than
#: hashing or writing 1 MiB, so with one batch at a time the upload waited on every round trip.
BATCHES_IN_THREADS = 2
#: At most this many chunks per batch: one ``writev`` takes at most ``IOV_MAX`` buffers, and a
#: client sending tiny chunks must not make an upload hold a huge list of small objects.
WRITE_BATCH_PARTS = min(1024, os.sysconf("SC_IOV_MAX"))
#: Worker threads for blob I/O: enough that one upload's long fsync does not hold up the others'
#: writes and reads; hashing on more threads than cores gains nothing.
IO_THREADS = 16
#: Worker threads for the syncs uploads run while they grow (``SyncAhead``, one at a time per
#: upload), apart from the I/O threads, so that writes and reads never queue behind slow flushes.
SYNC_THREADS = 16
#: The name ending of an upload's temporary file, which its handle names.
_PART_SUFFIX = ".part"
#: What the writability probe writes: one block, the least a new blob needs.
PROBE_BYTES = 4096


class BlobWriter(abc.ABC):
    """One upload in progress: append bytes, then commit or abort."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes received so far."""

    @property
    @abc.abstractmethod
    def handle(self) -> str:
        """Names where this upload's bytes wait until commit, so that any server process can
        discard them (``BlobStore.discard``) if this one dies before it commits or aborts."""

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

    async def pause(self) -> int:
        """Makes every byte received durable where it waits, for ``BlobStore.resume``, and
        returns how many that is; the writer takes no more bytes afterwards."""
        await self.finish()
        return self.size


class BlobStore(abc.ABC):
    """Where version files live."""

    @abc.abstractmethod
    def writer(self) -> BlobWriter:
        """Starts a new upload."""

    @abc.abstractmethod
    async def resume(self, handle: str, size: int) -> BlobWriter:
        """A writer that continues the paused upload ``handle`` (``BlobWriter.pause``), whose
        first ``size`` bytes it has read back and hashed. FileNotFoundError when the store
        does not hold exactly ``size`` bytes for it (gone, or another size)."""

    @abc.abstractmethod
    def read(self, sha256: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """The blob's bytes from ``offset`` on, in chunks of at most ``READ_CHUNK_BYTES``."""

    @abc.abstractmethod
    async def delete(self, sha256: str) -> None:
        """Removes a committed blob; no error when it is already gone."""

    @abc.abstractmethod
    async def discard(self, handle: str) -> None:
        """Removes the uncommitted bytes of the upload ``handle`` names (``BlobWriter.handle``),
        written by this process or another; no error when they are already gone."""

    @abc.abstractmethod
    async def check_writable(self) -> None:
        """Raises OSError when a new blob could not be stored now (full, read-only, gone)."""

    async def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Releases what the store holds open (connections), once nothing uses it any more."""


class LocalBlobStore(BlobStore):
    """Blobs as files under one directory on a local (or mounted) file system."""

    def __init__(self, root: Path) -> None:
        self._root = root
        #: Where uploads wait until commit, one file each (named by the writer's handle).
        self.temporary_directory = root / "tmp"
        self._objects = root / "sha256"
        self.temporary_directory.mkdir(parents=True, exist_ok=True)
        self._objects.mkdir(parents=True, exist_ok=True)
        self._prefix_lock = threading.Lock()
        self._threads = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="blob-io")
        self._sync_threads = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="blob-sync")

    def path_of(self, sha256: str) -> Path:
        """Where a committed blob lives."""
        return self._objects / sha256[:2] / sha256

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        """Runs ``function`` in one of the store's worker threads."""
        return self._threads.submit(function, *args)

    def submit_sync(self, flush: Callable[[int], None], descriptor: int) -> Future[None]:
        """Runs an upload's step sync (``SyncAhead``) in one of the store's sync threads."""
        return self._sync_threads.submit(flush, descriptor)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Runs ``function`` in a worker thread and waits for it."""
        return await asyncio.wrap_future(self.submit(function, *args))

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
        return _LocalWriter(self, self.temporary_directory / f"{uuid.uuid4().hex}{_PART_SUFFIX}")

    async def resume(self, handle: str, size: int) -> BlobWriter:
        if not _is_part_name(handle):
            raise ValueError(f"not a handle of this blob store: {handle!r}")
        path = self.temporary_directory / handle
        file, hasher = await self.run(_reopen_hashed, path, size)
        return _LocalWriter(self, path, resumed=(file, hasher, size))

    async def read(self, sha256: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """The blob's blocks; the next one is read while the consumer handles the current one.

        So at most one block is read ahead: a download holds at most two blocks.
        """
        file = await self.run(FileIO, self.path_of(sha256))
        ahead = self.submit(os.pread, file.fileno(), READ_CHUNK_BYTES, offset)
        try:
            while True:
                block = await _result(ahead)
                if not block:
                    return
                offset += len(block)
                ahead = self.submit(os.pread, file.fileno(), READ_CHUNK_BYTES, offset)
                yield block
        finally:
            # The read ahead may still use the descriptor: it is closed once that read is done.
            _close_when_done(file, ahead)

    async def delete(self, sha256: str) -> None:
        await self.run(self.path_of(sha256).unlink, True)

    async def discard(self, handle: str) -> None:
        if not _is_part_name(handle):
            raise ValueError(f"not a handle of this blob store: {handle!r}")
        await self.run((self.temporary_directory / handle).unlink, True)

    async def check_writable(self) -> None:
        await self.run(self._probe, self.temporary_directory / f"probe-{uuid.uuid4().hex}.part")

    def _probe(self, path: Path) -> None:
        """Creates, fills, fsyncs and removes a small file, as every upload does."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, bytes(PROBE_BYTES))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
            path.unlink()


class _LocalWriter(BlobWriter):
    """Hashes each batch in a worker thread and writes it in another while the event loop
    gathers the next.

    At most ``BATCHES_IN_THREADS`` batches are in the threads and one being gathered, so an
    upload holds about three batches however fast its client sends; the loop waits only when
    the disk or the hash is slower. Each batch is hashed after the one before it and written
    after the one before it (``_after``), so the digest and the file see the bytes in order.
    Hashing beside the writing rather than before it makes each batch's turn as long as the
    longer of the two, not their sum, while worker threads are free (with most of them busy,
    the two queue one after the other as before): writing costs as much as hashing or more
    where the kernel must first get its page-cache pages back from a virtual machine's host
    (on this machine, 1.6-2.4 s per GiB against 1 s to hash).
    """

    def __init__(
        self,
        store: LocalBlobStore,
        path: Path,
        *,
        resumed: tuple[FileIO, HASH, int] | None = None,
    ) -> None:
        self._store = store
        self._path = path
        self._file: FileIO | None = None
        self._sync: SyncAhead | None = None
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        #: The writing and hashing of each batch in the threads, oldest first; each is done only
        #: once the batches before it are, and fails as the first of them that failed. A batch
        #: stays here until both are done: abort closes the file after the last write.
        self._in_threads: deque[tuple[Future[None], Future[None]]] = deque()
        self._written_bytes = 0  # by the worker threads, one batch at a time
        self._size = 0
        self._closed = False
        if resumed is not None:
            self._file, self._hash, self._size = resumed
            self._written_bytes = self._size
            self._sync = self._syncing(self._file)

    @property
    def size(self) -> int:
        return self._size

    @property
    def handle(self) -> str:
        return self._path.name

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._size += len(data)
        if self._pending_bytes >= WRITE_BATCH_BYTES or len(self._pending) >= WRITE_BATCH_PARTS:
            await self._drained(BATCHES_IN_THREADS - 1)
            file = self._opened()
            with disk_full_is_a_fault("writing an upload"):
                self._synced().written(self._written_bytes)
            self._hand_over(self._write_batch, file)

    def _hand_over(self, write: Callable[[FileIO, list[bytes]], None], file: FileIO) -> None:
        """Hashes the gathered batch in one worker thread and runs ``write`` in another, each
        once the batches before it are through the same step."""
        batch = self._batch()
        writing, hashing = self._in_threads[-1] if self._in_threads else (None, None)
        self._in_threads.append(
            (
                _after(writing, self._store.submit, write, file, batch),
                _after(hashing, self._store.submit, self._hash_batch, batch),
            )
        )

    async def _drained(self, batches: int) -> None:
        """Waits until at most ``batches`` batches are in the worker threads; raises what
        writing one of them raised."""
        while len(self._in_threads) > batches:
            writing, hashing = self._in_threads[0]
            await _result(hashing)
            with disk_full_is_a_fault("writing an upload"):
                await _result(writing)
            self._in_threads.popleft()

    async def _written(self) -> None:
        """Waits until every batch in the worker threads is hashed and written; raises what
        writing them raised."""
        await self._drained(0)

    def _batch(self) -> list[bytes]:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        return batch

    def _opened(self) -> FileIO:
        """The temporary file, created with the first bytes (a silent client costs no file).

        Called on the event loop, so that ``abort`` never races a worker thread creating it.
        """
        if self._file is None:
            self._file = self._path.open("xb", buffering=0)
            self._sync = self._syncing(self._file)
        return self._file

    def _syncing(self, file: FileIO) -> SyncAhead:
        """Syncs the file in steps from the bytes it holds on (a resumed upload's included)."""
        return SyncAhead(file.fileno(), self._store.submit_sync, synced_bytes=self._written_bytes)

    def _synced(self) -> SyncAhead:
        assert self._sync is not None, "made with the file"
        return self._sync

    def _hash_batch(self, batch: list[bytes]) -> None:
        for data in batch:
            self._hash.update(data)

    def _write_batch(self, file: FileIO, batch: list[bytes]) -> None:
        if self._closed:
            return  # aborted while the batch waited for the ones before it: nobody reads it
        length = _write_all(file.fileno(), batch)
        start_writeback(file.fileno(), self._written_bytes, length)
        self._written_bytes += length

    async def finish(self) -> str:
        """Writes what is left, fsyncs and closes the file (once: pausing a finished upload
        finds it done); run to its end even when the caller is cancelled meanwhile."""
        await self._written()
        if self._file is None or not self._file.closed:
            with disk_full_is_a_fault("writing an upload"):
                file = self._opened()
                await self._synced().settled()
                # Kept among the batches in the threads: abort, after a cancelled wait, closes
                # the file only once this is done with it.
                self._hand_over(self._write_and_sync, file)
                await self._written()
        return self._hash.hexdigest()

    def _write_and_sync(self, file: FileIO, batch: list[bytes]) -> None:
        self._write_batch(file, batch)
        os.fsync(file.fileno())
        file.close()

    async def commit(self) -> None:
        with disk_full_is_a_fault("storing an upload"):
            await self._store.run(self._move, self._store.path_of(self._hash.hexdigest()))
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
            self._pending, self._pending_bytes = [], 0
            if self._file is not None:
                last_write = self._in_threads[-1][0] if self._in_threads else None
                _close_when_done(self._file, last_write, self._synced().running)
            self._path.unlink(missing_ok=True)


def _reopen_hashed(path: Path, size: int) -> tuple[FileIO, HASH]:
    """The paused upload's file, opened to append, and the SHA-256 of its bytes; raises
    FileNotFoundError when it is gone or does not hold exactly ``size`` bytes."""
    file = FileIO(os.open(path, os.O_WRONLY | os.O_APPEND), "a")
    try:
        held = os.fstat(file.fileno()).st_size
        if held != size:
            raise FileNotFoundError(f"the paused upload {path.name} holds {held} bytes, not {size}")
        hasher = hashlib.sha256()
        with FileIO(path, "r") as reader:
            while block := reader.read(READ_CHUNK_BYTES):
                hasher.update(block)
    except BaseException:
        file.close()
        raise
    return file, hasher


def _is_part_name(name: str) -> bool:
    """Whether ``name`` is a temporary file name ``writer`` makes: a hex id and the suffix."""
    stem, suffix = name[: -len(_PART_SUFFIX)], name[-len(_PART_SUFFIX) :]
    return suffix == _PART_SUFFIX and len(stem) == 32 and all(c in "0123456789abcdef" for c in stem)


async def _result(future: Future[T]) -> T:
    """The result of work submitted to a thread; no event-loop wake-up when it is already done.

    Shielded: a caller cancelled while it waits (a client that went away) must not cancel the
    work itself while it still waits for a thread, as ``wrap_future`` would, since the writer
    goes on to pause or abort the upload and must find every batch it took written.
    """
    if future.done():
        return future.result()
    return await asyncio.shield(asyncio.wrap_future(future))


def _after(
    previous: Future[None] | None,
    submit: Callable[..., Future[None]],
    function: Callable[..., None],
    *args: Any,
) -> Future[None]:
    """``submit(function, *args)`` once ``previous`` is done, without waiting for it: the
    future of that work, which fails as ``previous`` did, without running, if it failed."""
    if previous is None or (previous.done() and _failure(previous) is None):
        return submit(function, *args)
    chained: Future[None] = Future()

    def start(before: Future[None]) -> None:
        error = _failure(before)
        if error is not None:
            chained.set_exception(error)
            return
        try:
            submitted = submit(function, *args)
        except BaseException as error:  # an executor shut down while the server stops
            chained.set_exception(error)
            return
        submitted.add_done_callback(functools.partial(_settle, chained))

    previous.add_done_callback(start)
    return chained


def _settle(chained: Future[None], done: Future[None]) -> None:
    """Gives ``chained`` the outcome of ``done``."""
    error = _failure(done)
    if error is not None:
        chained.set_exception(error)
    else:
        chained.set_result(None)


def _failure(done: Future[None]) -> BaseException | None:
    """What the finished work ``done`` failed with, its cancellation included (``exception``
    raises that instead of returning it), or None."""
    return CancelledError() if done.cancelled() else done.exception()


class _Work(Protocol):
    """Work in progress that calls back when done: a worker thread's ``Future``."""

    def add_done_callback(self, callback: Callable[[Any], object], /) -> None: ...


def _close_when_done(file: FileIO, *work: _Work | None) -> None:
    """Closes ``file`` now, or once all ``work`` (which may be using it) is done, in the thread
    that ends last."""
    unfinished = [future for future in work if future is not None]
    lock = threading.Lock()

    def close_after_last(finished: _Work | None = None) -> None:
        with lock:
            if finished is not None:
                unfinished.remove(finished)
            if unfinished:
                return
        # Closing a file whose writes failed (a full disk) must not fail the clean-up.
        with contextlib.suppress(OSError):
            file.close()

    if not unfinished:
        close_after_last()
    for future in list(unfinished):
        future.add_done_callback(close_after_last)


def _write_all(descriptor: int, parts: list[bytes]) -> int:
    """Writes every byte of ``parts`` in order, with as few system calls as the OS allows;
    returns how many that was."""
    total = sum(len(part) for part in parts)
    pending: list[bytes | memoryview] = list(parts)
    first = 0
    while first < len(pending):
        written = os.writev(descriptor, pending[first:])
        while first < len(pending) and written >= len(pending[first]):
            written -= len(pending[first])
            first += 1
        if written:
            pending[first] = memoryview(pending[first])[written:]
    return total


def _fsync_directory(path: Path) -> None:
    """Makes a rename in ``path`` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
