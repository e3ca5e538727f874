"""Local file work for uploads and downloads: naming, hashing, reading and the locked ``.part``
file.

Hashing or writing 1 MiB blocks the event loop for about a millisecond (DESIGN.md §4), so
every bulk read, write, hash and fsync here runs in a worker thread (``asyncio.to_thread``)
and touches at most ``CHUNK_SIZE`` bytes at a time: a multi-GB file never sits in memory.
"""

import asyncio
import contextlib
import errno
import hashlib
import io
import mimetypes
import os
import stat
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Literal, Self

from . import v1
from ._exceptions import DataLoss, FailedPrecondition, StatusCode
from ._transport import CHUNK_SIZE
from .wire import SyncAhead

if TYPE_CHECKING:
    from _hashlib import HASH

if sys.platform != "win32":
    import fcntl

PART_SUFFIX = ".part"
"""A download grows in ``<destination>.part`` and replaces the destination once verified."""

NAME_MAX = 255
"""The longest file name, in bytes, that common file systems (ext4, XFS, APFS, NTFS) allow."""

_MAX_EXTENSION_BYTES = 32
"""A longer "extension" is not one worth keeping when a name is shortened."""

_OPAQUE = "application/octet-stream"
_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}
# Python's own table only: system mime.types files differ by machine and map e.g. ".pt" (PyTorch)
# to "application/vnd.snesdev-page-table".
_MEDIA_TYPES = mimetypes.MimeTypes()


def guess_content_type(file_name: str) -> str:
    """The media type to declare for ``file_name``, the same on every machine.

    A compressed file (``.tar.gz``) is declared as its compression format, since that is what
    its bytes are; unknown extensions (``.onnx``, ``.safetensors``) as opaque bytes.
    """
    media_type, encoding = _MEDIA_TYPES.guess_type(file_name)
    if encoding is not None:
        return _COMPRESSED.get(encoding, _OPAQUE)
    return media_type or _OPAQUE


def _shorten(name: str, limit: int) -> str:
    """``name`` in at most ``limit`` bytes: the stem is cut, a short extension is kept."""
    if len(os.fsencode(name)) <= limit:
        return name
    stem, extension = os.path.splitext(name)
    if len(os.fsencode(extension)) > _MAX_EXTENSION_BYTES:
        stem, extension = name, ""
    room = limit - len(os.fsencode(extension))
    # Cut bytes, dropping a character the cut splits (and any byte that is not UTF-8).
    return os.fsencode(stem)[:room].decode("utf-8", "ignore") + extension


def download_name(file_name: str, model_id: str, version: int) -> str:
    """The local file name for a download named by the server (the version's file name).

    Only the last component is kept, so the file cannot leave its folder, and ':' is dropped
    (a drive or stream on Windows). A name that would be hidden or could replace a dotfile
    (``.bashrc``; also ``.`` and ``..``), or that is empty or unprintable, becomes
    ``<model_id>-v<version>``. The name is shortened so that its ``.part`` file fits in
    ``NAME_MAX`` bytes.
    """
    base = file_name.replace("\\", "/").rpartition("/")[2].replace(":", "")
    if not base or base.startswith(".") or not base.isprintable():
        return f"{model_id}-v{version}"
    return _shorten(base, NAME_MAX - len(PART_SUFFIX))


def part_path(destination: str) -> str:
    """``<destination>.part``, its name shortened if it would exceed ``NAME_MAX`` bytes."""
    folder, name = os.path.split(destination)
    return os.path.join(folder, _shorten(name, NAME_MAX - len(PART_SUFFIX)) + PART_SUFFIX)


def destination_exists(destination: str) -> FileExistsError:
    """The error for a server-named download whose file exists already."""
    return FileExistsError(
        errno.EEXIST,
        "a file with the version's name exists already; pass overwrite=True to replace it",
        destination,
    )


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable where the platform allows syncing a folder."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _naming(file: BinaryIO) -> Iterator[None]:
    """Name the file in an ``OSError`` of reading it: ``read`` errors (EIO) carry no name."""
    try:
        yield
    except OSError as error:
        name = getattr(file, "name", None)
        if error.filename is None and isinstance(name, str):
            error.filename = name
        raise


def _hash_rest(file: BinaryIO, digest: "HASH") -> int:
    """Feed the bytes from the current position to the end into ``digest``; return their count."""
    count = 0
    while block := file.read(CHUNK_SIZE):
        digest.update(block)
        count += len(block)
    return count


