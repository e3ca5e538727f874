"""Figures (1) and (3a): upload and download of one large file, and the machine's limits.

Each repetition moves the same file through every path in turn — the SDK and a plain grpcio
client, against our server and the reference — and measures the two limits the issue names:
SHA-256 + write + fsync of the same bytes in one process (what an upload must do at least) and
the throughput of one plain asyncio TLS stream over loopback (what a download can reach). An
SDK download must also hash, write and sync every byte, so it is shown against the first limit
too, without a target (the issue sets none): where the disk is slower than 0.7 times the TLS
stream, that target of the SDK's download is out of reach.
Our server's and the reference's peak RSS above idle is sampled during the SDK transfers.

Each transfer also notes the CPU time per MiB the server spent and the client (this process)
spent: on a machine whose cores the client and the server share, a transfer's pace is set by
their sum, and the client's share bounds what any server can reach with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable
from multiprocessing.connection import Connection
from pathlib import Path

from modelcatalog.v1 import model_service_pb2, model_service_pb2_grpc

from ._processes import RssSampler, cpu_seconds
from ._report import Comparison
from ._session import MiB, Session, T, Target, random_file, seconds

CHUNK_BYTES = MiB

COMPARISONS = [
    Comparison("upload", "upload sdk→ours", "upload sdk→reference", "MiB/s", "higher", 1.2),
    Comparison("upload", "upload grpcio→ours", "upload grpcio→reference", "MiB/s", "higher", 1.2),
    Comparison("upload", "upload sdk→ours", "limit sha256+write+fsync", "MiB/s", "higher", 0.7),
    Comparison("download", "download sdk→ours", "download sdk→reference", "MiB/s", "higher", 1.5),
    Comparison(
        "download", "download grpcio→ours", "download grpcio→reference", "MiB/s", "higher", 1.5
    ),
    Comparison("download", "download sdk→ours", "limit TLS loopback", "MiB/s", "higher", 0.7),
    Comparison("download", "download sdk→ours", "limit sha256+write+fsync", "MiB/s", "higher"),
    *(
        Comparison(
            "cpu", f"{path}→ours {side} CPU", f"{path}→reference {side} CPU", "ms/MiB", "lower"
        )
        for path in ("upload sdk", "upload grpcio", "download sdk", "download grpcio")
        for side in ("server", "client")
    ),
    Comparison(
        "memory",
        "rss growth upload ours",
        "rss growth upload reference",
        "MiB",
        "lower",
        max_value=64,
    ),
    Comparison(
        "memory",
        "rss growth download ours",
        "rss growth download reference",
        "MiB",
        "lower",
        max_value=64,
    ),
]


async def run(bench: Session) -> None:
    size = bench.sizes.transfer_mib
    source = random_file(bench.work / "model.bin", size)
    digest = hashlib.file_digest(source.open("rb"), "sha256").hexdigest()
    model_ids = {
        target.name: (await bench.create_models(target, 1, "big"))[0] for target in bench.targets
    }
    samplers = {target.name: RssSampler(target.server.process.pid) for target in bench.targets}
    try:
        for repetition in range(bench.sizes.repetitions):
            for target in bench.in_turn(repetition):
                model_id = model_ids[target.name]
                sampler = samplers[target.name]
                idle = sampler.reset()
                version = await _measured(
                    bench, target, "upload sdk", sdk_upload(bench, target, model_id, source)
                )
                bench.results.add(f"rss growth upload {target.name}", sampler.peak - idle)
                await _measured(
                    bench,
                    target,
                    "upload grpcio",
                    _grpcio_upload(bench, target, model_id, source, digest),
                )
                idle = sampler.reset()
                await _measured(
                    bench,
                    target,
                    "download sdk",
                    sdk_download(bench, target, model_id, version, bench.work / "downloaded.bin"),
                )
                bench.results.add(f"rss growth download {target.name}", sampler.peak - idle)
                received = await _measured(
                    bench,
                    target,
                    "download grpcio",
                    _grpcio_download(bench, target, model_id, version),
                )
                assert received == size * MiB, f"{target.name} sent {received} bytes"
            elapsed = await asyncio.to_thread(_hash_write_fsync, source, bench.work / "limit.part")
            bench.results.add("limit sha256+write+fsync", size / elapsed)
            elapsed = await asyncio.to_thread(_tls_loopback_seconds, bench, size)
            bench.results.add("limit TLS loopback", size / elapsed)
    finally:
        for sampler in samplers.values():
            sampler.close()
        source.unlink()


async def _measured(bench: Session, target: Target, path: str, transfer: Awaitable[T]) -> T:
    """Awaits ``transfer``, which moves the run's file along ``path`` ("upload sdk", ...) to or
    from ``target``; notes its MiB/s and the CPU milliseconds per MiB the server and this
    process (the client, every thread of it) spent, and returns what it returned."""
    size = bench.sizes.transfer_mib
    pid = target.server.process.pid
    server_started, client_started = cpu_seconds(pid), time.process_time()
    elapsed, value = await seconds(transfer)
    name = f"{path}→{target.name}"
    bench.results.add(name, size / elapsed)
    bench.results.add(f"{name} server CPU", 1000 * (cpu_seconds(pid) - server_started) / size)
    bench.results.add(f"{name} client CPU", 1000 * (time.process_time() - client_started) / size)
    return value


async def sdk_upload(bench: Session, target: Target, model_id: str, source: Path) -> int:
    """Uploads ``source`` over a connection of its own; the new version's number."""
    async with target.sdk(bench.token) as client:
        return (await client.upload(model_id, source)).version


