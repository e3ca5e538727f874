"""``--workers N``: one port served by several server processes under one supervisor."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_health.v1.health_pb2 import HealthCheckResponse

from modelcatalog import AsyncClient

from .conftest import RunningServer, health_becomes, start_server, wait_for

PASSWORD = "correct horse battery"
MiB = 1 << 20
WORKERS = 2
#: The supervisor logs each worker it starts; every line of a worker carries its pid.
STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")
RPC_BY = re.compile(r"modelcatalog_server\.access\[(\d+)\]: rpc ")
#: Fresh connections made at most to see both workers answer: the kernel spreads connections
#: over them by a hash, so all landing on one is as likely as 40 coin flips alike.
MAX_CONNECTIONS = 40
DRAIN_SECONDS = 3
#: How long the supervisor and its workers may take to exit once told to.
EXIT_SECONDS = 15.0


@pytest.fixture
def workers(tmp_path: Path, signing_key: Path) -> Iterator[RunningServer]:
    """A TLS server with two workers; it must exit cleanly on SIGTERM afterwards."""
    running = start_server(tmp_path, "--workers", str(WORKERS), signing_key=signing_key)
    yield running
    assert running.stop() == 0, running.log()


def worker_pids(server: RunningServer) -> dict[int, int]:
    """The pid of each worker slot's latest process, from the supervisor's log."""
    return {int(number): int(pid) for number, pid in STARTED.findall(server.log())}


def serving_pids(server: RunningServer) -> set[int]:
    """The processes that have answered a call (each call is logged by the one that ran it)."""
    return {int(pid) for pid in RPC_BY.findall(server.log())}


def children(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, parent = stat.rpartition(")")[2].split()[:2]
            if int(parent) == pid and state != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited: it only waits to be reaped; the supervisor
    reaps its workers once all their threads have ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def download_on_fresh_connections(
    server: RunningServer, model_id: str, expected: bytes, tmp_path: Path
) -> None:
    """Bob downloads version 1 over new connections until both workers have served calls."""
    for attempt in range(MAX_CONNECTIONS):
        async with AsyncClient(server.address, ca_cert=server.ca_cert) as bob:
            await bob.sign_in("bob", PASSWORD)
            target = tmp_path / f"copy-{attempt}.bin"
            await bob.download(model_id, 1, target)
            assert target.read_bytes() == expected
        if serving_pids(server) >= set(worker_pids(server).values()):
            return


async def test_two_workers_serve_the_readme_scenario_on_one_port(
    workers: RunningServer, tmp_path: Path
) -> None:
    """Sign-up, folder, model, upload, grant and downloads work through two worker processes,
    which both answer calls on the one port; the supervisor itself serves none."""
    assert "2 workers" in workers.log()
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(3 * MiB + 17))
    async with AsyncClient(workers.address, ca_cert=workers.ca_cert) as alice:
        await alice.sign_up("alice", PASSWORD)
        await alice.sign_in("alice", PASSWORD)
        folder = await alice.create_folder("vision")
        model = await alice.create_model(folder.id, "resnet")
        version = await alice.upload(model.id, source)
        assert version.version == 1
        async with AsyncClient(workers.address, ca_cert=workers.ca_cert) as bob:
            await bob.sign_up("bob", PASSWORD)
        await alice.grant_folder_access(folder.id, "bob", "viewer")
    await download_on_fresh_connections(workers, model.id, source.read_bytes(), tmp_path)
    pids = set(worker_pids(workers).values())
    assert len(pids) == WORKERS
    assert serving_pids(workers) == pids
    assert workers.process.pid not in serving_pids(workers)


def test_sigterm_stops_every_worker_and_leaves_no_process(workers: RunningServer) -> None:
    """SIGTERM to the supervisor stops every worker gracefully; it exits 0, and none of its
    processes outlives it."""
    started = children(workers.process.pid)
    assert set(worker_pids(workers).values()) <= started
    assert workers.stop(signal.SIGTERM) == 0
    assert wait_for(lambda: not any(alive(pid) for pid in started), EXIT_SECONDS)
    log = workers.log()
    for pid in worker_pids(workers).values():
        assert f"modelcatalog_server[{pid}]: stopped" in log
    assert "Traceback" not in log


def test_ctrl_c_stops_every_worker_without_a_traceback(tmp_path: Path, signing_key: Path) -> None:
    """Ctrl-C in a terminal signals the supervisor and every worker at once (one process
    group): the workers leave the stopping to the supervisor, all drain, it exits 0, and no
    process prints a traceback."""
    server = start_server(
        tmp_path, "--workers", str(WORKERS), signing_key=signing_key, prefix=["setsid"]
    )
    started = children(server.process.pid)
    os.killpg(server.process.pid, signal.SIGINT)
    assert server.process.wait(EXIT_SECONDS) == 0, server.log()
    assert wait_for(lambda: not any(alive(pid) for pid in started), EXIT_SECONDS)
    log = server.log()
    for pid in worker_pids(server).values():
        assert f"modelcatalog_server[{pid}]: stopped" in log
    assert "Traceback" not in log


async def test_a_killed_worker_is_replaced_while_the_port_keeps_answering(
    workers: RunningServer,
) -> None:
    """SIGKILL of one worker: calls on new connections still succeed at once, and the
    supervisor starts a replacement that serves too."""
    killed = worker_pids(workers)[1]
    os.kill(killed, signal.SIGKILL)
    # Reaped by the supervisor: all its threads have ended and its listener is closed.
    reaped = f"worker 1 (pid {killed}) was killed by SIGKILL"
    assert wait_for(lambda: reaped in workers.log(), EXIT_SECONDS)
    for _ in range(5):
        async with AsyncClient(workers.address, ca_cert=workers.ca_cert) as client:
            await client.sign_up(f"user{os.urandom(4).hex()}", PASSWORD)
    assert wait_for(lambda: worker_pids(workers)[1] != killed)
    replacement = worker_pids(workers)[1]
    assert wait_for(lambda: f"worker 1 (pid {replacement}) accepts connections" in workers.log())


@pytest.mark.alone("asks health within the workers' drain time")
def test_health_is_not_serving_while_workers_drain(tmp_path: Path, signing_key: Path) -> None:
    """After SIGTERM, health answers NOT_SERVING during the drain period, then every process
    exits with status 0."""
    running = start_server(
        tmp_path,
        "--workers",
        str(WORKERS),
        "--drain-period",
        str(DRAIN_SECONDS),
        signing_key=signing_key,
    )
    assert health_becomes(running, HealthCheckResponse.SERVING, EXIT_SECONDS)
    running.process.send_signal(signal.SIGTERM)
    assert health_becomes(running, HealthCheckResponse.NOT_SERVING, DRAIN_SECONDS)
    assert running.process.wait(timeout=DRAIN_SECONDS + EXIT_SECONDS) == 0
    assert "SIGTERM: health answers NOT_SERVING; closing in 3 s" in running.log()


def test_one_worker_is_the_single_process_server(tmp_path: Path, signing_key: Path) -> None:
    """--workers 1 runs no supervisor: the process started serves, with no child process."""
    running = start_server(tmp_path, "--workers", "1", signing_key=signing_key)
    try:
        assert children(running.process.pid) == set()
        assert "modelcatalog_server.workers" not in running.log()
        assert f"modelcatalog_server[{running.process.pid}]" not in running.log()
    finally:
        assert running.stop() == 0, running.log()


def test_a_port_already_served_by_workers_is_refused(
    workers: RunningServer, tmp_path: Path
) -> None:
    """A second server with workers on the same port exits with status 1 and says why: the
    port is never shared with another server by SO_REUSEPORT."""
    result = subprocess.run(
        [
            "modelcatalog-server",
            "--workers",
            "2",
            "--listen",
            workers.address,
            "--data-dir",
            str(tmp_path / "other"),
            "--bcrypt-cost",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=EXIT_SECONDS * 2,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert f"cannot listen on {workers.address}" in result.stderr
    assert "Traceback" not in result.stderr
