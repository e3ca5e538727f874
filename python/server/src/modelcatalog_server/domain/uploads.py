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

Resumable uploads: an upload made with a request id whose stream breaks while its bytes arrive
(the client cancelled or left, or went idle) is paused instead: its writer makes every byte
received durable (``BlobWriter.pause``) and its row says how many (``paused_bytes``), until the
end of the resume period (``expires_us``). A stream that sends the same request with that
offset takes the row back (one conditional update, so of two such streams one wins and the
other is told UPLOAD_IN_PROGRESS), reads the kept bytes back to hash them
(``BlobStore.resume``) and goes on. A paused upload nobody resumes is past its deadline like an
abandoned one and any process's sweep removes it. Each user keeps at most
``max_paused_per_user`` paused uploads (pausing one more expires the user's oldest), and one per
request id (the one holding more bytes), so abandoned uploads pin at most that many files per
user, for at most the resume period. An upload whose server process dies is not paused: its
session is abandoned and swept as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

from ..storage.blobs import BlobStore, BlobWriter
from ..storage.faults import StorageFault, StorageUnavailable
from ..storage.metadata import MetadataStore, Transaction, new_id, now_us
from ..storage.records import UploadSessionRecord
from ..tasks import run_to_end
from .errors import Aborted, FailedPrecondition
from .requests import Request, reused

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
#: How long a paused upload's bytes are kept for a client to resume it.
UPLOAD_RESUME_SECONDS = 24 * 60 * 60
#: Paused uploads one user keeps at most.
MAX_PAUSED_UPLOADS_PER_USER = 32


@dataclass(frozen=True)
class ResumeKey:
    """What names a resumable upload: its user and its request (id and fingerprint)."""

    user_id: str
    request: Request

    @property
    def row(self) -> tuple[str, str, str]:
        """(user id, request id, fingerprint), as the session row keeps them."""
        return self.user_id, self.request.id, self.request.fingerprint


@dataclass(frozen=True)
class UploadStatus:
    """What the server holds of a resumable upload that has not been stored."""

    offset: int = 0
    expires_us: int | None = None
    in_progress: bool = False


class Upload:
    """One upload in progress: its writer, and the steps that turn its bytes into a version.

    Set ``interrupted`` when its stream broke while the bytes arrived: one with a ``key`` is
    then paused rather than removed.
    """

    def __init__(
        self,
        pending: PendingUploads,
        writer: BlobWriter,
        *,
        key: ResumeKey | None = None,
        session_id: str | None = None,
    ) -> None:
        self.id = session_id or new_id()
        self.writer = writer
        self.key = key
        self._pending = pending
        self._digest: str | None = None
        self.recorded = False
        self.interrupted = False

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
        if self.key is not None:
            key = self.key
            others = tx.upload_sessions_of_request(key.user_id, key.request.id, 0)
            tx.expire_paused_upload_sessions([other.id for other in others])

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
        resume_seconds: float = UPLOAD_RESUME_SECONDS,
        max_paused_per_user: int = MAX_PAUSED_UPLOADS_PER_USER,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.store = store
        self._blobs = blobs
        self._grace_us = int(grace_seconds * 1_000_000)
        self._resume_us = int(resume_seconds * 1_000_000)
        self._max_paused = max_paused_per_user
        self._clock = clock
        self._live: set[str] = set()

    @contextlib.asynccontextmanager
    async def upload(self, key: ResumeKey | None = None, offset: int = 0) -> AsyncIterator[Upload]:
        """An upload, kept alive while the block runs: a new one, or with ``offset`` the
        paused upload ``key`` that holds that many bytes. Unless it was recorded as a version
        by the end, everything it stored is removed (also when the caller is cancelled), or
        kept for resuming when it was ``interrupted`` and has a key."""
        upload = await self._begun(key, offset)
        self._live.add(upload.id)
        try:
            yield upload
        finally:
            self._live.discard(upload.id)
            if not upload.recorded:
                await run_to_end(self._set_aside(upload))

    async def _begun(self, key: ResumeKey | None, offset: int) -> Upload:
        """A new upload, or the paused one resumed. Its session row exists once the store has
        written it, even if the caller was cancelled meanwhile (``run_to_end``): then it is
        set aside at once, as an interrupted upload, before the cancellation goes on, so that
        no session is left neither live, paused nor removed (the client would be told for a
        whole grace period that a stream still sends it)."""
        return await run_to_end(self._begin(key, offset), undo=self._set_aside_interrupted)

    async def _set_aside_interrupted(self, upload: Upload) -> None:
        upload.interrupted = True
        await self._set_aside(upload)

    async def _begin(self, key: ResumeKey | None, offset: int) -> Upload:
        if offset:
            assert key is not None, "only an upload with a request id is resumed"
            return await self._resumed(key, offset)
        upload = Upload(self, self._blobs.writer(), key=key)
        await self.store.write(
            lambda tx: tx.insert_upload_session(
                upload.id, upload.writer.handle, self.deadline(), key.row if key else None
            )
        )
        return upload

    def status(self, tx: Transaction, key: ResumeKey) -> UploadStatus:
        """What the server holds of the upload ``key`` (inside a transaction that has found
        no version stored for it); INVALID_ARGUMENT (REQUEST_ID_REUSED) when its request id
        names an upload of another request."""
        sessions = self._sessions(tx, key)
        paused = [s for s in sessions if s.paused_bytes is not None]
        best = max(paused, key=lambda s: s.paused_bytes or 0, default=None)
        return UploadStatus(
            offset=(best.paused_bytes or 0) if best else 0,
            expires_us=best.expires_us if best else None,
            in_progress=len(paused) < len(sessions),
        )

    def _sessions(self, tx: Transaction, key: ResumeKey) -> list[UploadSessionRecord]:
        sessions = tx.upload_sessions_of_request(key.user_id, key.request.id, self._clock())
        if any(session.fingerprint != key.request.fingerprint for session in sessions):
            raise reused(key.request)
        return sessions

    async def _resumed(self, key: ResumeKey, offset: int) -> Upload:
        """Takes the paused upload ``key`` holding ``offset`` bytes for this process."""

        def take(tx: Transaction) -> UploadSessionRecord:
            sessions = self._sessions(tx, key)
            paused = [s for s in sessions if s.paused_bytes is not None]
            held = max((s.paused_bytes or 0 for s in paused), default=0)
            if held != offset and len(paused) < len(sessions):
                raise _in_progress()
            if held != offset:
                raise _offset_mismatch(offset, held)
            session = next(s for s in paused if s.paused_bytes == offset)
            if not tx.resume_upload_session(session.id, self._clock(), self.deadline()):
                raise _in_progress()
            return session

        session = await self.store.write(take)
        try:
            writer = await self._blobs.resume(session.blob_handle, offset)
        except (FileNotFoundError, ValueError) as error:
            log.warning("the paused upload %s cannot be resumed: %s", session.id, error)
            await self._discard_quietly(session.id, session.blob_handle)
            await self.end(session.id, None)
            raise _offset_mismatch(offset, 0) from None
        except BaseException:
            expires_us = self._clock() + self._resume_us
            await asyncio.shield(
                self.store.write(lambda tx: tx.pause_upload_session(session.id, offset, expires_us))
            )
            raise
        return Upload(self, writer, key=key, session_id=session.id)

    async def _discard_quietly(self, session_id: str, handle: str) -> None:
        try:
            await self._blobs.discard(handle)
        except (StorageFault, OSError, ValueError) as error:
            log.warning("could not remove the bytes of upload %s now: %s", session_id, error)

    async def _set_aside(self, upload: Upload) -> None:
        """Pauses an interrupted resumable upload; cleans up any other that was not recorded.

        Whatever stops a pause, the upload is then cleaned up rather than left half-set-aside
        until a sweep, with a session its client sees "in progress" meanwhile.
        """
        if upload.key is not None and upload.interrupted and self._resume_us > 0:
            try:
                if await self._pause(upload, upload.key):
                    return
            except (StorageFault, OSError) as error:
                log.warning("could not keep upload %s for resuming: %s", upload.id, error)
            except Exception:  # a bug must not leave the upload in limbo: say so, clean up
                log.exception("could not keep upload %s for resuming", upload.id)
        await self._clean_up_quietly(upload)

    async def _pause(self, upload: Upload, key: ResumeKey) -> bool:
        """Keeps the bytes the upload received for resuming; False when there are none to
        keep, or another paused copy of the request holds as many."""
        if not upload.writer.size:
            return False
        held = await upload.writer.pause()
        now = self._clock()

        def pause(tx: Transaction) -> bool:
            others = [
                s
                for s in tx.upload_sessions_of_request(key.user_id, key.request.id, now)
                if s.id != upload.id and s.paused_bytes is not None
            ]
            if any((s.paused_bytes or 0) >= held for s in others):
                return False
            if not tx.pause_upload_session(upload.id, held, now + self._resume_us):
                return False
            replaced = {s.id for s in others}
            kept = [i for i in tx.paused_upload_sessions(key.user_id, now) if i not in replaced]
            evicted = kept[: max(len(kept) - self._max_paused, 0)]
            tx.expire_paused_upload_sessions([*replaced, *evicted])
            return True

        paused = await self.store.write(pause)
        if paused:
            log.info("upload %s paused with %d bytes, resumable", upload.id, held)
        return paused

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


def _in_progress() -> Aborted:
    return Aborted(
        "another stream is sending this upload right now (or the server has not yet noticed "
        "that an earlier one broke); nothing was changed: ask GetUploadStatus again in a moment",
        reason="UPLOAD_IN_PROGRESS",
    )


def _offset_mismatch(offset: int, held: int) -> FailedPrecondition:
    return FailedPrecondition(
        f"the upload was resumed at byte {offset}, but the server holds {held} bytes of it; "
        f"resume at {held}",
        reason="UPLOAD_OFFSET_MISMATCH",
        metadata={"held_bytes": str(held)},
    )


def _abandoned() -> StorageUnavailable:
    return StorageUnavailable(
        "the upload took longer than the server's grace period and was cleaned up; try again"
    )
