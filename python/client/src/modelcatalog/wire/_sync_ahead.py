"""A file made durable while it grows, so that the fsync ending a transfer waits for its last
bytes only.

``fsync`` costs about as long as the bytes it must flush: 0.8 s for 512 MiB at the end of a
3 s transfer on the development machine, whose disk keeps written blocks in a cache that only a
flush empties. Writeback the kernel starts early (``sync_file_range``) moves the bytes to the
device but not out of its cache (the final fsync still took 0.2 to 0.7 s). ``SyncAhead`` runs an
``fdatasync`` in a worker thread each time a step's worth of bytes has been written since the
last one started, so flushing overlaps receiving: an upload's or a download's last fsync then
has about a step to flush, and what arrived while the last sync ran.

Each sync then tells the kernel that the file's cached pages, clean once flushed, are not
needed (``POSIX_FADV_DONTNEED``, on Linux; macOS and Windows take no such advice). A transfer
writes its bytes once, so they no longer push other files out of the page cache, and the next
bytes it writes usually land in the pages just given back.
Pages the kernel must take anew cost far more on a virtual machine whose host reclaims the
guest's free memory (free page reporting): writing into them took 1.6-2.4 s per GiB on the
development machine, into pages given back 0.6-1.3 s. The price: the file is read back from
disk, not from memory, by whoever reads it next (a download of a version just uploaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Future

SYNC_STEP_BYTES = 32 * 1024 * 1024
"""Bytes written between two syncs. 8 to 128 MiB made no difference to a 512 MiB transfer
here; each sync is one flush of the disk's cache, so fewer is kinder to slow disks."""

Submit = Callable[[Callable[[int], None], int], "Future[None] | asyncio.Future[None]"]
"""Runs a function with one argument in a worker thread: ``ThreadPoolExecutor.submit``, or
the event loop's ``run_in_executor`` with a pool."""


class SyncAhead:
    """Syncs one file in steps while it is written; ``running`` is the sync in progress.

    Used from the event loop only. The file must stay open while a sync runs: whoever closes
    it waits for ``running`` first (``settled``, or a done callback).
    """

    def __init__(
        self,
        descriptor: int,
        submit: Submit,
        *,
        synced_bytes: int = 0,
        step_bytes: int | None = None,
    ) -> None:
        self._descriptor = descriptor
        self._submit = submit
        self._synced_bytes = synced_bytes
        self._step_bytes = SYNC_STEP_BYTES if step_bytes is None else step_bytes
        self.running: Future[None] | asyncio.Future[None] | None = None

    def written(self, total_bytes: int) -> None:
        """The file now holds ``total_bytes`` written bytes: starts a sync if a step's worth
        came since the last one started and none runs.

        Raises the error a finished sync met (``ENOSPC``, ``EIO``): the kernel reports a
        failed writeback to a file once, so the final fsync may not see it again.
        """
        if self.running is not None:
            if not self.running.done():
                return
            self._take_outcome()
        if total_bytes - self._synced_bytes >= self._step_bytes:
            self._synced_bytes = total_bytes
            self.running = self._submit(_flush, self._descriptor)

    async def settled(self) -> None:
        """Waits until no sync runs; raises the error the last one met.

        A cancelled caller leaves the sync running, and in ``running`` for whoever closes the
        file (``asyncio.wait`` cancels nothing it waits for).
        """
        if self.running is not None:
            if not self.running.done():
                await asyncio.wait((asyncio.wrap_future(self.running),))
            self._take_outcome()

    def _take_outcome(self) -> None:
        finished, self.running = self.running, None
        if finished is not None:
            finished.result()


def _flush(descriptor: int) -> None:
    """``fdatasync`` (``fsync`` where the OS has none: Windows, macOS), then lets the kernel
    drop the file's pages from its cache where it takes such advice (not Windows, macOS)."""
    getattr(os, "fdatasync", os.fsync)(descriptor)
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):  # advice only: the bytes are durable either way
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