async def sdk_download(
    bench: Session, target: Target, model_id: str, version: int, destination: Path
) -> None:
    """Downloads a version into ``destination`` over a connection of its own, then deletes it."""
    async with target.sdk(bench.token) as client:
        await client.download(model_id, version, destination, resume=False)
    destination.unlink()  # noqa: ASYNC240 - a delete, as the figure has always timed it


async def _grpcio_upload(
    bench: Session, target: Target, model_id: str, source: Path, digest: str
) -> None:
    """A plain grpcio client: header with the known size and digest, then 1 MiB chunks."""
    size = source.stat().st_size  # noqa: ASYNC240 - a stat, before the timed bytes move

    async def requests() -> AsyncIterator[model_service_pb2.UploadModelVersionRequest]:
        yield model_service_pb2.UploadModelVersionRequest(
            header=model_service_pb2.UploadModelVersionHeader(
                model_id=model_id,
                file_name="model.bin",
                size_bytes=size,
                sha256=digest,
            )
        )
        with source.open("rb") as file:
            while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
                yield model_service_pb2.UploadModelVersionRequest(chunk=chunk)

    async with target.grpcio_channel() as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        await stub.UploadModelVersion(requests(), metadata=bench.metadata)


async def _grpcio_download(bench: Session, target: Target, model_id: str, version: int) -> int:
    """A plain grpcio client that counts the bytes it receives; returns the count."""
    received = 0
    async with target.grpcio_channel() as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        call = stub.DownloadModelVersion(
            model_service_pb2.DownloadModelVersionRequest(model_id=model_id, version=version),
            metadata=bench.metadata,
        )
        async for response in call:
            received += len(response.chunk)
    return received


def _hash_write_fsync(source: Path, destination: Path) -> float:
    """Seconds to read, SHA-256, write and fsync ``source`` into ``destination``, one thread."""
    started = time.perf_counter()
    hasher = hashlib.sha256()
    with source.open("rb") as reader, destination.open("wb") as writer:
        while chunk := reader.read(CHUNK_BYTES):
            hasher.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    os.replace(destination, destination.with_suffix(".blob"))
    elapsed = time.perf_counter() - started
    destination.with_suffix(".blob").unlink()
    return elapsed


def _tls_loopback_seconds(bench: Session, size_mib: int) -> float:
    """Seconds for one asyncio TLS stream to carry ``size_mib`` MiB to another process.

    The receiver (a child process, so that each side has its own interpreter as client and
    server do) reads everything and answers one byte; the time runs from the end of the
    handshake to that answer.
    """
    tls = bench.ours.server.data_dir / "tls"
    parent, child = multiprocessing.get_context("spawn").Pipe()
    receiver = multiprocessing.get_context("spawn").Process(
        target=_tls_sink, args=(child, str(tls / "server.crt"), str(tls / "server.key"), size_mib)
    )
    receiver.start()
    try:
        port = parent.recv()
        return asyncio.run(_tls_send(port, bench.ours.server.ca_cert, size_mib))
    finally:
        receiver.join(timeout=60)


async def _tls_send(port: int, ca_cert: Path, size_mib: int) -> float:
    context = ssl.create_default_context(cafile=ca_cert)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    block = os.urandom(CHUNK_BYTES)
    started = time.perf_counter()
    for _ in range(size_mib):
        writer.write(block)
        await writer.drain()
    await reader.readexactly(1)
    elapsed = time.perf_counter() - started
    writer.close()
    await writer.wait_closed()
    return elapsed


def _tls_sink(pipe: Connection, cert: str, key: str, size_mib: int) -> None:
    """The receiving process: accepts one TLS connection, reads ``size_mib`` MiB, answers."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    done = asyncio.Event()

    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        remaining = size_mib * MiB
        while remaining and (data := await reader.read(min(remaining, 4 * CHUNK_BYTES))):
            remaining -= len(data)
        writer.write(b"!")
        await writer.drain()
        writer.close()
        done.set()

    async def serve() -> None:
        server = await asyncio.start_server(receive, "127.0.0.1", 0, ssl=context)
        pipe.send(server.sockets[0].getsockname()[1])
        async with server:
            await done.wait()

    asyncio.run(serve())
