"""Model versions: streamed uploads with server-side SHA-256, atomic commit, ranged reads.

An upload becomes a version only after its blob is durable under its content address, and the
version row (with the next number of its model) is inserted in one transaction after that. Any
failure before, including cancellation, removes what the upload stored and leaves no version;
an upload whose process dies is cleaned up by another (``uploads``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field

from ..storage.blobs import BlobStore
from ..storage.metadata import MetadataStore, Transaction
from ..storage.records import FeedKind, ModelRecord, Role, VersionRecord
from . import audit, validation
from .accounts import caller_account
from .aliases import aliased_version
from .catalog import Page, page_of, require_model
from .errors import (
    CatalogError,
    DataLoss,
    InvalidArgument,
    NotFound,
    OutOfRange,
    ResourceExhausted,
)
from .filters import scoped, version_query
from .paging import PageTokens, page_size
from .requests import Request, RequestResults
from .slots import SlotLimits, Slots
from .uploads import PendingUploads, ResumeKey, Upload, UploadStatus

#: Uploads and downloads in progress at once, in all, per user and per network address.
MAX_UPLOADS = 128
MAX_UPLOADS_PER_USER = 32
MAX_UPLOADS_PER_PEER = 32
MAX_DOWNLOADS = 256
MAX_DOWNLOADS_PER_USER = 32
MAX_DOWNLOADS_PER_PEER = 32


@dataclass(frozen=True)
class UploadHeader:
    """What the client declares about a file before sending it."""

    model_id: str
    file_name: str
    content_type: str = ""
    size_bytes: int | None = None
    sha256: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    offset: int = 0
    """Where the chunks start in the file: above 0 they continue a paused upload."""


@dataclass(frozen=True)
class UploadTrailer:
    """What the client declares after sending a file: its SHA-256, learnt while sending it.

    It arrives as the last item of an upload's chunks; ModelService guarantees
    that nothing follows it.
    """

    sha256: str


class Versions:
    """Upload, list and download the versions of models."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        page_tokens: PageTokens,
        *,
        max_version_bytes: int,
        max_uploads: int = MAX_UPLOADS,
        max_uploads_per_user: int = MAX_UPLOADS_PER_USER,
        max_uploads_per_peer: int = MAX_UPLOADS_PER_PEER,
        max_downloads: int = MAX_DOWNLOADS,
        max_downloads_per_user: int = MAX_DOWNLOADS_PER_USER,
        max_downloads_per_peer: int = MAX_DOWNLOADS_PER_PEER,
        pending: PendingUploads | None = None,
        requests: RequestResults | None = None,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._tokens = page_tokens
        self._max_bytes = max_version_bytes
        self._uploads = Slots(
            "upload", SlotLimits(max_uploads, max_uploads_per_user, max_uploads_per_peer)
        )
        self._downloads = Slots(
            "download", SlotLimits(max_downloads, max_downloads_per_user, max_downloads_per_peer)
        )
        self._pending = pending if pending is not None else PendingUploads(store, blobs)
        self._requests = requests if requests is not None else RequestResults()

    @property
    def uploads_in_progress(self) -> int:
        return self._uploads.in_use

    @property
    def downloads_in_progress(self) -> int:
        return self._downloads.in_use

    async def upload(
        self,
        caller: str,
        header: UploadHeader,
        chunks: AsyncIterator[bytes | UploadTrailer],
        *,
        peer: str = "-",
    ) -> VersionRecord:
        """Stores ``chunks`` as the next version of the header's model.

        The last item of ``chunks`` may be an ``UploadTrailer``: its digest is checked like
        the header's before anything is committed.

        ``peer`` is the caller's network address: uploads hold slots per user and per address,
        so neither many accounts nor many addresses let one party take every slot.

        With a ``request_id`` in the header, a repeat of an upload that was stored returns
        that version without reading ``chunks``; one that raced its twin to the commit
        returns the twin's version and keeps nothing of its own. Such an upload whose chunks
        break off is paused (``uploads``), and a header with an ``offset`` continues it.
        """
        header = self._checked(header)
        request = self._request(header)

        def check(tx: Transaction) -> VersionRecord | None:
            require_model(tx, caller, header.model_id, Role.EDITOR)
            return self._earlier(tx, caller, header.model_id, request)

        earlier = await self._store.read(check)
        if earlier is not None:
            return earlier
        key = ResumeKey(caller, request) if request is not None else None
        with self._uploads.taken(caller, peer):
            async with self._pending.upload(key, header.offset) as upload:
                digest = await self._receive(header, chunks, upload)
                await upload.claim(digest)

                def record(tx: Transaction) -> tuple[VersionRecord, bool]:
                    """The version, and whether it is this upload's (not an earlier twin's)."""
                    tx.lock_model(header.model_id)  # not deleted meanwhile
                    model = require_model(tx, caller, header.model_id, Role.EDITOR)
                    twin = self._earlier(tx, caller, header.model_id, request)
                    if twin is not None:
                        return twin, False
                    upload.record(tx)
                    version = tx.insert_version(
                        model,
                        caller_account(tx, caller),
                        file_name=header.file_name,
                        content_type=header.content_type,
                        size_bytes=upload.writer.size,
                        sha256=digest,
                        description=header.description,
                        labels=header.labels,
                    )
                    self._requests.remember(tx, caller, request, str(version.version))
                    audit.record(
                        tx,
                        "UploadModelVersion",
                        caller,
                        **audit.on_version(model, version.version),
                        details={"version": str(version.version), "sha256": digest},
                        kind=FeedKind.VERSION_CREATED,
                    )
                    return version, True

                version, upload.recorded = await self._requests.write(self._store, request, record)
                return version

    async def upload_status(
        self, caller: str, header: UploadHeader
    ) -> VersionRecord | UploadStatus:
        """The version the upload ``header`` (with a request id) stored, or else what the
        server holds of it for resuming."""
        header = self._checked(header)
        request = self._request(header)
        if request is None:
            raise InvalidArgument(
                "header.request_id", "header.request_id is required to ask for an upload's status"
            )
        key = ResumeKey(caller, request)

        def status(tx: Transaction) -> VersionRecord | UploadStatus:
            require_model(tx, caller, header.model_id, Role.EDITOR)
            earlier = self._earlier(tx, caller, header.model_id, request)
            return earlier if earlier is not None else self._pending.status(tx, key)

        return await self._store.read(status)

    def _request(self, header: UploadHeader) -> Request | None:
        """The upload's request, for its request id: every header field but the offset."""
        return self._requests.request(
            "header.request_id",
            header.request_id,
            "UploadModelVersion",
            header.model_id,
            header.file_name,
            header.content_type,
            header.size_bytes,
            header.sha256,
            header.description,
            header.labels,
        )

    def _earlier(
        self, tx: Transaction, caller: str, model_id: str, request: Request | None
    ) -> VersionRecord | None:
        """The version an earlier copy of this upload request stored, as it is now."""
        made = self._requests.earlier(tx, caller, request)
        if made is None:
            return None
        version = tx.version(model_id, int(made))
        if version is None:
            raise NotFound(
                f"this request stored version {made}, which no longer exists",
                reason="VERSION_NOT_FOUND",
            )
        return version

    async def _receive(
        self,
        header: UploadHeader,
        chunks: AsyncIterator[bytes | UploadTrailer],
        upload: Upload,
    ) -> str:
        """The digest of the whole file, once every chunk is written; the upload is marked
        ``interrupted`` when the chunks break off (the stream failed or was cancelled) rather
        than breaking a rule, so that the bytes so far can be kept for resuming."""
        writer = upload.writer
        limit = self._max_bytes if header.size_bytes is None else header.size_bytes
        declared = header.sha256
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except CatalogError:
                raise
            except BaseException:
                upload.interrupted = True
                raise
            if isinstance(chunk, UploadTrailer):
                declared = _trailer_sha256(chunk, header.sha256)
                continue
            if writer.size + len(chunk) > limit:
                if header.size_bytes is None:
                    raise _too_large(self._max_bytes)
                raise _size_mismatch(header.size_bytes, "more")
            try:
                await writer.write(chunk)
            except asyncio.CancelledError:
                upload.interrupted = True
                raise
        if header.size_bytes is not None and writer.size != header.size_bytes:
            raise _size_mismatch(header.size_bytes, f"only {writer.size}")
        digest = await writer.finish()
        if declared and digest != declared:
            raise DataLoss(
                f"the SHA-256 of the {writer.size} bytes received is {digest}, not the declared "
                f"{declared}; the file was damaged on the way and nothing was stored",
                reason="DIGEST_MISMATCH",
            )
        return digest

    def _checked(self, header: UploadHeader) -> UploadHeader:
        validation.resource_id("header.model_id", header.model_id)
        validation.file_name("header.file_name", header.file_name)
        validation.description("header.description", header.description)
        if header.size_bytes is not None:
            if header.size_bytes < 0:
                raise InvalidArgument("header.size_bytes", "header.size_bytes must not be negative")
            if header.size_bytes > self._max_bytes:
                raise _too_large(self._max_bytes)
        _check_offset(header)
        return UploadHeader(
            model_id=header.model_id,
            file_name=header.file_name,
            content_type=validation.content_type("header.content_type", header.content_type),
            size_bytes=header.size_bytes,
            sha256=validation.sha256("header.sha256", header.sha256),
            description=header.description,
            labels=validation.labels("header.labels", header.labels),
            request_id=header.request_id,
            offset=header.offset,
        )

    async def get(self, caller: str, model_id: str, number: int, alias: str = "") -> VersionRecord:
        """The version numbered ``number``, or the one ``alias`` points at (exactly one of the
        two is given: a number of 1 or more, or a non-empty alias)."""
        validation.resource_id("model_id", model_id)
        _version_or_alias(number, alias)
        return await self._store.lookup(
            lambda tx: _version_of_model(tx, caller, model_id, number, alias)[1]
        )

    async def list(
        self,
        caller: str,
        model_id: str,
        size: int,
        token: str,
        filter_text: str = "",
        order_by: str = "",
    ) -> Page[VersionRecord]:
        """The model's versions that match ``filter_text``, in the order ``order_by``
        (``domain.filters``), a page at a time."""
        validation.resource_id("model_id", model_id)
        limit = page_size(size)
        query = version_query(filter_text, order_by)
        scope = scoped(f"versions:{model_id}", filter_text, order_by)
        before = self._tokens.decode(token, caller=caller, scope=scope)

        def versions(tx: Transaction) -> list[VersionRecord]:
            require_model(tx, caller, model_id, Role.VIEWER)
            return tx.versions(model_id, before, limit + 1, query)

        rows = await self._store.read(versions)
        return page_of(self._tokens, rows, limit, caller, scope, lambda v: v.version)

    @asynccontextmanager
    async def download(
        self,
        caller: str,
        model_id: str,
        number: int,
        offset: int,
        *,
        alias: str = "",
        peer: str = "-",
    ) -> AsyncIterator[tuple[VersionRecord, AsyncIterator[bytes]]]:
        """The version (named as for ``get``) and its bytes from ``offset`` on, while a
        download slot is held; the stored file is closed and the slot given back when the
        block ends, however it ends. The download is recorded in the audit trail as it
        starts, in the transaction that looks the version up: one small insert per call."""
        validation.resource_id("model_id", model_id)
        _version_or_alias(number, alias)
        if offset < 0:
            raise InvalidArgument("offset", "offset must not be negative")

        def downloaded(tx: Transaction) -> VersionRecord:
            model, version = _version_of_model(tx, caller, model_id, number, alias)
            if offset > version.size_bytes:
                raise OutOfRange(
                    f"offset {offset} is beyond the end of the {version.size_bytes}-byte file",
                    reason="OFFSET_OUT_OF_RANGE",
                )
            details = {"version": str(version.version), "offset": str(offset)}
            if alias:
                details["alias"] = alias
            audit.record(
                tx,
                "DownloadModelVersion",
                caller,
                **audit.on_version(model, version.version),
                details=details,
            )
            return version

        with self._downloads.taken(caller, peer):
            version = await self._store.write(downloaded)
            async with aclosing(self._bytes(version, offset)) as chunks:
                yield version, chunks

    async def _bytes(self, version: VersionRecord, offset: int) -> AsyncGenerator[bytes, None]:
        """The version's bytes; closing this (``aclose``) closes the stored file at once."""
        sent = offset
        try:
            async with aclosing(self._blobs.read(version.sha256, offset)) as chunks:
                async for chunk in chunks:
                    sent += len(chunk)
                    yield chunk
        except FileNotFoundError:
            raise DataLoss(
                "the stored file of this version is missing on the server; tell its operator",
                reason="BLOB_DAMAGED",
            ) from None
        if sent != version.size_bytes:
            raise DataLoss(
                f"the stored file of this version has {sent} bytes instead of "
                f"{version.size_bytes}; tell the server's operator",
                reason="BLOB_DAMAGED",
            )


