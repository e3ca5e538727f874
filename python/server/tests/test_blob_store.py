"""The local blob store: all-or-nothing commits by content address, ranged reads, discards,
durable renames, and a full disk reported as such."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from flushes import needs_fdatasync, record_flushes, sync_every
from server_testing import poll_until, read_all, store_bytes

from modelcatalog_server import files
from modelcatalog_server.storage import blobs
from modelcatalog_server.storage.blobs import (
    BATCHES_IN_THREADS,
    IO_THREADS,
    READ_CHUNK_BYTES,
    WRITE_BATCH_BYTES,
    LocalBlobStore,
)
from modelcatalog_server.storage.faults import StorageFull


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


async def test_another_store_discards_an_upload_by_its_handle(tmp_path: Path) -> None:
    """The bytes of an upload left behind (its process died) are removed by any store on the
    same directory through the upload's handle; a second discard is no error."""
    interrupted = LocalBlobStore(tmp_path).writer()
    await interrupted.write(os.urandom(2 * READ_CHUNK_BYTES))
    assert len(files_under(tmp_path)) == 1
    survivor = LocalBlobStore(tmp_path)
    await survivor.discard(interrupted.handle)
    await survivor.discard(interrupted.handle)
    assert files_under(tmp_path) == []
    await interrupted.abort()


@pytest.mark.parametrize("handle", ["../sha256", "x.part", "/etc/passwd", "0" * 32])
async def test_discard_refuses_what_no_writer_named(tmp_path: Path, handle: str) -> None:
    """A handle that is not a temporary file's name never reaches the file system."""
    with pytest.raises(ValueError, match="not a handle"):
        await LocalBlobStore(tmp_path).discard(handle)


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


# Durability: the order of fsync and rename