@asynccontextmanager
async def open_source(
    source: str | os.PathLike[str] | BinaryIO, file_name: str | None
) -> AsyncIterator[tuple[BinaryIO, str]]:
    """The upload source as a binary file, with the file name to declare for it.

    A path is opened and closed again, and names itself by default. A file object is used
    from its current position and left open for its owner; it has no reliable name (stdin's
    is ``"<stdin>"``), so ``file_name`` is required with it.
    """
    if isinstance(source, str | os.PathLike):
        with await asyncio.to_thread(_open_binary, source, "rb") as file:
            yield file, os.path.basename(os.fspath(source)) if file_name is None else file_name
    elif file_name is None:
        raise ValueError("file_name is required when uploading from a file object")
    else:
        yield source, file_name


_Stamp = tuple[int, int]
"""A regular file's size and modification time (ns): what changes when it is written."""


def _regular_file_status(file: BinaryIO) -> os.stat_result | None:
    """``fstat`` of ``file`` when it is a regular file opened as one (``open(path, "rb")``).

    Only then is ``st_size`` the size of what ``read`` returns: a ``GzipFile`` also has a
    ``fileno``, that of the compressed file under it.
    """
    raw = getattr(file, "raw", file)
    if not isinstance(raw, io.FileIO):
        return None
    status = os.fstat(raw.fileno())
    return status if stat.S_ISREG(status.st_mode) else None


def _stamp(status: os.stat_result) -> _Stamp:
    return status.st_size, status.st_mtime_ns


def _inspect(file: BinaryIO) -> tuple[int | None, _Stamp | None]:
    """The size of the rest of ``file`` where it is known without reading (a regular file, an
    in-memory ``BytesIO``) and, for a regular file, its stamp."""
    if not file.seekable():
        return None, None
    start = file.tell()
    status = _regular_file_status(file)
    if status is not None:
        return max(status.st_size - start, 0), _stamp(status)
    if isinstance(file, io.BytesIO):
        end = file.seek(0, os.SEEK_END)
        file.seek(start)
        return max(end - start, 0), None
    # Another stream may seek to its end only by reading it all (a GzipFile decompresses).
    return None, None


