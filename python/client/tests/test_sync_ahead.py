"""SyncAhead: a growing file is synced in steps, one sync at a time, and no sync's error is lost."""

import asyncio
import ctypes
import errno
import mmap
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from modelcatalog.wire import SyncAhead

STEP = 1000


class Syncs:
    """A stand-in for a worker pool that runs each sync when the test says so."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.running: list[Future[None]] = []

    def submit(self, function: Callable[[int], None], descriptor: int) -> Future[None]:
        self.started.append(descriptor)
        future: Future[None] = Future()
        self.running.append(future)
        return future

    def finish(self, error: BaseException | None = None) -> None:
        future = self.running.pop(0)
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


@pytest.fixture
def syncs() -> Syncs:
    return Syncs()


def test_a_sync_starts_each_time_a_step_has_been_written(syncs: Syncs) -> None:
    """Below a step nothing is synced; each step's worth written since the last sync started
    starts the next one, counted from the bytes already synced."""
    sync = SyncAhead(7, syncs.submit, synced_bytes=500, step_bytes=STEP)
    sync.written(1499)
    assert syncs.started == []
    sync.written(1500)
    assert syncs.started == [7]
    syncs.finish()
    sync.written(2499)
    assert syncs.started == [7]
    sync.written(2600)
    assert syncs.started == [7, 7]


def test_no_second_sync_starts_while_one_runs(syncs: Syncs) -> None:
    """Bytes written while a sync runs are left to the next one, started once it has ended."""
    sync = SyncAhead(7, syncs.submit, step_bytes=STEP)
    sync.written(STEP)
    sync.written(5 * STEP)
    assert len(syncs.started) == 1
    assert sync.running is syncs.running[0]
    syncs.finish()
    sync.written(5 * STEP)
    assert len(syncs.started) == 2


def test_the_error_a_sync_met_is_raised_by_the_next_write(syncs: Syncs) -> None:
    """A failed writeback is reported once by the kernel: the writer hears of it, even though
    the file's final fsync might not."""
    sync = SyncAhead(7, syncs.submit, step_bytes=STEP)
    sync.written(STEP)
    syncs.finish(OSError(errno.EIO, os.strerror(errno.EIO)))
    with pytest.raises(OSError, match="Input/output error"):
        sync.written(STEP + 1)
    assert sync.running is None


