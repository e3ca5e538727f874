"""The server side for the SDK and CLI tests: errors as the server sends them, a fake
``ModelService`` for uploads (which it can break off and resume) and downloads, a service that
fails before it answers, and the sync ``Client`` over any of them.

``FakeTransfers`` keeps versions in memory, checks uploads like the server and serves downloads
from an offset; it records what it received and can serve damaged bytes, hold a download or
drop it. Subclasses add their own rules in ``check_upload``/``check_download`` and may keep the
versions and files in containers they share with other fakes.
"""

import asyncio
import functools
import hashlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any

import betterproto
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib._typing import IServable
from grpclib.const import Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream
from grpclib.testing import ChannelFor

from modelcatalog import AsyncClient, Client, v1
from modelcatalog._transport import CHUNK_SIZE


def grpc_error(status: Status, message: str, reason: str | None = None) -> GRPCError:
    """A GRPCError as the server sends it, with an ErrorInfo carrying ``reason``."""
    details = [ErrorInfo(domain="modelcatalog.v1", reason=reason)] if reason else None
    return GRPCError(status, message, details)


class FakeTransfers(v1.ModelServiceBase):
    """``UploadModelVersion``, ``DownloadModelVersion`` and ``GetModelVersion`` in memory."""

    def __init__(
        self,
        versions: list[v1.ModelVersion] | None = None,
        files: dict[int, bytes] | None = None,
    ) -> None:
        self.versions: list[v1.ModelVersion] = [] if versions is None else versions
        """The metadata of version N at index N - 1."""
        self.files: dict[int, bytes] = {} if files is None else files
        """The bytes of each version, by number."""
        self.aliases: dict[str, int] = {}
        """The version each alias points at, by name."""
        self.uploads: list[list[v1.UploadModelVersionRequest]] = []
        self.offsets: list[int] = []
        self.named: list[int | str] = []
        """How each download request named its version: its number, or an alias."""
        self.damage = False
        self.drop_after_chunks: int | None = None
        self.hold: asyncio.Event | None = None
        """When set, downloads wait for this event between the metadata and the bytes."""
        self.holding = asyncio.Event()
        """Set once a download waits for ``hold``."""
        self.break_upload_after: int | None = None
        """When set, the next upload breaks (UNAVAILABLE) once it has received this many
        bytes. The fake keeps the bytes of a broken or cancelled upload with a request_id for
        resuming it, as the server does."""
        self.held: dict[str, bytes] = {}
        """The bytes kept of each broken upload, by request_id."""
        self.stored: dict[str, v1.ModelVersion] = {}
        """The version each upload with a request_id stored, by request_id."""

    def store(self, data: bytes, file_name: str = "model.onnx", **fields: Any) -> v1.ModelVersion:
        """Add the next version directly, as if it had been uploaded (to model "m1" unless
        ``fields`` say otherwise)."""
        number = len(self.versions) + 1
        fields.setdefault("model_id", "m1")
        version = v1.ModelVersion(
            version=number,
            file_name=file_name,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            **fields,
        )
        self.versions.append(version)
        self.files[number] = data
        return version

    def find(self, number: int, alias: str = "") -> v1.ModelVersion:
        """The version with this number (or that ``alias`` points at), or the server's
        NOT_FOUND."""
        if alias:
            if alias not in self.aliases:
                raise grpc_error(Status.NOT_FOUND, "the model has no such alias", "ALIAS_NOT_FOUND")
            number = self.aliases[alias]
        for version in self.versions:
            if version.version == number:
                return version
        raise grpc_error(Status.NOT_FOUND, "the model has no such version", "VERSION_NOT_FOUND")

    def check_upload(self, header: v1.UploadModelVersionHeader) -> None:
        """Called with each upload's header before its chunks are read; raise to reject it."""

    def check_download(self, request: v1.DownloadModelVersionRequest) -> None:
        """Called with each download request before anything is sent; raise to refuse it."""

    async def upload_model_version(
        self, upload_model_version_request_iterator: AsyncIterator[v1.UploadModelVersionRequest]
    ) -> v1.UploadModelVersionResponse:
        messages = upload_model_version_request_iterator
        received = [await anext(messages)]
        self.uploads.append(received)
        header = received[0].header
        self.check_upload(header)
        if header.request_id in self.stored:
            return v1.UploadModelVersionResponse(version=self.stored[header.request_id])
        held = self.held.get(header.request_id, b"")
        if header.offset != len(held):
            raise GRPCError(
                Status.FAILED_PRECONDITION,
                "upload_offset_mismatch",
                [
                    ErrorInfo(
                        domain="modelcatalog.v1",
                        reason="UPLOAD_OFFSET_MISMATCH",
                        metadata={"held_bytes": str(len(held))},
                    )
                ],
            )
        data = bytearray(held)
        declared = {header.sha256}
        try:
            async for message in messages:
                received.append(message)
                if betterproto.which_one_of(message, "content")[0] == "trailer":
                    declared.add(message.trailer.sha256)
                else:
                    data += message.chunk
                if self.break_upload_after is not None and len(data) >= self.break_upload_after:
                    self.break_upload_after = None
                    raise GRPCError(Status.UNAVAILABLE, "connection dropped")
        except (GRPCError, asyncio.CancelledError):
            if header.request_id and len(data) > len(held):  # kept, as the server does
                self.held[header.request_id] = bytes(data)
            raise
        self.held.pop(header.request_id, None)
        if header.size_bytes is not None and header.size_bytes != len(data):
            raise grpc_error(Status.INVALID_ARGUMENT, "size_mismatch", "SIZE_MISMATCH")
        if declared - {"", hashlib.sha256(data).hexdigest()}:
            raise grpc_error(Status.DATA_LOSS, "digest_mismatch", "DIGEST_MISMATCH")
        version = self.store(
            bytes(data),
            header.file_name,
            model_id=header.model_id,
            content_type=header.content_type,
            description=header.description,
            labels=dict(header.labels),
        )
        if header.request_id:
            self.stored[header.request_id] = version
        return v1.UploadModelVersionResponse(version=version)

    async def get_upload_status(
        self, get_upload_status_request: v1.GetUploadStatusRequest
    ) -> v1.GetUploadStatusResponse:
        request_id = get_upload_status_request.header.request_id
        if request_id in self.stored:
            return v1.GetUploadStatusResponse(version=self.stored[request_id])
        return v1.GetUploadStatusResponse(offset=len(self.held.get(request_id, b"")))

    async def get_model_version(
        self, get_model_version_request: v1.GetModelVersionRequest
    ) -> v1.GetModelVersionResponse:
        request = get_model_version_request
        return v1.GetModelVersionResponse(version=self.find(request.version, request.alias))

    async def download_model_version(
        self, download_model_version_request: v1.DownloadModelVersionRequest
    ) -> AsyncIterator[v1.DownloadModelVersionResponse]:
        request = download_model_version_request
        self.check_download(request)
        version = self.find(request.version, request.alias)
        data = self.files[version.version]
        self.named.append(request.alias or request.version)
        self.offsets.append(request.offset)
        if request.offset > len(data):
            raise grpc_error(Status.OUT_OF_RANGE, "offset_out_of_range", "OFFSET_OUT_OF_RANGE")
        yield v1.DownloadModelVersionResponse(version=version)
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()
        for sent, start in enumerate(range(request.offset, len(data), CHUNK_SIZE)):
            if sent == self.drop_after_chunks:
                raise GRPCError(Status.UNAVAILABLE, "connection dropped")
            chunk = data[start : start + CHUNK_SIZE]
            if self.damage:
                chunk = bytes([chunk[0] ^ 1]) + chunk[1:]
            yield v1.DownloadModelVersionResponse(chunk=chunk)