def record_durability_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    """Records each os.fsync (with the path it syncs) and os.replace (with its target)."""
    calls: list[tuple[str, Path]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        calls.append(("fsync", Path(os.readlink(f"/proc/self/fd/{descriptor}"))))
        real_fsync(descriptor)

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        calls.append(("replace", Path(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


@pytest.mark.parametrize("prefix_exists", [False, True], ids=["new prefix", "known prefix"])
async def test_file_is_synced_before_the_rename_and_its_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix_exists: bool
) -> None:
    """The blob's bytes reach the disk before its name does, and the name before commit returns."""
    store = LocalBlobStore(tmp_path)
    data = os.urandom(1000)
    blob = store.path_of(hashlib.sha256(data).hexdigest())
    if prefix_exists:
        blob.parent.mkdir()
    calls = record_durability_calls(monkeypatch)
    writer = store.writer()
    await writer.write(data)
    await writer.finish()
    (temporary,) = (tmp_path / "tmp").iterdir()
    assert calls == [("fsync", temporary)]
    await writer.commit()
    renamed = calls.index(("replace", blob))
    assert ("fsync", blob.parent) in calls[renamed + 1 :]
    if not prefix_exists:
        assert ("fsync", blob.parent.parent) in calls[:renamed]
    assert await read_all(store, blob.name) == data


async def test_each_batch_starts_its_way_to_disk_before_the_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each written batch's range is handed to the kernel for writing at once, in order, so the
    fsync before the commit has little left to wait for."""
    store = LocalBlobStore(tmp_path)
    calls = record_durability_calls(monkeypatch)
    real_start = files.start_writeback

    def start_writeback(descriptor: int, offset: int, length: int) -> bool:
        calls.append(("writeback", Path(f"{offset}+{length}")))
        return real_start(descriptor, offset, length)

    monkeypatch.setattr(blobs, "start_writeback", start_writeback)
    writer = store.writer()
    for _ in range(2):
        await writer.write(os.urandom(WRITE_BATCH_BYTES))
    await writer.write(b"tail")
    await writer.finish()
    (temporary,) = (tmp_path / "tmp").iterdir()
    assert calls == [
        ("writeback", Path(f"0+{WRITE_BATCH_BYTES}")),
        ("writeback", Path(f"{WRITE_BATCH_BYTES}+{WRITE_BATCH_BYTES}")),
        ("writeback", Path(f"{2 * WRITE_BATCH_BYTES}+4")),
        ("fsync", temporary),
    ]
    await writer.abort()


@pytest.fixture
def sync_step(monkeypatch: pytest.MonkeyPatch) -> int:
    """Uploads synced every two batches, so that a small upload takes several steps."""
    step = 2 * WRITE_BATCH_BYTES
    sync_every(monkeypatch, step)
    return step


@needs_fdatasync
async def test_an_upload_is_synced_while_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync_step: int
) -> None:
    """The bytes of an upload are flushed to disk in steps as they arrive, in a worker thread,
    so that the fsync before the commit has only the last ones left: the syncs all see part of
    the file, and end before that fsync starts."""
    store = LocalBlobStore(tmp_path)
    calls = record_flushes(monkeypatch)
    writer = store.writer()
    size = 5 * sync_step + 10
    for _ in range(5 * sync_step // WRITE_BATCH_BYTES):
        await writer.write(os.urandom(WRITE_BATCH_BYTES))
    await writer.write(os.urandom(10))
    await writer.finish()
    syncs = [size_then for call, size_then in calls if call == "fdatasync"]
    assert syncs, "no sync before the end"
    assert all(sync_step <= size_then < size for size_then in syncs)
    assert calls[-1] == ("fsync", size)
    assert [call for call, _ in calls].count("fsync") == 1
    await writer.abort()


@needs_fdatasync
async def test_a_sync_that_finds_the_disk_full_is_storage_full_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync_step: int
) -> None:
    """A writeback that fails in a step's sync is heard by the upload (the kernel reports it
    once, so the final fsync might not): StorageFull, and abort leaves no file."""
    store = LocalBlobStore(tmp_path)
    record_flushes(monkeypatch, failing(errno.ENOSPC))
    writer = store.writer()

    async def write_and_finish() -> None:
        for _ in range(3 * sync_step // WRITE_BATCH_BYTES):
            await writer.write(os.urandom(WRITE_BATCH_BYTES))
        await writer.finish()

    with pytest.raises(StorageFull):
        await write_and_finish()
    await writer.abort()
    assert files_under(tmp_path) == []


@needs_fdatasync
async def test_an_aborted_upload_closes_its_file_after_the_running_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync_step: int
) -> None:
    """Abort does not close the file under a sync still running in a worker thread (which
    would flush a closed, or reused, descriptor): the file is closed once the sync ends."""
    store = LocalBlobStore(tmp_path)
    release = threading.Event()
    outcomes: list[str] = []

    def slow_flush(descriptor: int) -> None:
        release.wait(10)
        try:
            os.fstat(descriptor)
        except OSError as error:
            outcomes.append(str(error))
        else:
            outcomes.append("open")

    record_flushes(monkeypatch, slow_flush)
    writer = store.writer()
    for _ in range(sync_step // WRITE_BATCH_BYTES + 1):
        await writer.write(os.urandom(WRITE_BATCH_BYTES))
    (temporary,) = (tmp_path / "tmp").iterdir()
    await writer.abort()
    assert not temporary.exists()
    assert holds_open(temporary)
    release.set()
    assert await poll_until(lambda: not holds_open(temporary))
    assert outcomes == ["open"]


async def test_an_upload_cancelled_while_it_finishes_closes_its_file_after_the_last_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client gone while its upload's last batch is written and fsynced: the abort that
    follows does not close the file under that work, which goes on in its thread."""
    store = LocalBlobStore(tmp_path)
    release = threading.Event()
    real_fsync = os.fsync

    def slow_fsync(descriptor: int) -> None:
        release.wait(10)
        real_fsync(descriptor)

    writer = store.writer()
    await writer.write(os.urandom(1000))
    monkeypatch.setattr(os, "fsync", slow_fsync)
    finishing = asyncio.ensure_future(writer.finish())
    (temporary,) = await _files_appearing(tmp_path / "tmp")
    finishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    await writer.abort()
    assert holds_open(temporary)
    release.set()
    assert await poll_until(lambda: not holds_open(temporary))
    assert files_under(tmp_path) == []


async def _files_appearing(directory: Path) -> list[Path]:
    assert await poll_until(lambda: any(directory.iterdir()))
    return list(directory.iterdir())


def holds_open(path: Path) -> bool:
    """Whether this process has a descriptor open on ``path`` (Linux), deleted or not."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    targets = []
    for descriptor in Path("/proc/self/fd").iterdir():
        try:
            targets.append(os.readlink(descriptor))
        except OSError:
            continue  # closed meanwhile
    return any(target.startswith(str(path)) for target in targets)


def test_the_kernel_accepts_the_writeback_of_a_written_range(tmp_path: Path) -> None:
    """On Linux the writeback hint really reaches the kernel (it is not a silent no-op there)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("sync_file_range is Linux's")
    with (tmp_path / "file").open("wb", buffering=0) as file:
        file.write(os.urandom(1 << 16))
        assert files.start_writeback(file.fileno(), 0, 1 << 16)


# Faults: a full disk is StorageFull and leaves nothing behind


@pytest.fixture
def full_disk_for_uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Temporary upload files are created, but their bytes go to /dev/full (ENOSPC)."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    real_open = Path.open

    def open_on_full_disk(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
        if path.parent == tmp_path / "tmp" and mode == "xb":
            real_open(path, mode).close()
            return real_open(Path("/dev/full"), "wb")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_on_full_disk)


@pytest.mark.parametrize("size", [100, 3 * READ_CHUNK_BYTES], ids=["buffered", "batched"])
async def test_full_disk_while_writing_is_storage_full_and_leaves_nothing(
    tmp_path: Path, full_disk_for_uploads: None, size: int
) -> None:
    """ENOSPC on write or flush raises StorageFull; abort removes the temporary file anyway."""
    store = LocalBlobStore(tmp_path)
    writer = store.writer()

    async def write_and_finish() -> None:
        await writer.write(os.urandom(size))
        await writer.finish()

    with pytest.raises(StorageFull):
        await write_and_finish()
    await writer.abort()
    assert files_under(tmp_path) == []


def failing(error: int) -> Callable[..., None]:
    def fail(*_args: object) -> None:
        raise OSError(error, os.strerror(error))

    return fail


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
@pytest.mark.parametrize("call", ["fsync", "replace"])
async def test_full_disk_while_committing_is_storage_full_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, error: int
) -> None:
    """No space (or quota) to sync or rename: StorageFull, no temporary, no blob, store usable."""
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    await writer.write(os.urandom(1000))

    async def finish_and_commit() -> None:
        await writer.finish()
        await writer.commit()

    with monkeypatch.context() as patched:
        patched.setattr(os, call, failing(error))
        with pytest.raises(StorageFull):
            await finish_and_commit()
    await writer.abort()
    assert files_under(tmp_path) == []
    assert await read_all(store, await store_bytes(store, b"room again")) == b"room again"


async def test_other_disk_errors_are_not_called_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error is not reported as a full disk: it stays an OSError (a server fault)."""
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    await writer.write(b"bytes")
    monkeypatch.setattr(os, "fsync", failing(errno.EIO))
    with pytest.raises(OSError, match="Input/output error") as caught:
        await writer.finish()
    assert not isinstance(caught.value, StorageFull)
    await writer.abort()


async def test_writable_check_passes_and_leaves_no_file(tmp_path: Path) -> None:
    """On a writable disk the probe succeeds and removes its file."""
    store = LocalBlobStore(tmp_path)
    await store.check_writable()
    assert files_under(tmp_path) == []


async def test_writable_check_fails_on_a_full_disk_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the probe's bytes cannot be synced, the check raises and still removes its file."""
    store = LocalBlobStore(tmp_path)
    monkeypatch.setattr(os, "fsync", failing(errno.ENOSPC))
    with pytest.raises(OSError, match="No space left"):
        await store.check_writable()
    assert files_under(tmp_path) == []


def same_prefix_contents(count: int) -> list[bytes]:
    """``count`` different small contents whose SHA-256 digests share their first two hex digits."""
    by_prefix: dict[str, list[bytes]] = {}
    number = 0
    while True:
        content = f"content {number}".encode()
        group = by_prefix.setdefault(hashlib.sha256(content).hexdigest()[:2], [])
        group.append(content)
        if len(group) == count:
            return group
        number += 1


async def test_concurrent_commits_into_a_new_prefix_all_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads finishing at once whose digests share a new prefix directory all commit."""
    store = LocalBlobStore(tmp_path)
    contents = same_prefix_contents(32)
    real_mkdir = Path.mkdir

    def slow_mkdir(path: Path, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.05)  # widens the window in which other commits find the prefix missing
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", slow_mkdir)
    digests = await asyncio.gather(*(store_bytes(store, content) for content in contents))
    for digest, content in zip(digests, contents, strict=True):
        assert await read_all(store, digest) == content


# Overlap with the disk: a batch is written while the next arrives, a block read while one is sent


@dataclass
class HeldCall:
    """An ``os`` function patched to count its calls and, from call ``held_from`` on, to wait in
    its worker thread until ``release`` is set."""

    release: threading.Event = field(default_factory=threading.Event)
    calls: int = 0


def hold(monkeypatch: pytest.MonkeyPatch, name: str, held_from: int = 1) -> HeldCall:
    real = getattr(os, name)
    held = HeldCall()

    def waiting(*args: Any) -> Any:
        held.calls += 1
        if held.calls >= held_from:
            held.release.wait(timeout=10)
        return real(*args)

    monkeypatch.setattr(os, name, waiting)
    return held


def descriptors_under(path: Path) -> list[str]:
    """What this process's open file descriptors point to under ``path`` (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs /proc/self/fd")
    targets = []
    for entry in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith(str(path)):
            targets.append(target)
    return targets


async def test_batches_are_written_in_order_while_the_next_are_gathered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write returns while its batch still waits for a worker thread, up to
    BATCHES_IN_THREADS batches; the next full batch waits for the oldest, so an upload never
    holds more than one batch beyond those. Each batch is written after the one before it."""
    store = LocalBlobStore(tmp_path)
    held = hold(monkeypatch, "writev")
    writer = store.writer()
    parts = [os.urandom(WRITE_BATCH_BYTES) for _ in range(BATCHES_IN_THREADS + 1)]
    for part in parts[:BATCHES_IN_THREADS]:
        await asyncio.wait_for(writer.write(part), timeout=5)
    assert await poll_until(lambda: held.calls == 1)
    last = asyncio.create_task(writer.write(parts[-1]))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not last.done()
    assert held.calls == 1, "a batch was written before the one before it"
    held.release.set()
    await last
    digest = await writer.finish()
    assert digest == hashlib.sha256(b"".join(parts)).hexdigest()
    assert held.calls == len(parts)
    await writer.commit()
    assert store.path_of(digest).read_bytes() == b"".join(parts)


async def test_the_batches_after_a_failed_write_are_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose write fails (a full disk) stops the batches handed over after it: none of
    them is written past the hole, the upload fails as StorageFull and leaves nothing."""
    store = LocalBlobStore(tmp_path)
    held = hold(monkeypatch, "writev")
    writer = store.writer()
    for _ in range(BATCHES_IN_THREADS):
        await asyncio.wait_for(writer.write(os.urandom(WRITE_BATCH_BYTES)), timeout=5)
    assert await poll_until(lambda: held.calls == 1)
    attempts: list[int] = []

    def full_disk(descriptor: int, buffers: object) -> int:
        attempts.append(descriptor)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "writev", full_disk)  # the second batch's write fails
    held.release.set()  # the first batch's write, already under way, succeeds

    async def write_and_finish() -> None:
        await writer.write(os.urandom(WRITE_BATCH_BYTES))
        await writer.finish()

    with pytest.raises(StorageFull):
        await write_and_finish()
    await writer.abort()
    assert len(attempts) == 1, "a batch was written after one that failed"
    assert files_under(tmp_path) == []


