"""Storage faults on the real server process: a really full file system, a database locked by
another process, and many calls cancelled by their deadlines."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1.health_pb2 import HealthCheckResponse
from grpclib.exceptions import GRPCError

from modelcatalog import AsyncClient, ResourceExhausted, Unavailable, v1

from .conftest import RunningServer, health_becomes, start_server

PASSWORD = "correct horse battery"
MiB = 1 << 20
# The documented bounds (README), as a client sees them; this process does not import the
# server, whose grpclib health messages would clash with grpcio's in one descriptor pool.
#: A call waits at most this long for the database, then answers UNAVAILABLE.
DATABASE_WAIT_SECONDS = 5.0
#: Health checks are reused for this long.
HEALTH_CHECK_TTL_SECONDS = 5.0
#: Database connections the server keeps; each holds at most 3 descriptors.
DATABASE_CONNECTIONS = 8
#: Size of the file system the full-disk server gets for its data directory.
SMALL_DISK = "8m"
#: The server's health may take one check TTL to notice a change, plus time to answer.
HEALTH_CHANGE_SECONDS = HEALTH_CHECK_TTL_SECONDS + 10.0

#: Runs the command after it in a private mount namespace with "$0" on a small tmpfs, so the
#: server (root or not, thanks to the user namespace) sees a file system that can really fill.
_ON_SMALL_TMPFS = 'mount -t tmpfs -o size=$1,mode=0700 tmpfs "$0" && shift && exec "$@"'


def small_tmpfs_prefix(directory: Path) -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare (util-linux) to give the server its own small file system")
    command = [unshare, "--mount", "--map-root-user", "--propagation", "private"]
    probe = subprocess.run(
        [*command, "sh", "-c", _ON_SMALL_TMPFS, str(directory), "1m", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace here: {probe.stderr}")
    return [*command, "sh", "-c", _ON_SMALL_TMPFS, str(directory), SMALL_DISK]


@pytest.fixture
def small_disk_server(tmp_path: Path, signing_key: Path) -> Iterator[RunningServer]:
    """A server whose data directory is an 8 MiB tmpfs that only it can see.

    The test reaches that file system through /proc/PID/root, the server's view of the world.
    """
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    prefix = small_tmpfs_prefix(data_dir)
    running = start_server(tmp_path, data_dir=data_dir, signing_key=signing_key, prefix=prefix)
    running.data_dir = Path(f"/proc/{running.process.pid}/root") / data_dir.relative_to("/")
    yield running
    assert running.stop() == 0, running.log()


def fill(path: Path) -> None:
    """Writes ``path`` until the file system has no byte left."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with pytest.raises(OSError, match="No space left"):
            write_forever(descriptor)
    finally:
        os.close(descriptor)


def write_forever(descriptor: int) -> None:
    block = bytes(MiB)
    while True:
        os.write(descriptor, block)


async def create_folders_until_refused(client: AsyncClient, most: int) -> None:
    """Creates up to ``most`` folders with long descriptions: a full database refuses one."""
    for number in range(most):
        await client.create_folder(f"folder {number}", "x" * 1000)


async def signed_in(server: RunningServer, **options: Any) -> AsyncClient:
    client = AsyncClient(server.address, ca_cert=server.ca_cert, **options)
    await client.sign_up("alice", PASSWORD)
    await client.sign_in("alice", PASSWORD)
    return client


@pytest.mark.embedded_only("fills the file system under the data directory")
async def test_full_disk_refuses_writes_reports_not_serving_and_recovers(
    small_disk_server: RunningServer, tmp_path: Path
) -> None:
    """On a really full file system uploads and changes answer RESOURCE_EXHAUSTED (STORAGE_FULL)
    and leave nothing, reads go on, health is NOT_SERVING; with room again all works."""
    server = small_disk_server
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(os.urandom(16 * MiB))
    small.write_bytes(os.urandom(64 * 1024))
    temporaries = server.data_dir / "blobs" / "tmp"
    alice = await signed_in(server)
    try:
        folder = await alice.create_folder("vision")
        model = await alice.create_model(folder.id, "resnet")
        with pytest.raises(ResourceExhausted) as too_big:
            await alice.upload(model.id, big)
        assert too_big.value.reason == "STORAGE_FULL"
        assert list(temporaries.iterdir()) == []
        assert await asyncio.to_thread(
            health_becomes, server, HealthCheckResponse.SERVING, HEALTH_CHANGE_SECONDS
        )

        filler = server.data_dir / "filler"
        fill(filler)
        assert await asyncio.to_thread(
            health_becomes, server, HealthCheckResponse.NOT_SERVING, HEALTH_CHANGE_SECONDS
        )
        with pytest.raises(ResourceExhausted) as upload_refused:
            await alice.upload(model.id, small)
        assert upload_refused.value.reason == "STORAGE_FULL"
        assert list(temporaries.iterdir()) == []
        with pytest.raises(ResourceExhausted) as change_refused:
            await create_folders_until_refused(alice, 200)
        assert change_refused.value.reason == "STORAGE_FULL"
        assert (await alice.get_model(model.id)).latest_version == 0
        assert (await alice.get_folder(folder.id)).name == "vision"

        filler.unlink()
        assert await asyncio.to_thread(
            health_becomes, server, HealthCheckResponse.SERVING, HEALTH_CHANGE_SECONDS
        )
        await alice.create_folder("after the cleanup")
        assert (await alice.upload(model.id, small)).version == 1
    finally:
        alice.close()
    log = server.log()
    assert "Traceback" not in log
    assert "status=INTERNAL" not in log


