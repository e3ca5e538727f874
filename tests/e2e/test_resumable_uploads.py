"""Resumable uploads on the real server: a TCP proxy on loopback cuts the connection after half
of a file has gone through; the upload resumes from the bytes the server kept and sends only
the rest (counted by the proxy), and the version has the file's SHA-256."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelcatalog import AsyncClient, Unavailable, v1

from .conftest import RunningServer

PASSWORD = "correct horse battery"
MiB = 1 << 20
SIZE = 24 * MiB
#: Bytes a resumed upload may send beyond the file's rest: HTTP/2 and TLS framing, the header,
#: the trailer and the sign-in of a new connection.
OVERHEAD = 256 * 1024


class CuttingProxy:
    """Forwards loopback TCP connections to the server; once ``cut_after`` bytes have gone
    from clients to the server (over all connections), it drops every open connection, once.
    ``sent`` counts the bytes forwarded to the server, ``sent_at_cut`` those before the cut."""

    def __init__(self, upstream: RunningServer) -> None:
        self._upstream = upstream
        self.cut_after: int | None = None
        self.sent = 0
        self.sent_at_cut: int | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CuttingProxy]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(
            self._upstream.host, self._upstream.port
        )
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, counted=True),
                self._pipe(up_reader, writer, counted=False),
            )
        except (ConnectionError, OSError):
            pass
        finally:
            for end in (writer, up_writer):
                end.transport.abort()
                self._writers.discard(end)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, counted: bool
    ) -> None:
        while data := await reader.read(64 * 1024):
            if counted:
                if self.cut_after is not None and self.sent + len(data) >= self.cut_after:
                    self.cut_after, self.sent_at_cut = None, self.sent
                    for end in list(self._writers):
                        end.transport.abort()
                    return
                self.sent += len(data)
            writer.write(data)
            await writer.drain()


def write_file(path: Path) -> str:
    data = os.urandom(SIZE)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


async def model_id_of(client: AsyncClient) -> str:
    await client.sign_up("alice", PASSWORD)
    await client.sign_in("alice", PASSWORD)
    folder = await client.create_folder("vision")
    return (await client.create_model(folder.id, "resnet")).id


async def test_an_upload_cut_at_half_resumes_within_the_call(
    server: RunningServer, tmp_path: Path
) -> None:
    """Cut after half the file, one upload() call resumes from the bytes the server kept,
    sends only the rest, and stores a version with the file's SHA-256 and bytes."""
    path = tmp_path / "checkpoint.bin"
    digest = write_file(path)
    starts: list[int] = []
    last = [-1]

    def progress(done: int, total: int | None) -> None:
        if done <= last[0] or not starts:
            starts.append(done)
        last[0] = done

    async with (
        CuttingProxy(server).running() as proxy,
        AsyncClient(proxy.address, ca_cert=server.ca_cert, retries=6) as client,
    ):
        model_id = await model_id_of(client)
        proxy.cut_after = proxy.sent + SIZE // 2
        version = await client.upload(model_id, path, progress=progress)
        assert (version.sha256, version.size_bytes, version.version) == (digest, SIZE, 1)
    assert proxy.sent_at_cut is not None, "the connection was never cut"
    first, resumed_from = starts
    assert first == 0
    assert SIZE // 4 <= resumed_from <= SIZE // 2
    # Everything the proxy forwarded after the cut: the rest of the file and little more.
    assert SIZE - resumed_from <= proxy.sent - proxy.sent_at_cut <= SIZE - resumed_from + OVERHEAD
    async with AsyncClient(server.address, ca_cert=server.ca_cert) as direct:
        await direct.sign_in("alice", PASSWORD)
        saved = await direct.download(model_id, 1, tmp_path / "copy.bin")
    assert hashlib.sha256((tmp_path / "copy.bin").read_bytes()).hexdigest() == digest
    assert saved.version.sha256 == digest


async def test_a_broken_upload_is_resumed_by_a_later_call_with_its_request_id(
    server: RunningServer, tmp_path: Path
) -> None:
    """An upload cut at half without retries fails with Unavailable; GetUploadStatus then says
    how many bytes the server kept; upload() again with the same request_id sends only the
    rest (counted by the proxy), and the version has the file's SHA-256."""
    path = tmp_path / "checkpoint.bin"
    digest = write_file(path)
    request_id = str(uuid.uuid4())
    async with CuttingProxy(server).running() as proxy:
        async with AsyncClient(proxy.address, ca_cert=server.ca_cert, retries=0) as client:
            model_id = await model_id_of(client)
            proxy.cut_after = proxy.sent + SIZE // 2
            with pytest.raises(Unavailable):
                await client.upload(model_id, path, request_id=request_id)
            token = client.token
        header = v1.UploadModelVersionHeader(
            model_id=model_id,
            file_name=path.name,
            content_type="application/octet-stream",
            size_bytes=SIZE,
            request_id=request_id,
        )
        held = await held_bytes(server, token or "", header)
        assert SIZE // 4 <= held <= SIZE // 2
        before = proxy.sent
        async with AsyncClient(proxy.address, ca_cert=server.ca_cert, token=token) as client:
            version = await client.upload(model_id, path, request_id=request_id)
        assert (version.sha256, version.size_bytes) == (digest, SIZE)
        assert SIZE - held <= proxy.sent - before <= SIZE - held + OVERHEAD


async def held_bytes(server: RunningServer, token: str, header: v1.UploadModelVersionHeader) -> int:
    """GetUploadStatus over a direct connection, asked until no stream holds the upload."""
    channel = server.channel()
    try:
        stub = v1.ModelServiceStub(channel, metadata={"authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 10
        while True:
            status = await stub.get_upload_status(v1.GetUploadStatusRequest(header=header))
            if not status.in_progress or time.monotonic() > deadline:
                assert not status.in_progress
                assert not status.version.version
                return status.offset
            await asyncio.sleep(0.05)
    finally:
        channel.close()