def test_work_chained_after_cancelled_work_fails_instead_of_waiting_forever() -> None:
    """Work chained after work that was cancelled does not run and fails at once: were it to
    wait forever, so would the upload and the closing of its file."""
    previous: Future[None] = Future()
    submitted: list[object] = []

    def submit(function: Callable[..., None], *args: object) -> Future[None]:
        submitted.append(function)
        return Future()

    chained = blobs._after(previous, submit, print)
    previous.cancel()
    assert chained.done()
    assert isinstance(chained.exception(), CancelledError)
    assert submitted == []


async def test_a_batch_is_written_while_it_is_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's bytes reach the file while its hash is still being computed, so each batch
    takes as long as the slower of the two, not both one after the other."""
    real_sha256 = hashlib.sha256
    release = threading.Event()

    class HeldHash:
        def __init__(self) -> None:
            self._hash = real_sha256()

        def update(self, data: bytes) -> None:
            release.wait(timeout=30)
            self._hash.update(data)

        def hexdigest(self) -> str:
            return self._hash.hexdigest()

    monkeypatch.setattr(hashlib, "sha256", HeldHash)
    writer = LocalBlobStore(tmp_path).writer()
    data = os.urandom(WRITE_BATCH_BYTES)

    def written() -> bool:
        return [path.stat().st_size for path in files_under(tmp_path)] == [len(data)]

    try:
        await writer.write(data)
        assert await poll_until(written, within=5)
        release.set()
        assert await writer.finish() == real_sha256(data).hexdigest()
    finally:
        release.set()
        await writer.abort()


async def test_cancelled_upload_leaves_no_file_and_closes_once_the_thread_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while a batch is in a worker thread: the temporary file is gone at once, and its
    descriptor (still used by that thread) is closed as soon as the thread finishes."""
    store = LocalBlobStore(tmp_path)
    held = hold(monkeypatch, "writev")
    writer = store.writer()
    for _ in range(BATCHES_IN_THREADS):
        await writer.write(os.urandom(WRITE_BATCH_BYTES))
    assert await poll_until(lambda: held.calls == 1)
    waiting = asyncio.create_task(writer.write(os.urandom(WRITE_BATCH_BYTES)))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await writer.abort()
    assert files_under(tmp_path) == []
    assert len(descriptors_under(tmp_path)) == 1
    held.release.set()
    assert await poll_until(lambda: not descriptors_under(tmp_path))
    assert held.calls == 1, (
        "an aborted upload's batches waiting for the one in a thread were written"
    )