class UploadReader:
    """An upload's source, read once from its current position to its end.

    ``size`` is what the header declares, known before anything is read: from ``fstat`` for a
    regular file, from its length for a ``BytesIO``, else ``None`` (a pipe, stdin, a
    ``GzipFile``). ``chunks`` then reads blocks of at most ``CHUNK_SIZE``
    bytes, each hashed in the worker thread that reads it, so the event loop stays free to
    flush what it sent meanwhile; ``sha256`` is afterwards the digest for the upload's trailer.
    (Reading the next block ahead while one is sent was measured no faster on 2 cores, with
    more CPU per byte, so blocks are read one at a time.)

    A regular file is read up to ``size`` only and checked with ``fstat`` again after its last
    block: if its size or modification time changed meanwhile, ``chunks`` raises
    ``FailedPrecondition`` instead of ending, so the upload is reset and stores nothing. (A
    write that keeps the size and lands within the file system's timestamp granularity of the
    first ``fstat`` goes unseen, as it does for ``make`` and ``rsync``.)
    """

    def __init__(
        self, file: BinaryIO, size: int | None, stamp: _Stamp | None, start: int | None = None
    ) -> None:
        self._file = file
        self.size = size
        self._stamp = stamp
        self._start = start
        self._left = size if stamp is not None else None
        self._digest = hashlib.sha256()

    @classmethod
    async def of(cls, file: BinaryIO) -> Self:
        with _naming(file):
            size, stamp = await asyncio.to_thread(_inspect, file)
            start = await asyncio.to_thread(file.tell) if stamp is not None else None
        return cls(file, size, stamp, start)

    @property
    def rereadable(self) -> bool:
        """Whether ``restart`` can read the file again: a regular file."""
        return self._start is not None

    async def restart(self, offset: int) -> None:
        """Starts reading the file again, after its first ``offset`` bytes (those a server holds
        already), which are read and hashed but not returned by ``chunks``."""
        with _naming(self._file):
            await asyncio.to_thread(self._skip_from_start, offset)

    def _skip_from_start(self, offset: int) -> None:
        assert self._start is not None, "only a regular file is read again"
        assert self.size is not None, "a regular file has a size"
        self._file.seek(self._start)
        self._digest = hashlib.sha256()
        self._left = self.size - offset
        while offset:
            chunk = self._file.read(min(CHUNK_SIZE, offset))
            if not chunk:
                raise self._changed()
            self._digest.update(chunk)
            offset -= len(chunk)

    @property
    def sha256(self) -> str:
        """The SHA-256 of the bytes ``chunks`` has read."""
        return self._digest.hexdigest()

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The rest of the file in blocks; at its end, the check that it did not change."""
        while True:
            with _naming(self._file):
                chunk = await asyncio.to_thread(self._read)
            if not chunk:
                return
            yield chunk

    def _read(self) -> bytes:
        """The next block, hashed; at the end of a regular file, the check that it is
        unchanged."""
        wanted = CHUNK_SIZE if self._left is None else min(CHUNK_SIZE, self._left)
        chunk = self._file.read(wanted) if wanted else b""
        if chunk:
            self._digest.update(chunk)
            if self._left is not None:
                self._left -= len(chunk)
        elif self._stamp is not None:
            self._check_unchanged(self._stamp)
        return chunk

    def _check_unchanged(self, before: _Stamp) -> None:
        status = _regular_file_status(self._file)
        if status is None or _stamp(status) != before:
            raise self._changed()

    def _changed(self) -> FailedPrecondition:
        name = getattr(self._file, "name", None)
        what = name if isinstance(name, str) else "the file"
        return FailedPrecondition(
            StatusCode.FAILED_PRECONDITION,
            f"{what} changed while it was being uploaded (its size or modification time is "
            "not what it was when the upload started); nothing was stored. Upload it again "
            "once nothing writes to it.",
        )


_BinaryMode = Literal["rb", "a+b"]

_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}
"""``flock`` errors of file systems that do not support locks."""


def _open_binary(path: str | os.PathLike[str], mode: _BinaryMode) -> BinaryIO:
    """``open``, typed as binary: through ``asyncio.to_thread`` mypy cannot pick that overload."""
    return open(path, mode)


def _lock(file: BinaryIO, destination: str) -> None:
    """Lock ``file`` exclusively, or fail at once if another download holds it.

    On a file system without locks, and on Windows, the download goes ahead unlocked.
    """
    if sys.platform == "win32":
        return
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FailedPrecondition(
            StatusCode.FAILED_PRECONDITION,
            f"another download to {destination} is in progress;"
            " wait for it to finish, or download to another file",
        ) from None
    except OSError as error:
        if error.errno not in _NO_LOCKS:
            raise


def _is_at(file: BinaryIO, path: str) -> bool:
    """Whether ``path`` still names the open ``file`` (not renamed or removed meanwhile)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(file.fileno())
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _open_locked(path: str, destination: str) -> BinaryIO:
    """Open (or create) ``path`` to append to it, locked for as long as it stays open.

    The download that held the lock may have renamed or removed the file between our
    ``open`` and our lock; then the locked file is no longer the ``.part`` file and it is
    opened again.
    """
    while True:
        file = _open_binary(path, "a+b")
        try:
            _lock(file, destination)
            if _is_at(file, path):
                file.seek(0)
                return file
        except BaseException:
            file.close()
            raise
        file.close()


