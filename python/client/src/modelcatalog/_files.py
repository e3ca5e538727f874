"""Local file work for uploads and downloads: naming, hashing, reading and the ``.part`` file.

Hashing or writing 1 MiB blocks the event loop for about a millisecond (DESIGN.md §4), so
every bulk read, write, hash and fsync here runs in a worker thread (``asyncio.to_thread``)
and touches at most ``CHUNK_SIZE`` bytes at a time: a multi-GB file never sits in memory.
"""

import asyncio
import hashlib
import mimetypes
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Literal, Self

from grpclib.const import Status

from . import v1
from ._exceptions import DataLoss
from ._transport import CHUNK_SIZE

if TYPE_CHECKING:
    from _hashlib import HASH

PART_SUFFIX = ".part"
"""A download grows in ``<destination>.part`` and replaces the destination once verified."""

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


def safe_file_name(name: str, fallback: str) -> str:
    """The last component of a server-given file name, so a download cannot leave its folder.

    The server already forbids separators, but the client does not rely on that; ``fallback``
    is used when nothing usable remains (empty, ``.`` or ``..``).
    """
    base = name.replace("\\", "/").rpartition("/")[2]
    return fallback if base in {"", ".", ".."} or "\0" in base else base


def _hash_rest(file: BinaryIO, digest: "HASH") -> int:
    """Feed the bytes from the current position to the end into ``digest``; return their count."""
    count = 0
    while block := file.read(CHUNK_SIZE):
        digest.update(block)
        count += len(block)
    return count


def _measure(file: BinaryIO) -> tuple[int, str]:
    """Size and SHA-256 of the bytes from the current position on; the position is kept."""
    start = file.tell()
    digest = hashlib.sha256()
    size = _hash_rest(file, digest)
    file.seek(start)
    return size, digest.hexdigest()


async def measure(file: BinaryIO) -> tuple[int | None, str]:
    """What an upload header declares: size and SHA-256 of the rest of ``file``.

    A stream that cannot seek (a pipe, stdin) cannot be read twice, so it declares neither
    (``None``, ``""``) and the server computes both from the bytes it receives.
    """
    if not file.seekable():
        return None, ""
    return await asyncio.to_thread(_measure, file)


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


async def read_chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    """The rest of ``file`` in blocks of at most ``CHUNK_SIZE`` bytes, read until end of file."""
    while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
        yield chunk


_BinaryMode = Literal["rb", "a+b", "w+b"]


def _open_binary(path: str | os.PathLike[str], mode: _BinaryMode) -> BinaryIO:
    """``open``, typed as binary: through ``asyncio.to_thread`` mypy cannot pick that overload."""
    return open(path, mode)


class PartialDownload:
    """The ``<destination>.part`` file a download is written to until its SHA-256 checks out.

    Entering opens it, keeping what an interrupted download left (``resume``) or emptying it,
    and hashes the kept bytes; ``size`` is then the offset to ask the server for. An
    interrupted download leaves the file for the next one to resume; ``commit`` moves it onto
    the destination only when size and digest match the version, and deletes it otherwise, so
    a damaged file never reaches the destination.
    """

    def __init__(self, destination: str, *, resume: bool) -> None:
        self.destination = destination
        self.path = destination + PART_SUFFIX
        self.size = 0
        self._mode: _BinaryMode = "a+b" if resume else "w+b"
        self._digest = hashlib.sha256()

    async def __aenter__(self) -> Self:
        self._file = await asyncio.to_thread(_open_binary, self.path, self._mode)
        self._file.seek(0)
        self.size = await asyncio.to_thread(_hash_rest, self._file, self._digest)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self._close, complete=exc_value is None)

    def _close(self, *, complete: bool) -> None:
        """Close the file: a complete download forced to disk before it is renamed, a failed
        one removed if it holds nothing to resume (e.g. after ``PermissionDenied``)."""
        with self._file:
            if complete:
                self._file.flush()
                os.fsync(self._file.fileno())
        if not complete and self.size == 0:
            os.remove(self.path)

    async def restart(self) -> None:
        """Drop the kept bytes, to download from offset 0 after all."""
        await asyncio.to_thread(self._file.truncate, 0)
        self._digest = hashlib.sha256()
        self.size = 0

    async def append(self, chunk: bytes) -> None:
        """Write the next bytes (appending, whatever the read position) and hash them."""
        await asyncio.to_thread(self._append, chunk)
        self.size += len(chunk)

    def _append(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._digest.update(chunk)

    def commit(self, version: v1.ModelVersion) -> None:
        """Move the closed file onto the destination if it is exactly ``version``'s file.

        Otherwise delete it, since resuming from bad bytes can never succeed, and raise
        ``DataLoss``.
        """
        sha256 = self._digest.hexdigest()
        if self.size == version.size_bytes and sha256 == version.sha256:
            os.replace(self.path, self.destination)
            return
        os.remove(self.path)
        raise DataLoss(
            Status.DATA_LOSS,
            f"the download of version {version.version} of model {version.model_id} is damaged:"
            f" got {self.size} bytes with SHA-256 {sha256}, expected {version.size_bytes} bytes"
            f" with SHA-256 {version.sha256}; deleted {self.path}, {self.destination} is"
            " unchanged. Download it again.",
            reason="SIZE_MISMATCH" if self.size != version.size_bytes else "DIGEST_MISMATCH",
        )