async def test_an_error_writing_a_batch_surfaces_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error in the worker thread is raised to the upload (as itself, not as a full
    disk) by its next step, and abort leaves no file and no open descriptor."""
    store = LocalBlobStore(tmp_path)
    monkeypatch.setattr(os, "writev", failing(errno.EIO))
    writer = store.writer()
    await writer.write(os.urandom(WRITE_BATCH_BYTES))
    with pytest.raises(OSError, match="Input/output error") as caught:
        await writer.finish()
    assert not isinstance(caught.value, StorageFull)
    await writer.abort()
    assert files_under(tmp_path) == []
    assert await poll_until(lambda: not descriptors_under(tmp_path))


async def test_many_tiny_chunks_are_written_in_bounded_batches(tmp_path: Path) -> None:
    """Chunks of one byte are handed over in batches of at most IOV_MAX parts, in order."""
    store = LocalBlobStore(tmp_path)
    data = os.urandom(5000)
    digest = await store_bytes(store, *(data[i : i + 1] for i in range(len(data))))
    assert await read_all(store, digest) == data


async def test_the_next_block_is_read_while_one_is_sent_and_no_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the consumer handles a block the next one is read, but never a second one ahead."""
    store = LocalBlobStore(tmp_path)
    data = os.urandom(4 * READ_CHUNK_BYTES)
    digest = await store_bytes(store, data)
    reads = hold(monkeypatch, "pread", held_from=sys.maxsize)
    async with aclosing(store.read(digest)) as blocks:
        first = await anext(blocks)
        assert await poll_until(lambda: reads.calls == 2)
        for _ in range(3):
            await asyncio.sleep(0)
        assert reads.calls == 2
        rest = [block async for block in blocks]
    assert first + b"".join(rest) == data