class PartialDownload:
    """The ``<destination>.part`` file a download is written to until its SHA-256 checks out.

    Entering opens it and locks it (``flock``) until exit, so that a second download to the
    same destination fails at once with ``FailedPrecondition`` instead of appending to the
    same file. It keeps what an interrupted download left (``resume``) or empties it, and
    hashes the kept bytes; ``size`` is then the offset to ask the server for. An interrupted
    download leaves the file for the next one to resume, unless a flush of it failed: the
    kernel may then have dropped bytes that the file still seems to hold (it reports a failed
    writeback once), so the file is deleted instead. ``commit`` moves it onto the
    destination only when size and digest match the version, and deletes it otherwise, so a
    damaged file never reaches the destination. With ``replace=False`` an existing
    destination is kept and ``commit`` raises ``FileExistsError``.
    """

    def __init__(self, destination: str, *, resume: bool, replace: bool = True) -> None:
        self.destination = destination
        self.path = part_path(destination)
        self.size = 0
        self._resume = resume
        self._replace = replace
        self._digest = hashlib.sha256()
        self._settled = False
        """Whether the file was renamed onto the destination or deleted."""
        self._writing: asyncio.Future[None] | None = None
        """The worker thread's write of the last bytes handed to ``append``."""
        self._sync: SyncAhead
        """Syncs the file while it grows, so that ``commit``'s fsync has little left to do."""
        self._flush_failed = False
        """Whether a flush of the file failed: it is then deleted, never resumed from."""

    async def __aenter__(self) -> Self:
        self._file = await asyncio.to_thread(_open_locked, self.path, self.destination)
        try:
            if self._resume:
                self.size = await asyncio.to_thread(_hash_rest, self._file, self._digest)
            else:
                await asyncio.to_thread(self._file.truncate, 0)
        except BaseException:
            await asyncio.to_thread(self._file.close)
            raise
        self._sync = self._syncing()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Shielded: a second cancellation must not leave the file open, and its lock held.
        await asyncio.shield(self._settle_and_close(report_errors=exc_type is None))

    async def _settle_and_close(self, *, report_errors: bool) -> None:
        """Close the file after its last write; raise an error of writing only when there is
        no other error to report (the download's own comes first)."""
        try:
            try:
                await self.settle()
            except BaseException:
                # A sync still running needs the file open; the writing's error comes first.
                with contextlib.suppress(Exception):
                    await self._synced()
                raise
            await self._synced()
        except Exception:
            if report_errors:
                raise
        finally:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        """Close the file, which releases the lock; before that, remove it if it holds
        nothing to resume (e.g. after ``PermissionDenied``) or nothing to trust."""
        with self._file:
            if not self._settled and (self._flush_failed or self._file.seek(0, os.SEEK_END) == 0):
                os.remove(self.path)

    async def restart(self) -> None:
        """Drop the kept bytes, to download from offset 0 after all."""
        await self.settle()
        await self._synced()
        await asyncio.to_thread(self._file.truncate, 0)
        self._digest = hashlib.sha256()
        self.size = 0
        self._sync = self._syncing()

    async def _synced(self) -> None:
        """Wait until no sync of the file runs; raise the error the last one met."""
        with self._flushing():
            await self._sync.settled()

    @contextlib.contextmanager
    def _flushing(self) -> Iterator[None]:
        """Around a flush of the file or the wait for one: an error marks it untrustworthy."""
        try:
            yield
        except OSError:
            self._flush_failed = True
            raise

    def _syncing(self) -> SyncAhead:
        """Syncs the file in steps from its present size on, in the event loop's default
        worker threads, beside the writes."""
        loop = asyncio.get_running_loop()
        return SyncAhead(
            self._file.fileno(),
            lambda flush, descriptor: loop.run_in_executor(None, flush, descriptor),
            synced_bytes=self.size,
        )

    async def append(self, chunk: bytes) -> None:
        """Hand the next bytes to a worker thread that appends them (whatever the read
        position) and hashes them, once it has written those handed over before: the download
        receives its next chunk meanwhile (8% more MiB/s on loopback). ``size`` counts them at
        once; an error of writing them is raised by the next ``append`` or by ``settle``."""
        await self.settle()
        with self._flushing():
            self._sync.written(self.size)
        self._writing = asyncio.get_running_loop().run_in_executor(None, self._append, chunk)
        self.size += len(chunk)

    async def settle(self) -> None:
        """Wait until the bytes handed to ``append`` are written and hashed; raise what
        writing them raised. ``holds`` and a resumed download's offset need them settled."""
        if self._writing is not None:
            await asyncio.shield(self._writing)  # a cancelled wait leaves it for __aexit__
            self._writing = None

    def _append(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._digest.update(chunk)

    def holds(self, version: v1.ModelVersion) -> bool:
        """Whether the file is exactly ``version``'s file: its size and SHA-256 (once
        settled)."""
        return self.size == version.size_bytes and self._digest.hexdigest() == version.sha256

    async def commit(self, version: v1.ModelVersion) -> None:
        """Move the file onto the destination, durably, if it is exactly ``version``'s file.

        Otherwise delete it, since resuming from bad bytes can never succeed, and raise
        ``DataLoss``. The lock is still held, so no other download can write to the file
        until it has been renamed.
        """
        await self.settle()
        await self._synced()
        # Kept as the write in progress: after a cancelled wait, the file is closed only once
        # its fsync and rename are done with it.
        self._writing = asyncio.get_running_loop().run_in_executor(None, self._commit, version)
        await self.settle()

    def _commit(self, version: v1.ModelVersion) -> None:
        if not self.holds(version):
            os.remove(self.path)
            self._settled = True
            sha256 = self._digest.hexdigest()
            raise DataLoss(
                StatusCode.DATA_LOSS,
                f"the download of version {version.version} of model {version.model_id} is"
                f" damaged: got {self.size} bytes with SHA-256 {sha256}, expected"
                f" {version.size_bytes} bytes with SHA-256 {version.sha256}; deleted"
                f" {self.path}, {self.destination} is unchanged. Download it again.",
                reason="SIZE_MISMATCH" if self.size != version.size_bytes else "DIGEST_MISMATCH",
            )
        if not self._replace and os.path.lexists(self.destination):
            raise destination_exists(self.destination)
        self._file.flush()
        with self._flushing():
            os.fsync(self._file.fileno())
        os.replace(self.path, self.destination)
        self._settled = True
        fsync_dir(os.path.dirname(self.destination) or os.curdir)