async def test_settled_waits_for_the_running_sync_and_raises_its_error(syncs: Syncs) -> None:
    sync = SyncAhead(7, syncs.submit, step_bytes=STEP)
    await sync.settled()  # nothing runs: returns at once
    sync.written(STEP)
    waiting = asyncio.ensure_future(sync.settled())
    await asyncio.sleep(0)
    assert not waiting.done()
    syncs.finish(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(OSError, match="No space left on device"):
        await waiting
    assert sync.running is None


async def test_a_cancelled_wait_leaves_the_running_sync_for_whoever_closes_the_file(
    syncs: Syncs,
) -> None:
    sync = SyncAhead(7, syncs.submit, step_bytes=STEP)
    sync.written(STEP)
    waiting = asyncio.ensure_future(sync.settled())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert sync.running is syncs.running[0]
    assert not sync.running.done()


@pytest.fixture
def flushed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Each file the real sync flushes, with its size then."""
    flushes: list[tuple[str, int]] = []
    name = "fdatasync" if hasattr(os, "fdatasync") else "fsync"
    real = getattr(os, name)

    def recording(descriptor: int) -> None:
        flushes.append((name, os.fstat(descriptor).st_size))
        real(descriptor)

    monkeypatch.setattr(os, name, recording)
    return flushes


async def test_the_file_is_really_flushed_in_a_worker_thread(
    tmp_path: Path, flushed: list[tuple[str, int]]
) -> None:
    """With a real pool, the sync is the OS's data flush, run off the event loop's thread."""
    threads: list[str] = []
    with ThreadPoolExecutor(1) as pool, (tmp_path / "file").open("wb", buffering=0) as file:

        def submit(function: Callable[[int], None], descriptor: int) -> Future[None]:
            def run(descriptor: int) -> None:
                threads.append(threading.current_thread().name)
                function(descriptor)

            return pool.submit(run, descriptor)

        sync = SyncAhead(file.fileno(), submit, step_bytes=STEP)
        file.write(bytes(STEP))
        sync.written(STEP)
        await sync.settled()
    assert flushed == [("fdatasync" if hasattr(os, "fdatasync") else "fsync", STEP)]
    assert len(threads) == 1
    assert threads != [threading.current_thread().name]


def resident_bytes(path: Path) -> int:
    """How many of the file's bytes the page cache holds (Linux's ``mincore`` on a mapping)."""
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    vector = ctypes.create_string_buffer(pages)
    with path.open("r+b") as file, mmap.mmap(file.fileno(), size) as mapping:
        start = ctypes.c_char.from_buffer(mapping)
        try:
            assert libc.mincore(ctypes.addressof(start), size, vector) == 0, ctypes.get_errno()
        finally:
            del start  # the mapping cannot close while a ctypes object points into it
    return sum(byte & 1 for byte in vector.raw) * mmap.PAGESIZE


def advice_empties_the_page_cache(directory: Path) -> bool:
    """Whether a flushed file in ``directory`` is in the page cache and leaves it when the
    kernel is told its pages are not needed (not on tmpfs, nor ZFS, whose files bypass it)."""
    probe = directory / "probe"
    with probe.open("wb", buffering=0) as file:
        file.write(os.urandom(mmap.PAGESIZE))
        cached = resident_bytes(probe) == mmap.PAGESIZE
        os.fdatasync(file.fileno())
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    dropped = resident_bytes(probe) == 0
    probe.unlink()
    return cached and dropped


async def test_flushed_pages_leave_the_page_cache(tmp_path: Path) -> None:
    """Once a step is durable, the file's pages are given back to the kernel: a transfer's
    bytes do not fill the page cache."""
    if not sys.platform.startswith("linux"):
        pytest.skip("mincore is Linux's")
    if not advice_empties_the_page_cache(tmp_path):
        pytest.skip("this file system keeps no page cache or ignores the advice")
    path = tmp_path / "file"
    data = os.urandom(64 * mmap.PAGESIZE)
    with ThreadPoolExecutor(1) as pool, path.open("wb", buffering=0) as file:
        sync = SyncAhead(file.fileno(), pool.submit, step_bytes=len(data))
        file.write(data)
        assert resident_bytes(path) == len(data)
        sync.written(len(data))
        await sync.settled()
        assert resident_bytes(path) == 0
    assert path.read_bytes() == data


async def test_the_pages_are_given_up_only_after_the_flush(
    tmp_path: Path, flushed: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the OS takes the advice, it follows the flush, for the whole file: only pages
    already on disk can be dropped, and those written since are skipped until the next step."""
    if not hasattr(os, "posix_fadvise"):
        pytest.skip("no posix_fadvise here (Windows, macOS)")
    advised: list[tuple[int, int, int]] = []

    def recording(descriptor: int, offset: int, length: int, advice: int) -> None:
        flushed.append(("advice", os.fstat(descriptor).st_size))
        advised.append((offset, length, advice))

    monkeypatch.setattr(os, "posix_fadvise", recording)
    with ThreadPoolExecutor(1) as pool, (tmp_path / "file").open("wb", buffering=0) as file:
        sync = SyncAhead(file.fileno(), pool.submit, step_bytes=STEP)
        file.write(bytes(STEP))
        sync.written(STEP)
        await sync.settled()
    assert [name for name, _ in flushed] == [
        "fdatasync" if hasattr(os, "fdatasync") else "fsync",
        "advice",
    ]
    assert advised == [(0, 0, os.POSIX_FADV_DONTNEED)]
