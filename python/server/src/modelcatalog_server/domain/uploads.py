"""Uploads in progress and the clean-up of what they leave, shared by every server process.

Each upload is a row (``upload_sessions``) from its first moment: where its bytes wait (the
blob store's handle), once they are complete the SHA-256 they claim, and until when it is
known alive: the process that runs it moves that deadline to now + its grace period at each
clean-up round (every ``grace / 3``, at most 30 s). Any process finds sessions past their
deadline (their process died, or was
stopped with SIGKILL), discards their bytes and ends them; as each session carries its own
deadline, servers with different grace periods on one database do not cut each other's uploads
short (their clocks must agree, as they must for token expiry). So no process ever deletes
bytes another is still writing, a restarting process deletes nothing at start-up, and nothing
is left behind for long.

A committed blob is deleted only when no version and no upload points to it, in two steps that
any process can finish: a row in ``blob_deletions`` marks it, its bytes are deleted, the row is
removed. The same steps reclaim the blobs of deleted versions: the transaction that deletes
them marks each blob no other version uses (``mark_unused``), and the bytes go right after it
commits (``delete_marked``), or in a later clean-up round should that fail or the process die.
Claiming a blob for an upload and marking it take the same lock (``Transaction.lock_blob``),
and an upload never claims a marked blob (it waits until the deletion is over), so a version
never points at deleted bytes.

The upload protocol (``PendingUploads.upload``): session row → bytes written → claim the digest
→ commit the bytes under their content address → one transaction that ends the session and
inserts the version. A failure at any step ends the session at once and deletes what it stored
unless another version or upload uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import TypeVar

from ..storage.blobs import BlobStore, BlobWriter
from ..storage.faults import StorageFault, StorageUnavailable
from ..storage.metadata import MetadataStore, Transaction, new_id, now_us

T = TypeVar("T")

log = logging.getLogger("modelcatalog_server.uploads")

#: How long an upload's process may stay silent before others treat the upload as abandoned.
UPLOAD_GRACE_SECONDS = 600
#: How long a finished upload waits for a deletion of the same blob to end before giving up.
CLAIM_WAIT_SECONDS = 5.0
#: The longest time between two clean-up rounds, whatever the grace period: another server's
#: abandoned uploads are found this soon after their deadline.
MAX_SWEEP_INTERVAL_SECONDS = 30.0
#: Sessions and blob deletions one clean-up round handles at most.
SWEEP_BATCH = 100


class Upload:
    """One upload in progress: its writer, and the steps that turn its bytes into a version."""

    def __init__(self, pending: PendingUploads, writer: BlobWriter) -> None:
        self.id = new_id()
        self.writer = writer
        self._pending = pending
        self._digest: str | None = None
        self.recorded = False

    async def claim(self, digest: str) -> None:
        """Claims the blob ``digest`` for this upload, then commits the bytes under it."""
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS

        def claim(tx: Transaction) -> bool | None:
            tx.lock_blob(digest)
            if tx.blob_being_deleted(digest):
                return None
            return tx.claim_blob(self.id, digest, self._pending.deadline())

        while (claimed := await self._pending.store.write(claim)) is None:
            if time.monotonic() > deadline:
                raise StorageUnavailable(
                    "the same file is being deleted from storage right now; try again"
                )
            await asyncio.sleep(0.05)
        if not claimed:
            raise _abandoned()
        self._digest = digest
        await self.writer.commit()

    def record(self, tx: Transaction) -> None:
        """Ends the session inside the transaction that inserts the version; set ``recorded``
        once that transaction has committed."""
        assert self._digest is not None, "claim before recording"
        tx.lock_blob(self._digest)
        existed, _ = tx.end_upload_session(self.id)
        if not existed:
            raise _abandoned()

    async def clean_up(self) -> None:
        """Ends an upload that did not become a version: its bytes and its session go. When
        the store cannot remove the bytes now (it raises), the session stays, so that a sweep
        discards them once the session is past its deadline."""
        await self.writer.abort()
        await self._pending.discard(self.writer.handle)
        await self._pending.end(self.id, self._digest)


class PendingUploads:
    """The sessions of this process's uploads, and the clean-up every process shares."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        *,
        grace_seconds: float = UPLOAD_GRACE_SECONDS,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.store = store
        self._blobs = blobs
        self._grace_us = int(grace_seconds * 1_000_000)
        self._clock = clock
        self._live: set[str] = set()

    @contextlib.asynccontextmanager
    async def upload(self) -> AsyncIterator[Upload]:
        """A new upload, kept alive while the block runs; unless it was recorded as a version
        by the end, everything it stored is removed (also when the caller is cancelled)."""
        upload = Upload(self, self._blobs.writer())
        await self.store.write(
            lambda tx: tx.insert_upload_session(upload.id, upload.writer.handle, self.deadline())
        )
        self._live.add(upload.id)
        try:
            yield upload
        finally:
            self._live.discard(upload.id)
            if not upload.recorded:
                await asyncio.shield(self._clean_up_quietly(upload))

    async def _clean_up_quietly(self, upload: Upload) -> None:
        try:
            await upload.clean_up()
        except (StorageFault, OSError) as error:  # the sweep of another round finishes it
            log.warning("could not clean up upload %s now: %s", upload.id, error)

    def deadline(self) -> int:
        """Until when a session of this process counts as alive, if not refreshed."""
        return self._clock() + self._grace_us

    async def discard(self, handle: str) -> None:
        """Removes an upload's waiting bytes from the blob store (raises when it cannot)."""
        await self._blobs.discard(handle)

    async def end(self, session_id: str, digest: str | None) -> tuple[bool, bool]:
        """Ends a session and deletes the blob it claimed if nothing else uses it; returns
        whether this call ended the session and whether it deleted a blob."""

        def end(tx: Transaction) -> tuple[bool, list[str]]:
            if digest is not None:
                tx.lock_blob(digest)
            existed, claimed = tx.end_upload_session(session_id)
            return existed, self.mark_unused(tx, [] if claimed is None else [claimed])

        ended, marked = await self.store.write(end)
        for unused in marked:
            await self._delete_blob(unused)
        return ended, bool(marked)

    def mark_unused(self, tx: Transaction, digests: Collection[str]) -> list[str]:
        """Marks for deletion, in ``tx``, each of these blobs that no version and no upload
        uses any more (in digest order, so that two transactions never wait for each other's
        blob locks); returns those marked, whose bytes to delete once ``tx`` has committed."""
        marked = []
        for digest in sorted(set(digests)):
            tx.lock_blob(digest)
            if tx.mark_blob_if_unused(digest, self._clock()):
                marked.append(digest)
        return marked

    async def delete_marked(self, digests: list[str]) -> None:
        """Deletes the bytes of blobs marked by a committed transaction. When the blob store
        fails, the rest stays marked for the next clean-up round (of any process) to finish."""
        for digest in digests:
            try:
                await self._delete_blob(digest)
            except (StorageFault, OSError) as error:
                log.warning("could not delete unused blobs now, a clean-up round will: %s", error)
                return

    async def _delete_blob(self, digest: str) -> None:
        await self._blobs.delete(digest)
        await self.store.write(lambda tx: tx.forget_blob_deletion(digest))

    async def sweep(self) -> int:
        """One clean-up round: keeps this process's sessions alive, ends abandoned ones (of
        any process), finishes pending blob deletions. Returns how many sessions and blobs it
        removed."""
        now = self._clock()
        if self._live:
            live, deadline = sorted(self._live), self.deadline()
            await self.store.write(lambda tx: tx.touch_upload_sessions(live, deadline))
        abandoned = await self.store.read(lambda tx: tx.abandoned_upload_sessions(now, SWEEP_BATCH))
        ended = deleted = 0
        for session_id, handle in abandoned:
            try:
                await self._blobs.discard(handle)
            except ValueError:
                log.error("upload %s names bytes no blob store made: %r", session_id, handle)
            this_ended, this_deleted = await self.end(session_id, None)
            ended += this_ended
            deleted += this_deleted
        deletions = await self.store.read(lambda tx: tx.blobs_being_deleted(SWEEP_BATCH))
        for digest in deletions:
            await self._delete_blob(digest)
        if ended:
            log.info("cleaned up %d abandoned upload(s)", ended)
        return ended + deleted + len(deletions)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Sweeps every ``grace / 3`` (at most ``MAX_SWEEP_INTERVAL_SECONDS``; and once at once)
        while the block runs."""
        task = asyncio.create_task(self._sweep_forever(), name="upload-sweeper")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sweep_forever(self) -> None:
        interval = min(self._grace_us / 3 / 1_000_000, MAX_SWEEP_INTERVAL_SECONDS)
        while True:
            try:
                await self.sweep()
            except (StorageFault, OSError) as error:
                log.warning("upload clean-up round failed, retrying later: %s", error)
            await asyncio.sleep(interval)


def _abandoned() -> StorageUnavailable:
    return StorageUnavailable(
        "the upload took longer than the server's grace period and was cleaned up; try again"
    )
