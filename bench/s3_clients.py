"""``python -m bench.s3_clients``: S3 client throughput and CPU against SeaweedFS on loopback.

Chooses the S3 blob store's client by measurement (issue 11): one multipart upload and one
ranged download of the same bytes through ``aiobotocore`` and through ``obstore`` (Rust
object_store), each with the same part size and at most two parts in flight, and then through
``S3BlobStore`` itself (which also hashes and verifies). Reports MiB/s and this process's CPU
seconds per GiB (every thread, the Rust runtime's included), and SeaweedFS's when it is ours.

Uses the S3 service named by MODELCATALOG_TEST_BLOB_URL and the AWS_* settings when they are
set, otherwise starts one with ``scripts/seaweedfs`` (needs this venv on PATH) and stops it.
Not part of ``python -m bench``: it needs a real S3 service and moves gigabytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any, Protocol

import obstore
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from obstore.store import S3Store

from modelcatalog_server.storage.blobs import READ_CHUNK_BYTES
from modelcatalog_server.storage.locations import parse_s3_url
from modelcatalog_server.storage.s3 import S3BlobStore, open_s3_blob_store

from ._processes import cpu_seconds as process_cpu_seconds

MiB = 1 << 20
GiB = 1 << 30
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "seaweedfs"
#: Bytes per message the server receives from a client: what a store is written in.
CHUNK_BYTES = MiB
#: Parts in flight at once for both clients (the store keeps one uploading, one filling).
CONCURRENCY = 2


class Subject(Protocol):
    """One way to move the bytes: a client, or the store itself."""

    async def upload(self, key: str, total: int, pattern: bytes) -> None: ...

    async def download(self, key: str) -> int: ...

    async def delete(self, key: str) -> None: ...


def chunks(total: int, pattern: bytes) -> Iterator[bytes]:
    """``total`` bytes as CHUNK_BYTES-long bytes objects cut from ``pattern``."""
    for offset in range(0, total, CHUNK_BYTES):
        start = offset % len(pattern)
        yield pattern[start : start + min(CHUNK_BYTES, total - offset)]


async def async_chunks(total: int, pattern: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks(total, pattern):
        yield chunk


class Botocore:
    """Multipart upload and ranged download with aiobotocore, as S3BlobStore uses it."""

    def __init__(self, client: Any, bucket: str, part_bytes: int) -> None:
        self._client = client
        self._bucket = bucket
        self._part_bytes = part_bytes

    async def upload(self, key: str, total: int, pattern: bytes) -> None:
        created = await self._client.create_multipart_upload(Bucket=self._bucket, Key=key)
        upload_id = created["UploadId"]
        parts: list[dict[str, Any]] = []
        in_flight: asyncio.Task[None] | None = None
        buffer: list[bytes] = []
        buffered = 0

        async def send(number: int, body: bytes) -> None:
            answer = await self._client.upload_part(
                Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})

        for chunk in chunks(total, pattern):
            buffer.append(chunk)
            buffered += len(chunk)
            if buffered >= self._part_bytes:
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.create_task(send(len(parts) + 1, b"".join(buffer)))
                buffer, buffered = [], 0
        if in_flight is not None:
            await in_flight
        if buffer:
            await send(len(parts) + 1, b"".join(buffer))
        parts.sort(key=lambda part: int(part["PartNumber"]))
        await self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    async def download(self, key: str) -> int:
        answer = await self._client.get_object(Bucket=self._bucket, Key=key, Range="bytes=0-")
        received = 0
        async with answer["Body"] as body:
            while chunk := await body.read(READ_CHUNK_BYTES):
                received += len(chunk)
        return received

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self._bucket, Key=key)


class Obstore:
    """Multipart upload (put_async from an async iterator) and ranged download with obstore."""

    def __init__(self, store: S3Store, part_bytes: int) -> None:
        self._store = store
        self._part_bytes = part_bytes

    async def upload(self, key: str, total: int, pattern: bytes) -> None:
        await obstore.put_async(
            self._store,
            key,
            async_chunks(total, pattern),
            use_multipart=True,
            chunk_size=self._part_bytes,
            max_concurrency=CONCURRENCY,
        )

    async def download(self, key: str) -> int:
        answer = await obstore.get_async(self._store, key, options={"range": {"offset": 0}})
        received = 0
        async for chunk in answer.stream(min_chunk_size=READ_CHUNK_BYTES):
            received += len(chunk)
        return received

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self._store, key)


class Store:
    """S3BlobStore's own writer (with SHA-256 and the commit copy) and reader."""

    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        self._digest = ""

    async def upload(self, key: str, total: int, pattern: bytes) -> None:
        writer = self._store.writer()
        try:
            for chunk in chunks(total, pattern):
                await writer.write(chunk)
            self._digest = await writer.finish()
            await writer.commit()
        finally:
            await writer.abort()

    async def download(self, key: str) -> int:
        received = 0
        async for chunk in self._store.read(self._digest):
            received += len(chunk)
        return received

    async def delete(self, key: str) -> None:
        await self._store.delete(self._digest)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds() -> float:
    """CPU seconds SeaweedFS has used, when scripts/seaweedfs said which process it is."""
    pid = os.environ.get("SEAWEEDFS_PID")
    return process_cpu_seconds(int(pid)) if pid else 0.0


