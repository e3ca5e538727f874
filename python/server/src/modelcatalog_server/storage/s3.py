"""The S3-compatible blob store (``--blob-url s3://bucket/prefix``), for scale-out.

Keys under the prefix::

    sha256/<digest>     committed blobs, by content address
    uploads/<handle>    an upload's bytes until commit (a multipart upload, then an object)
    probes/<random>     the writability probe, removed at once

An upload streams as a multipart upload to ``uploads/<handle>`` in parts of at least
``MIN_PART_BYTES`` (larger when the largest allowed blob needs more than S3's 10,000 parts):
one part is sent while the next is gathered, so an upload holds about two parts however fast
its client sends. Each part is hashed (SHA-256) in a worker thread just before it is sent, never
on the event loop. An upload smaller than one part is a single PUT at ``finish``. The digest is
known only at ``finish``, so ``commit`` copies the finished object to ``sha256/<digest>``
inside the store (CopyObject, or UploadPartCopy above CopyObject's 5 GiB) and then removes it:
a blob appears under its content address only complete and verified. A failed or cancelled
upload aborts its multipart upload and removes its object; the handle alone lets any process
do the same for an upload whose process died (``discard``). An interrupted commit copy above
5 GiB can leave a multipart upload under ``sha256/``: give the bucket a lifecycle rule that
aborts incomplete multipart uploads after a day.

A paused upload (``pause``, a resumable upload whose stream broke) is finished like a complete
one, so ``uploads/<handle>`` holds every byte received: parts in the store cannot be read
before their multipart upload completes, and the SHA-256 of a resumed upload needs them read
back. ``resume`` starts a new multipart upload to the same key with the object's whole parts
copied inside the store (UploadPartCopy) while it reads the object back to hash it, and keeps
its last, partial part in memory to send with the next bytes; completing overwrites the object.

Downloads are one ranged GET from the requested offset, read in blocks of READ_CHUNK_BYTES with
the next block read while the current one is sent; if the connection breaks mid-body, the read
resumes with a new ranged GET where it stopped.

An unreachable store, timeouts, throttling, 5xx answers and refused credentials are
``StorageUnavailable`` (UNAVAILABLE for the client, never INTERNAL); a missing blob is
``FileNotFoundError``, as for local files.

Client, chosen by measurement (``python -m bench.s3_clients``: SeaweedFS ``weed mini`` on
loopback, one 512 MiB object, 8 MiB parts with two in flight, median of 3; CPU is this process's
in all threads, the Rust runtime's included)::

    client                     upload MiB/s  CPU s/GiB   download MiB/s  CPU s/GiB
    aiobotocore                        61        2.5              622        0.5
    obstore                            67        1.2              584        0.5
    S3BlobStore (aiobotocore,          47        1.8              605        0.5
      SHA-256 and commit copy)

Uploads are bound by SeaweedFS itself (12-13 CPU s/GiB of its own on this 2-core machine; the
commit copy adds about 40% to that); in other runs (256 MiB) obstore uploaded 10-35%
faster (95 against 71-86 MiB/s), always with half the client CPU, and downloaded alike or slower.
aiobotocore is used because this store needs what obstore does not expose: the multipart
upload's id, AbortMultipartUpload and ListMultipartUploads (so any process can abort an upload
by its handle) and UploadPartCopy (commits above 5 GiB). Parts of 16 MiB uploaded 13-20% faster
than 8 MiB through this store on SeaweedFS, for twice the memory per upload; 8 MiB is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import aiohttp
import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from ..tasks import run_to_end
from .blobs import PROBE_BYTES, READ_CHUNK_BYTES, BlobStore, BlobWriter
from .faults import StorageUnavailable
from .locations import parse_s3_url

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import (
        CompletedPartTypeDef,
        ListMultipartUploadsRequestTypeDef,
    )

log = logging.getLogger("modelcatalog_server.storage")

MiB = 1 << 20
GiB = 1 << 30
#: The smallest part an upload sends (S3 requires 5 MiB for all but the last); see the module
#: docstring for the measurement.
MIN_PART_BYTES = 8 * MiB
#: S3's limit on the parts of one multipart upload.
MAX_PARTS = 10_000
#: CopyObject's limit; larger blobs are committed by a multipart copy.
MAX_COPY_OBJECT_BYTES = 5 * GiB
#: The size of each part of a multipart copy, and how many are copied at once.
COPY_PART_BYTES = 1 * GiB
COPY_CONCURRENCY = 4
#: Open connections to the store: downloads hold one each while they stream.
MAX_CONNECTIONS = 512
#: Threads that hash parts: hashing on more threads than cores gains nothing.
HASH_THREADS = 4
#: Seconds to connect, and to wait for an answer (a commit copy of 1 GiB must fit).
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 120
#: Attempts per request (botocore's "standard" retry mode, with backoff).
MAX_ATTEMPTS = 3
#: New ranged GETs a download makes after its connection broke mid-body.
READ_RESUMES = 3
#: Where the store is when the settings name no region.
DEFAULT_REGION = "us-east-1"

_HANDLE = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Error codes meaning the store cannot serve this server now (overloaded, down, or refusing
#: its credentials): not the client's fault, and not a bug.
_UNAVAILABLE_CODES = frozenset(
    {
        "AccessDenied",
        "ExpiredToken",
        "InternalError",
        "InvalidAccessKeyId",
        "InvalidToken",
        "NoSuchBucket",
        "RequestTimeTooSkewed",
        "RequestTimeout",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "SlowDown",
    }
)
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
#: Errors of the network or the HTTP client, as opposed to answers of the store.
_NETWORK_ERRORS = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.NoCredentialsError,
    aiohttp.ClientError,
    ConnectionError,
    TimeoutError,
)


def part_bytes_for(max_blob_bytes: int) -> int:
    """The part size that fits a blob of ``max_blob_bytes`` in S3's 10,000 parts (whole MiB)."""
    needed = -(-max_blob_bytes // MAX_PARTS)
    return max(MIN_PART_BYTES, -(-needed // MiB) * MiB)


@dataclass(frozen=True)
class S3Settings:
    """Where the store is and how to sign, from the usual AWS environment variables."""

    endpoint_url: str | None
    region: str

    @classmethod
    def from_environment(cls) -> S3Settings:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint is not None:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"the S3 endpoint {endpoint!r} (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) "
                    "must be an http:// or https:// URL"
                )
        region = (
            os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        )
        return cls(endpoint_url=endpoint or None, region=region)


async def open_s3_blob_store(url: str, *, max_blob_bytes: int) -> S3BlobStore:
    """The S3 store that ``url`` (``s3://bucket/prefix``) names, for blobs of up to
    ``max_blob_bytes``; endpoint, region and credentials come from the AWS settings.

    Raises ValueError with a message for the operator when the URL or the settings are wrong.
    Close it with ``close()``.
    """
    bucket, prefix = parse_s3_url(url)
    settings = S3Settings.from_environment()
    session = get_session()
    if await session.get_credentials() is None:
        raise ValueError(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or another "
            "AWS credential source) for the blob URL " + repr(url)
        )
    config = AioConfig(
        region_name=settings.region,
        # Path-style addresses: S3-compatible stores at their own endpoint rarely have the
        # wildcard DNS that virtual-hosted addresses need.
        s3={
            "addressing_style": "path" if settings.endpoint_url else "auto",
            # botocore would otherwise hash every part on the event loop to sign plain-HTTP
            # bodies; the blob's own SHA-256 is checked on receipt.
            "payload_signing_enabled": False,
        },
        # No CRC32 of every body computed or checked on the event loop either.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_pool_connections=MAX_CONNECTIONS,
    )
    resources = AsyncExitStack()
    client = await resources.enter_async_context(
        session.create_client("s3", endpoint_url=settings.endpoint_url, config=config)
    )
    return S3BlobStore(client, bucket, prefix, part_bytes_for(max_blob_bytes), resources)


class S3BlobStore(BlobStore):
    """Blobs as objects in one bucket under one key prefix."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        part_bytes: int,
        resources: AsyncExitStack,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = part_bytes
        self._resources = resources
        self._threads = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="s3-hash")
        #: Clean-ups of aborted uploads, kept referenced until done (they outlive cancellation).
        self._clean_ups: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Waits for pending clean-ups, then closes the client's connections."""
        if self._clean_ups:
            await asyncio.wait(self._clean_ups)
        await self._resources.aclose()
        self._threads.shutdown()

    def blob_key(self, sha256: str) -> str:
        """Where a committed blob lives."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 digest: {sha256!r}")
        return f"{self.prefix}sha256/{sha256}"

    def upload_key(self, handle: str) -> str:
        """Where the bytes of the upload ``handle`` wait until commit."""
        if not _HANDLE.fullmatch(handle):
            raise ValueError(f"not a handle of this blob store: {handle!r}")
        return f"{self.prefix}uploads/{handle}"

    async def hashed_part(self, hasher: Any, chunks: list[bytes]) -> bytes:
        """``chunks`` added to ``hasher`` and joined into one body, in a worker thread."""

        def hash_and_join() -> bytes:
            for chunk in chunks:
                hasher.update(chunk)
            return b"".join(chunks)

        return await asyncio.get_running_loop().run_in_executor(self._threads, hash_and_join)

    def writer(self) -> BlobWriter:
        return _S3Writer(self, uuid.uuid4().hex)

    async def resume(self, handle: str, size: int) -> BlobWriter:
        writer = _S3Writer(self, handle)
        await writer.take_over(size)
        return writer

    def read(self, sha256: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        return self.blocks(self.blob_key(sha256), offset)

    async def blocks(self, key: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """The object's blocks; the next one is read while the consumer handles the current
        one, so a reader holds at most two blocks."""
        body = await self._open_body(key, offset)
        if body is None:
            return
        ahead = asyncio.ensure_future(_read_block(body))
        resumes = 0
        try:
            while True:
                try:
                    block = await ahead
                except _NETWORK_ERRORS as error:
                    if resumes == READ_RESUMES:
                        _raise_fault(error, f"reading {key}")
                    resumes += 1
                    log.info("reading %s again from byte %d: %s", key, offset, error)
                    body.close()
                    body = await self._open_body(key, offset)
                    if body is None:
                        return
                    ahead = asyncio.ensure_future(_read_block(body))
                    continue
                if not block:
                    return
                offset += len(block)
                ahead = asyncio.ensure_future(_read_block(body))
                yield block
        finally:
            _drop(ahead)
            if body is not None:
                body.close()

    async def _open_body(self, key: str, offset: int) -> Any:
        """The body of a GET from ``offset`` on; None when the offset is at or past the end
        (S3 answers InvalidRange there, even at offset 0 of an empty object)."""
        try:
            with self.faults(f"reading {key}"):
                answer = await self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={offset}-"
                )
        except botocore.exceptions.ClientError as error:
            code = _code(error)
            if code in _MISSING_CODES:
                raise FileNotFoundError(f"no blob {key} in bucket {self.bucket}") from None
            if code == "InvalidRange":
                return None
            raise
        return answer["Body"]

    async def delete(self, sha256: str) -> None:
        with self.faults(f"deleting blob {sha256}"):
            await self.client.delete_object(Bucket=self.bucket, Key=self.blob_key(sha256))

    async def discard(self, handle: str) -> None:
        key = self.upload_key(handle)
        with self.faults(f"discarding upload {handle}"):
            async for upload_id in self._multipart_uploads(key):
                with contextlib.suppress(botocore.exceptions.ClientError):
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def _multipart_uploads(self, key: str) -> AsyncIterator[str]:
        """The ids of the multipart uploads in progress to exactly ``key``."""
        request: ListMultipartUploadsRequestTypeDef = {"Bucket": self.bucket, "Prefix": key}
        while True:
            page = await self.client.list_multipart_uploads(**request)
            for upload in page.get("Uploads", []):
                if upload.get("Key") == key and "UploadId" in upload:
                    yield upload["UploadId"]
            if not page.get("IsTruncated"):
                return
            request["KeyMarker"] = page.get("NextKeyMarker", "")
            request["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    async def check_writable(self) -> None:
        """Puts and deletes a small object; raises ConnectionError or PermissionError (both
        OSError, as the interface says) when that fails."""
        key = f"{self.prefix}probes/{uuid.uuid4().hex}"
        try:
            with self.faults("probing the bucket"):
                await self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(PROBE_BYTES))
                await self.client.delete_object(Bucket=self.bucket, Key=key)
        except StorageUnavailable as error:
            raise ConnectionError(str(error)) from error
        except botocore.exceptions.ClientError as error:
            raise PermissionError(f"the bucket {self.bucket} refused a probe: {error}") from error

    def keep_until_done(self, clean_up: asyncio.Task[None]) -> None:
        """Holds ``clean_up`` until it finishes, so ``close`` can wait for it."""
        self._clean_ups.add(clean_up)
        clean_up.add_done_callback(self._clean_ups.discard)

    @contextlib.contextmanager
    def faults(self, action: str) -> Iterator[None]:
        """Turns what means "the store cannot serve now" while ``action`` into
        StorageUnavailable; other errors (a missing key, a bug) pass unchanged."""
        try:
            yield
        except botocore.exceptions.ClientError as error:
            if _code(error) in _UNAVAILABLE_CODES or _status(error) >= 500:
                _raise_fault(error, f"{action} in bucket {self.bucket}")
            raise
        except _NETWORK_ERRORS as error:
            _raise_fault(error, f"{action} in bucket {self.bucket}")


class _S3Writer(BlobWriter):
    """Sends one part while the event loop gathers the next; hashes each part in a worker
    thread just before sending it, so parts are hashed in order."""

    def __init__(self, store: S3BlobStore, handle: str) -> None:
        self._store = store
        self._handle = handle
        self._key = store.upload_key(handle)
        self._hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._sending: asyncio.Task[None] | None = None
        self._digest: str | None = None
        self._sent_anything = False  # a request that may have left bytes in the store
        self._committed = False
        self._uploaded_removed = False
        self._aborted = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def handle(self) -> str:
        return self._handle

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._size += len(data)
        if self._pending_bytes >= self._store.part_bytes:
            await self._sent()
            self._sending = asyncio.ensure_future(self._send_part(self._batch()))

    async def take_over(self, size: int) -> None:
        """Continues the paused upload whose object holds ``size`` bytes: a new multipart
        upload to the same key gets the object's whole parts by UploadPartCopy (inside the
        store) while the object is read back and hashed; the rest of it (less than a part) is
        kept to be sent with the next bytes. The object stays until the new upload completes
        over it, so a failure on the way leaves the paused bytes as they were."""
        store = self._store
        try:
            with store.faults(f"reading {self._key}"):
                head = await store.client.head_object(Bucket=store.bucket, Key=self._key)
        except botocore.exceptions.ClientError as error:
            if _code(error) in _MISSING_CODES:
                raise FileNotFoundError(f"no paused upload {self._handle}") from None
            raise
        if head["ContentLength"] != size:
            raise FileNotFoundError(
                f"the paused upload {self._handle} holds {head['ContentLength']} bytes, not {size}"
            )
        self._sent_anything = True
        whole_parts = size - size % store.part_bytes
        copying = asyncio.ensure_future(self._copy_whole_parts(whole_parts))
        try:
            read = 0
            async for block in store.blocks(self._key):
                whole = block[: max(whole_parts - read, 0)]
                rest = block[len(whole) :]
                if whole:
                    await store.hashed_part(self._hash, [whole])
                if rest:  # hashed with the part it is sent in, as any pending bytes are
                    self._pending.append(rest)
                    self._pending_bytes += len(rest)
                read += len(block)
            await copying
        finally:
            _drop(copying)
        if read != size:
            raise FileNotFoundError(f"the paused upload {self._handle} changed while read back")
        self._size = size

    async def _copy_whole_parts(self, length: int) -> None:
        """Starts the multipart upload with the first ``length`` bytes of the paused object, in
        parts of the store's part size."""
        if not length:
            return
        store = self._store
        part_bytes = store.part_bytes
        with store.faults(f"copying {self._key}"):
            created = await store.client.create_multipart_upload(Bucket=store.bucket, Key=self._key)
            self._upload_id = created["UploadId"]
            turns = asyncio.Semaphore(COPY_CONCURRENCY)

            async def copy_part(number: int, start: int) -> CompletedPartTypeDef:
                async with turns:
                    answer = await store.client.upload_part_copy(
                        Bucket=store.bucket,
                        Key=self._key,
                        UploadId=created["UploadId"],
                        PartNumber=number,
                        CopySource={"Bucket": store.bucket, "Key": self._key},
                        CopySourceRange=f"bytes={start}-{start + part_bytes - 1}",
                    )
                return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

            starts = range(0, length, part_bytes)
            self._parts = list(
                await asyncio.gather(
                    *(copy_part(number, start) for number, start in enumerate(starts, 1))
                )
            )

    async def _sent(self) -> None:
        """Waits until the part being sent is stored; raises what sending it raised."""
        if self._sending is not None:
            sending, self._sending = self._sending, None
            await sending

    def _batch(self) -> list[bytes]:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        return batch

    async def _send_part(self, chunks: list[bytes]) -> None:
        store = self._store
        body = await store.hashed_part(self._hash, chunks)
        del chunks[:]
        with store.faults(f"uploading {self._key}"):
            if self._upload_id is None:
                self._sent_anything = True
                created = await store.client.create_multipart_upload(
                    Bucket=store.bucket, Key=self._key
                )
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            answer = await store.client.upload_part(
                Bucket=store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def finish(self) -> str:
        await self._sent()
        store = self._store
        if self._upload_id is None:
            body = await store.hashed_part(self._hash, self._batch())
            self._sent_anything = True
            with store.faults(f"uploading {self._key}"):
                await run_to_end(
                    store.client.put_object(Bucket=store.bucket, Key=self._key, Body=body)
                )
        else:
            if self._pending:
                await self._send_part(self._batch())
            with store.faults(f"completing {self._key}"):
                await run_to_end(
                    store.client.complete_multipart_upload(
                        Bucket=store.bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
                )
        self._digest = self._hash.hexdigest()
        return self._digest

    async def commit(self) -> None:
        if self._digest is None:
            raise RuntimeError("commit before finish")
        store = self._store
        target = store.blob_key(self._digest)
        with store.faults(f"storing {target}"):
            await run_to_end(self._copy_unless_stored(target))
        self._committed = True
        await self._remove_uploaded()

    async def _copy_unless_stored(self, target: str) -> None:
        """Copies the finished upload to ``target`` unless that blob is stored already."""
        store = self._store
        if await self._exists(target):
            return
        if self._size <= MAX_COPY_OBJECT_BYTES:
            await store.client.copy_object(
                Bucket=store.bucket,
                Key=target,
                CopySource={"Bucket": store.bucket, "Key": self._key},
            )
        else:
            await self._copy_in_parts(target)

    async def _exists(self, key: str) -> bool:
        try:
            await self._store.client.head_object(Bucket=self._store.bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            if _code(error) in _MISSING_CODES:
                return False
            raise
        return True

    async def _copy_in_parts(self, target: str) -> None:
        """Copies the finished upload to ``target`` with UploadPartCopy, a few parts at once."""
        store = self._store
        created = await store.client.create_multipart_upload(Bucket=store.bucket, Key=target)
        upload_id = created["UploadId"]
        turns = asyncio.Semaphore(COPY_CONCURRENCY)

        async def copy_part(number: int, start: int) -> CompletedPartTypeDef:
            end = min(start + COPY_PART_BYTES, self._size) - 1
            async with turns:
                answer = await store.client.upload_part_copy(
                    Bucket=store.bucket,
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": store.bucket, "Key": self._key},
                    CopySourceRange=f"bytes={start}-{end}",
                )
            return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

        try:
            starts = range(0, self._size, COPY_PART_BYTES)
            parts = await asyncio.gather(
                *(copy_part(number, start) for number, start in enumerate(starts, 1))
            )
            await store.client.complete_multipart_upload(
                Bucket=store.bucket,
                Key=target,
                UploadId=upload_id,
                MultipartUpload={"Parts": list(parts)},
            )
        except BaseException:
            await asyncio.shield(
                store.client.abort_multipart_upload(
                    Bucket=store.bucket, Key=target, UploadId=upload_id
                )
            )
            raise

    async def _remove_uploaded(self) -> None:
        """Deletes the finished upload once its blob is committed; a failure is only logged
        (``abort`` or a later ``discard`` of the handle tries again)."""
        try:
            with self._store.faults(f"removing {self._key}"):
                await self._store.client.delete_object(Bucket=self._store.bucket, Key=self._key)
            self._uploaded_removed = True
        except StorageUnavailable as error:
            log.warning("the committed upload %s stays for now: %s", self._handle, error)

    async def abort(self) -> None:
        """Stops sending and removes the upload's bytes from the store. The clean-up runs on
        even when the caller is cancelled again; a store that cannot be reached is logged, and
        the upload is left to a later ``discard`` of its handle."""
        if self._aborted:
            return
        self._aborted = True
        self._pending, self._pending_bytes = [], 0
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.cancel()
        if self._committed:
            left_in_store = not self._uploaded_removed
        else:
            left_in_store = self._sent_anything or sending is not None
        if left_in_store:
            clean_up = asyncio.ensure_future(self._clean_up(sending))
            self._store.keep_until_done(clean_up)
            await asyncio.shield(clean_up)

    async def _clean_up(self, sending: asyncio.Task[None] | None) -> None:
        if sending is not None:
            with contextlib.suppress(BaseException):
                await sending
        try:
            await self._store.discard(self._handle)
        except StorageUnavailable as error:
            log.warning("upload %s is left for a later discard: %s", self._handle, error)


async def _read_block(body: Any) -> bytes:
    """Up to READ_CHUNK_BYTES of ``body``: fewer only at its end."""
    pieces: list[bytes] = []
    wanted = READ_CHUNK_BYTES
    while wanted:
        piece = await body.read(wanted)
        if not piece:
            break
        pieces.append(piece)
        wanted -= len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _drop(task: asyncio.Task[Any]) -> None:
    """Cancels ``task``, or collects its error if it has already failed (no "never retrieved")."""
    if task.done():
        if not task.cancelled():
            task.exception()
    else:
        task.cancel()


def _code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: botocore.exceptions.ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _raise_fault(error: BaseException, action: str) -> NoReturn:
    log.warning("the object store is unavailable while %s: %s", action, error)
    raise StorageUnavailable(f"the object store is unavailable while {action}: {error}") from error
