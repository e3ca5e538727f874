"""Faults a client can provoke or exploit: a full disk, and database calls cut short.

Rows of issue 8: disk full, and many cancelled database calls (deadlines and resets).
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import subprocess
from collections import Counter
from collections.abc import Awaitable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelcatalog import ModelCatalogError

from ..server_process import RunningServer, wait_for
from ._attack import LIST_MODELS, Connection, bearer, new_model, sdk_client, signed_up
from ._gauges import HEALTH_P99_BOUND_SECONDS, MIB, Monitor, open_fds, sqlite_fds
from .conftest import SCALE, Launcher

#: SQLite descriptors the server may hold: each pooled connection opens the database, its WAL
#: and its shared-memory file, and the server's pool keeps at most 8 connections, opened as
#: needed and kept open (storage/metadata.py, SQLITE_POOL_SIZE).
SQLITE_FD_BUDGET = 3 * 8
#: Other descriptors beyond those of the idle server that may stay open after the storm.
FD_SLACK = 8
#: Calls sent at once on each of a round's two connections, for as many rounds as the scale
#: asks.
CALLS_PER_ROUND = 50
#: Deadlines spread over 1..20 ms, so that cancellation lands at every step of a query.
DEADLINE_SPREAD_MS = 20
SMALL_DISK = 24 * MIB
#: How long the health check may keep its cached answer after the disk filled or emptied.
HEALTH_FOLLOWS_WITHIN_SECONDS = 15.0


async def test_cancelled_database_calls_release_their_connections(server: RunningServer) -> None:
    """Many database calls cut short by deadlines and resets: none answers INTERNAL, the
    database descriptors stay within the pool's bound and come back, nothing is destroyed
    pending."""
    token = await signed_up(server, "canceller")
    await new_model(server, token)
    pid = server.process.pid
    idle_other_fds = len(open_fds(pid)) - sqlite_fds(pid)
    outcomes: Counter[str] = Counter()
    with Monitor(server) as monitor:
        for _ in range(SCALE.cancelled_calls // (2 * CALLS_PER_ROUND)):
            # Fresh connections each round: a client resetting calls this fast for long is the
            # rapid-reset attack, which the server ends at its RST_STREAM budget (tested
            # elsewhere); here each connection stays well within it.
            connections = [await Connection.open(server) for _ in range(2)]
            try:
                deadlined: list[tuple[Connection, int]] = []
                for connection in connections:
                    for n in range(CALLS_PER_ROUND):
                        timeout = ("grpc-timeout", f"{1 + n % DEADLINE_SPREAD_MS}m")
                        stream_id = await connection.start_call(
                            LIST_MODELS, [*bearer(token), timeout]
                        )
                        await connection.send_message(stream_id, b"", end_stream=True)
                        if n % 2:
                            await connection.reset(stream_id)
                        else:
                            deadlined.append((connection, stream_id))
                for connection, stream_id in deadlined:
                    await connection.finished(stream_id, within=30)
                    outcomes[connection.outcome(stream_id)] += 1
            finally:
                for connection in connections:
                    await connection.close()
    settled = await asyncio.to_thread(
        wait_for,
        lambda: (
            sqlite_fds(pid) <= SQLITE_FD_BUDGET
            and len(open_fds(pid)) - sqlite_fds(pid) <= idle_other_fds + FD_SLACK
        ),
        15,
    )
    print(
        f"deadlined calls: {dict(outcomes)}; SQLite fds peak {monitor.peak_sqlite_fds}, "
        f"now {sqlite_fds(pid)}; other fds idle {idle_other_fds}, "
        f"now {len(open_fds(pid)) - sqlite_fds(pid)}; "
        f"{monitor.summary()}"
    )
    assert not any(o.startswith(("INTERNAL", "UNKNOWN", "no answer")) for o in outcomes)
    assert monitor.peak_sqlite_fds <= SQLITE_FD_BUDGET
    assert settled
    assert monitor.p99 < HEALTH_P99_BOUND_SECONDS


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs mounted for the test (needs root, as a full disk cannot be faked)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def _fill(directory: Path) -> Path:
    """Writes a file into ``directory`` until its file system is full."""
    filler = directory / "filler"
    with filler.open("wb") as file:
        try:
            while True:
                file.write(b"\0" * MIB)
                file.flush()
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    return filler


async def _outcome(call: Awaitable[object]) -> str:
    """'OK', or the status and reason of the error ``call`` raised."""
    try:
        await call
    except ModelCatalogError as error:
        return f"{error.status.name} {error.reason}"
    return "OK"


def _health_becomes(server: RunningServer, status: int) -> bool:
    """Whether health answers ``status`` within the health check's refresh time, polling on one
    connection (a new connection per poll would be refused as a reconnect storm)."""
    credentials = grpc.ssl_channel_credentials(server.ca_cert.read_bytes())
    with grpc.secure_channel(server.address, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def answers() -> bool:
            response = stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
            return int(response.status) == status

        return wait_for(answers, HEALTH_FOLLOWS_WITHIN_SECONDS)


async def test_disk_full_answers_storage_full_and_health_not_serving(
    small_disk: Path, launch: Launcher
) -> None:
    """On a full disk uploads (and creates that need space) answer RESOURCE_EXHAUSTED
    (STORAGE_FULL), health says NOT_SERVING; once space is freed both recover."""
    server = launch(data_dir=small_disk / "data")
    token = await signed_up(server, "filler")
    model_id = await new_model(server, token)
    filler = await asyncio.to_thread(_fill, small_disk)
    try:
        async with sdk_client(server, token) as client:
            upload = await _outcome(
                client.upload(model_id, io.BytesIO(os.urandom(2 * MIB)), file_name="w.bin")
            )
            create = await _outcome(client.create_folder("while-full"))
        not_serving = await asyncio.to_thread(
            _health_becomes, server, health_pb2.HealthCheckResponse.NOT_SERVING
        )
    finally:
        filler.unlink()
    serving = await asyncio.to_thread(
        _health_becomes, server, health_pb2.HealthCheckResponse.SERVING
    )
    async with sdk_client(server, token) as client:
        stored = await client.upload(model_id, io.BytesIO(os.urandom(2 * MIB)), file_name="w.bin")
    print(
        f"upload on a full disk: {upload}; create folder: {create}; "
        f"health NOT_SERVING: {not_serving}, SERVING again: {serving}; "
        f"then version {stored.version}"
    )
    assert upload == "RESOURCE_EXHAUSTED STORAGE_FULL"
    assert create in {"OK", "RESOURCE_EXHAUSTED STORAGE_FULL"}
    assert not_serving
    assert serving
    assert stored.version == 1