class Flaky:
    """Every RPC of a service: each route fails its first ``failures`` calls with UNAVAILABLE
    (as a server that restarts), then answers with an empty response; ``attempts`` counts
    the calls of each route, ``request_ids`` lists the request_id each call carried."""

    def __init__(self, service: Callable[[], IServable], failures: int) -> None:
        self.failures = failures
        self.attempts: Counter[str] = Counter()
        self.request_ids: defaultdict[str, list[str]] = defaultdict(list)
        self._routes = service().__mapping__()

    def __mapping__(self) -> dict[str, Handler]:
        return {
            route: handler._replace(func=functools.partial(self._answer, route))
            for route, handler in self._routes.items()
        }

    async def _answer(
        self, route: str, stream: Stream[betterproto.Message, betterproto.Message]
    ) -> None:
        self.attempts[route] += 1
        messages = [message async for message in stream]  # so an upload is read to its end
        carrier = getattr(messages[0], "header", messages[0])  # an upload's id is in its header
        if hasattr(carrier, "request_id"):
            self.request_ids[route].append(carrier.request_id)
        if self.attempts[route] <= self.failures:
            raise GRPCError(Status.UNAVAILABLE, "the server is restarting")
        await stream.send_message(self._routes[route].reply_type())


def sync_client_for(services: Collection[IServable], **options: Any) -> Client:
    """A ``Client`` over ``ChannelFor(services)``, made in the client's own event loop;
    ``options`` go to ``AsyncClient.from_channel``."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncClient]:
        async with ChannelFor(services) as channel:
            yield AsyncClient.from_channel(channel, **options)

    return Client._over(connect)