@pytest.mark.embedded_only("locks the SQLite file")
@pytest.mark.alone("bounds the time to the UNAVAILABLE answer")
async def test_database_locked_by_another_process_is_unavailable_within_the_bound(
    server: RunningServer,
) -> None:
    """While another process holds SQLite's write lock, a change answers UNAVAILABLE
    (STORAGE_UNAVAILABLE) after the documented wait, reads answer, and writes resume after.
    (One attempt: the SDK would retry the create, which its request_id makes safe.)"""
    alice = await signed_in(server, retries=0)
    try:
        await alice.create_folder("vision")
        locker = sqlite3.connect(server.data_dir / "catalog.sqlite3", isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(Unavailable) as caught:
                await alice.create_folder("while locked")
            waited = time.monotonic() - started
            assert caught.value.reason == "STORAGE_UNAVAILABLE"
            assert DATABASE_WAIT_SECONDS <= waited < DATABASE_WAIT_SECONDS + 3.0
            assert [folder.name async for folder in alice.list_folders()] == ["vision"]
        finally:
            locker.close()
        await alice.create_folder("after the lock")
    finally:
        alice.close()
    assert "status=INTERNAL" not in server.log()


#: Calls cut off by their deadline, and the client connections they are spread over.
CUT_OFF_CALLS = 800
CONNECTIONS = 8


def database_descriptors(pid: int) -> int:
    """How many descriptors process ``pid`` has open on its database files."""
    count = 0
    for descriptor in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
        except OSError:
            continue
        count += "catalog.sqlite3" in target
    return count


async def test_calls_cancelled_by_deadlines_keep_database_descriptors_bounded(
    server: RunningServer,
) -> None:
    """Hundreds of reads and writes cut off by 1-30 ms deadlines leave the server with at most
    its pool's descriptors on the database, no task destroyed pending, and still answering."""
    alice = await signed_in(server)
    # Each cut-off call resets its stream: spread over connections, the resets stay within
    # the server's per-connection budget (a burst of 200), which is not what this tests.
    channels = [server.channel() for _ in range(CONNECTIONS)]
    try:
        folder = await alice.create_folder("vision")
        for number in range(50):
            await alice.create_model(folder.id, f"model {number}", "x" * 200)
        metadata = {"authorization": f"Bearer {alice.token}"}
        stubs = [v1.ModelServiceStub(channel, metadata=metadata) for channel in channels]
        # One complete call per channel first: a deadline that fired during a TLS handshake
        # would waste the connection, and the server refuses an address that wastes too many.
        for models in stubs:
            await models.list_models(v1.ListModelsRequest(page_size=1))
        rng = random.Random(8)

        async def cut_off(number: int) -> None:
            models = stubs[number % CONNECTIONS]
            deadline = rng.uniform(0.001, 0.03)
            try:
                if number % 3:
                    await models.list_models(v1.ListModelsRequest(page_size=50), timeout=deadline)
                else:
                    request = v1.CreateModelRequest(folder.id, f"cut off {number}")
                    await models.create_model(request, timeout=deadline)
            except (GRPCError, TimeoutError):
                pass

        for batch in range(CUT_OFF_CALLS // 40):
            await asyncio.gather(*(cut_off(batch * 40 + i) for i in range(40)))
        listed = [model.name async for model in alice.list_models(folder.id)]
        assert len(listed) >= 50
        assert database_descriptors(server.process.pid) <= 3 * DATABASE_CONNECTIONS
    finally:
        alice.close()
        for channel in channels:
            channel.close()
    log = server.log()
    assert "Task was destroyed" not in log
    assert "status=INTERNAL" not in log