async def test_a_download_closed_during_a_read_ahead_closes_its_file_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a download while the block ahead is being read keeps the descriptor for that
    read, then closes it: no descriptor is reused under a running read, none is leaked."""
    store = LocalBlobStore(tmp_path)
    digest = await store_bytes(store, os.urandom(3 * READ_CHUNK_BYTES))
    held = hold(monkeypatch, "pread", held_from=2)
    blocks = store.read(digest)
    await anext(blocks)
    assert await poll_until(lambda: held.calls == 2)
    await blocks.aclose()
    assert descriptors_under(tmp_path) == [str(store.path_of(digest))]
    held.release.set()
    assert await poll_until(lambda: not descriptors_under(tmp_path))


async def test_a_paused_upload_resumes_by_its_handle_in_another_store(tmp_path: Path) -> None:
    """Paused after 1.5 MiB, an upload holds them durably in its temporary file; another store
    resumes it by its handle, appends the rest, and the blob has the whole file's SHA-256."""
    data = os.urandom(3 * READ_CHUNK_BYTES)
    writer = LocalBlobStore(tmp_path).writer()
    await writer.write(data[: 3 * READ_CHUNK_BYTES // 2])
    assert await writer.pause() == 3 * READ_CHUNK_BYTES // 2
    resumed = await LocalBlobStore(tmp_path).resume(writer.handle, writer.size)
    await resumed.write(data[3 * READ_CHUNK_BYTES // 2 :])
    digest = await resumed.finish()
    await resumed.commit()
    assert digest == hashlib.sha256(data).hexdigest()
    assert await read_all(LocalBlobStore(tmp_path), digest) == data
    assert files_under(tmp_path / "tmp") == []


async def test_a_caller_cancelled_while_its_batch_waits_for_a_thread_still_pauses_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload cancelled while its last batch still waits for a free worker thread (every
    one busy) loses nothing: that batch is still written, and pausing then holds every byte
    received. (Cancelling the wait once cancelled the queued write itself, and the pause
    failed.)"""
    store = LocalBlobStore(tmp_path)
    held = hold(monkeypatch, "writev")
    busy = [store.writer() for _ in range(IO_THREADS)]
    for other in busy:
        await other.write(os.urandom(WRITE_BATCH_BYTES))
    assert await poll_until(lambda: held.calls == IO_THREADS)
    writer = store.writer()
    data = os.urandom((BATCHES_IN_THREADS + 1) * WRITE_BATCH_BYTES)
    queued = BATCHES_IN_THREADS * WRITE_BATCH_BYTES
    for start in range(0, queued, WRITE_BATCH_BYTES):  # queued: every thread is held
        await writer.write(data[start : start + WRITE_BATCH_BYTES])
    waiting = asyncio.create_task(writer.write(data[queued:]))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    held.release.set()
    assert await writer.pause() == len(data)
    resumed = await LocalBlobStore(tmp_path).resume(writer.handle, len(data))
    assert await resumed.finish() == hashlib.sha256(data).hexdigest()
    for other in (*busy, resumed):
        await other.abort()


async def test_pausing_a_finished_upload_holds_it_as_finished(tmp_path: Path) -> None:
    """A finish that completed before the upload broke (its stream cut after the trailer) is
    not repeated by the pause, which holds every byte."""
    data = os.urandom(WRITE_BATCH_BYTES + 5)
    writer = LocalBlobStore(tmp_path).writer()
    await writer.write(data)
    digest = await writer.finish()
    assert await writer.pause() == len(data)
    resumed = await LocalBlobStore(tmp_path).resume(writer.handle, len(data))
    assert await resumed.finish() == digest == hashlib.sha256(data).hexdigest()
    await resumed.abort()


@pytest.mark.parametrize("size", [10, 1000])
async def test_resuming_with_another_size_than_held_is_file_not_found(
    tmp_path: Path, size: int
) -> None:
    """A paused upload resumed with a size other than the bytes it holds, or one that is gone,
    is FileNotFoundError, and no file is created for it."""
    store = LocalBlobStore(tmp_path)
    writer = store.writer()
    await writer.write(b"x" * 100)
    await writer.pause()
    with pytest.raises(FileNotFoundError):
        await store.resume(writer.handle, size)
    await store.discard(writer.handle)
    with pytest.raises(FileNotFoundError):
        await store.resume(writer.handle, 100)
    assert files_under(tmp_path / "tmp") == []