async def measured(work: Awaitable[Any]) -> tuple[float, float, float]:
    """Wall, CPU and S3 server CPU seconds of ``work``."""
    wall, cpu, server = time.perf_counter(), cpu_seconds(), server_cpu_seconds()
    await work
    return (
        time.perf_counter() - wall,
        cpu_seconds() - cpu,
        server_cpu_seconds() - server,
    )


async def run(total: int, part_bytes: int, repetitions: int) -> dict[str, list[float]]:
    bucket, prefix = parse_s3_url(os.environ["MODELCATALOG_TEST_BLOB_URL"])
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ["AWS_ENDPOINT_URL"]
    pattern = os.urandom(64 * MiB)
    results: dict[str, list[float]] = {}
    session = get_session()
    config = AioConfig(
        s3={"payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    obstore_store = S3Store(
        bucket,
        endpoint=endpoint,
        region=os.environ.get("AWS_REGION", "us-east-1"),
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )
    store = await open_s3_blob_store(
        os.environ["MODELCATALOG_TEST_BLOB_URL"], max_blob_bytes=part_bytes * 10_000
    )
    async with session.create_client("s3", endpoint_url=endpoint, config=config) as client:
        clients: dict[str, Subject] = {
            "aiobotocore": Botocore(client, bucket, part_bytes),
            "obstore": Obstore(obstore_store, part_bytes),
            "S3BlobStore (aiobotocore + sha256)": Store(store),
        }
        for repetition in range(repetitions):
            for name, subject in clients.items():
                key = f"{prefix}bench/{uuid.uuid4().hex}"
                add(
                    results,
                    f"upload {name}",
                    total,
                    *await measured(subject.upload(key, total, pattern)),
                )
                add(results, f"download {name}", total, *await measured(subject.download(key)))
                await subject.delete(key)
            print(f"repetition {repetition + 1}/{repetitions} done", file=sys.stderr)
    await store.close()
    return results


def add(
    results: dict[str, list[float]], name: str, total: int, wall: float, cpu: float, server: float
) -> None:
    results.setdefault(f"{name} MiB/s", []).append(total / MiB / wall)
    results.setdefault(f"{name} CPU s/GiB", []).append(cpu / (total / GiB))
    if server:
        results.setdefault(f"{name} S3 server CPU s/GiB", []).append(server / (total / GiB))


@contextlib.contextmanager
def s3_service() -> Iterator[None]:
    """The S3 service the environment names, or a SeaweedFS started for this run."""
    if os.environ.get("MODELCATALOG_TEST_BLOB_URL"):
        yield
        return
    with tempfile.TemporaryDirectory() as scratch:
        env_file = Path(scratch) / "seaweedfs.env"
        subprocess.run([sys.executable, SCRIPT, "start", env_file], check=True)
        saved = dict(os.environ)
        try:
            for line in env_file.read_text().splitlines():
                key, _, value = line.removeprefix("export ").partition("=")
                os.environ[key] = shlex.split(value)[0] if value else ""
            yield
        finally:
            subprocess.run([sys.executable, SCRIPT, "stop", env_file], check=True)
            os.environ.clear()
            os.environ.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512, help="size of the object in MiB")
    parser.add_argument("--part-mib", type=int, default=8, help="multipart part size in MiB")
    parser.add_argument("--repetitions", type=int, default=3, help="interleaved repetitions")
    args = parser.parse_args()
    with s3_service():
        results = asyncio.run(run(args.mib * MiB, args.part_mib * MiB, args.repetitions))
    print(f"{args.mib} MiB, parts of {args.part_mib} MiB, median of {args.repetitions}:")
    for name, values in results.items():
        print(f"  {name:60} {statistics.median(values):8.2f}")


if __name__ == "__main__":
    main()