def _trailer_sha256(trailer: UploadTrailer, header_sha256: str) -> str:
    """The trailer's digest, checked: required, well formed and equal to the header's if the
    header declared one (a client that contradicts itself is refused, not blamed on the wire)."""
    sha256 = validation.sha256("trailer.sha256", trailer.sha256)
    if not sha256:
        raise InvalidArgument("trailer.sha256", "trailer.sha256 is required in a trailer")
    if header_sha256 and sha256 != header_sha256:
        raise InvalidArgument(
            "trailer.sha256",
            f"trailer.sha256 {sha256} differs from header.sha256 {header_sha256}; "
            "nothing was stored",
        )
    return sha256


def _check_offset(header: UploadHeader) -> None:
    """A resumed upload's offset: never negative, only with a request id, within the file."""
    if header.offset < 0:
        raise InvalidArgument("header.offset", "header.offset must not be negative")
    if header.offset and not header.request_id:
        raise InvalidArgument(
            "header.offset",
            "header.offset resumes an upload made with a request_id: send the same request_id",
        )
    if header.size_bytes is not None and header.offset > header.size_bytes:
        raise InvalidArgument(
            "header.offset",
            f"header.offset {header.offset} is beyond the declared size of {header.size_bytes}",
        )


def _version_or_alias(number: int, alias: str) -> None:
    if alias:
        if number:
            raise InvalidArgument("alias", "set either version or alias, not both")
        validation.alias_name("alias", alias)
    elif number < 1:
        raise InvalidArgument("version", "version must be 1 or more, or an alias must be set")


def _too_large(limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"the file is larger than this server's maximum version size of {limit} bytes",
        reason="VERSION_TOO_LARGE",
    )


def _size_mismatch(declared: int, received: str) -> InvalidArgument:
    return InvalidArgument(
        "header.size_bytes",
        f"the header declared {declared} bytes but {received} were sent; nothing was stored",
        reason="SIZE_MISMATCH",
    )


def _version_of_model(
    tx: Transaction, caller: str, model_id: str, number: int, alias: str
) -> tuple[ModelRecord, VersionRecord]:
    """The model and its version numbered ``number`` or pointed at by ``alias``, if the caller
    may see the model."""
    model = require_model(tx, caller, model_id, Role.VIEWER)
    wanted = aliased_version(tx, model_id, alias) if alias else number
    version = tx.version(model_id, wanted)
    if version is None:
        raise NotFound(f"the model has no version {wanted}", reason="VERSION_NOT_FOUND")
    return model, version
