"""``--metrics-listen``: the real server's Prometheus endpoint, for one process and for the
workers of a supervisor, whose metrics it sums."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import signal
import urllib.request
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from upload_streams import stalled_upload

from modelcatalog import AsyncClient, v1

from ..server_process import scaled_out
from .conftest import RunningServer, start_server, wait_for

PASSWORD = "correct horse battery"
MiB = 1 << 20
WORKERS = 2
METRICS_AT = re.compile(r"metrics on http://(\S+)/metrics")
SIGN_IN = "/modelcatalog.v1.AuthService/SignIn"
GET_MODEL = "/modelcatalog.v1.ModelService/GetModel"
UPLOAD = "/modelcatalog.v1.ModelService/UploadModelVersion"
DOWNLOAD = "/modelcatalog.v1.ModelService/DownloadModelVersion"
#: Fresh connections made at most to reach both workers (the kernel spreads them by a hash).
MAX_CONNECTIONS = 40
#: How long the gauges of workers may take to show a change (they sample every second).
GAUGE_SECONDS = 10.0
EXIT_SECONDS = 15.0
#: The server's SQLITE_POOL_SIZE and POSTGRES_POOL_SIZE (storage/metadata.py), repeated: this
#: suite cannot import the server, whose health protos clash with grpcio's.
SQLITE_POOL_SIZE = 8
POSTGRES_POOL_SIZE = 10


def pool_size_of_one_process() -> int:
    return POSTGRES_POOL_SIZE if scaled_out() else SQLITE_POOL_SIZE


def scrape(server: RunningServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples the server's /metrics returns, by name and labels."""
    match = METRICS_AT.search(server.log())
    assert match, server.log()
    with urllib.request.urlopen(f"http://{match.group(1)}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(server: RunningServer, name: str, **labels: str) -> float:
    """One sample of the server's metrics, 0 where it has none."""
    return scrape(server).get((name, frozenset(labels.items())), 0.0)


def calls(server: RunningServer, method: str, status: str = "OK") -> float:
    return value(server, "modelcatalog_rpc_calls_total", method=method, status=status)


def calls_by_process(server: RunningServer, method: str) -> Counter[int]:
    """How many calls of ``method`` each worker logged (each line names its process)."""
    pattern = re.compile(rf"modelcatalog_server\.access\[(\d+)\]: rpc method={re.escape(method)} ")
    return Counter(int(pid) for pid in pattern.findall(server.log()))


def logged(server: RunningServer, method: str, count: int) -> bool:
    """Whether the workers logged ``count`` calls of ``method``, together."""
    return sum(calls_by_process(server, method).values()) == count


async def test_one_process_reports_its_calls_bytes_and_process(
    tmp_path: Path, signing_key: Path
) -> None:
    """A scrape after a sign-up, an upload and a download shows each call once, the file's
    bytes in and out, nothing left in progress, the pool, and the process's own metrics."""
    server = start_server(tmp_path, "--metrics-listen", "127.0.0.1:0", signing_key=signing_key)
    try:
        data = os.urandom(3 * MiB + 1)
        (tmp_path / "model.bin").write_bytes(data)
        async with AsyncClient(server.address, ca_cert=server.ca_cert) as alice:
            await alice.sign_up("alice", PASSWORD)
            await alice.sign_in("alice", PASSWORD)
            folder = await alice.create_folder("vision")
            model = await alice.create_model(folder.id, "resnet")
            await alice.upload(model.id, tmp_path / "model.bin")
            await alice.download(model.id, 1, tmp_path / "copy.bin")
        # A call is counted just after its answer has left, so the last may still be on its way.
        assert await asyncio.to_thread(wait_for, lambda: calls(server, DOWNLOAD) == 1, 5)
        samples = await asyncio.to_thread(scrape, server)

        def sample(name: str, **labels: str) -> float:
            return samples.get((name, frozenset(labels.items())), 0.0)

        for method in (SIGN_IN, UPLOAD, DOWNLOAD):
            assert sample("modelcatalog_rpc_calls_total", method=method, status="OK") == 1
            assert (
                sample("modelcatalog_rpc_duration_seconds_count", method=method, status="OK") == 1
            )
        assert sample("modelcatalog_rpc_received_bytes_total", method=UPLOAD) > len(data)
        assert sample("modelcatalog_rpc_sent_bytes_total", method=DOWNLOAD) > len(data)
        assert sample("modelcatalog_uploads_in_progress") == 0
        assert sample("modelcatalog_database_pool_size") == pool_size_of_one_process()
        assert sample("process_resident_memory_bytes") > 0
    finally:
        assert server.stop() == 0, server.log()


def start_workers_with_metrics(
    tmp_path: Path, signing_key: Path, environment: dict[str, str] | None = None
) -> RunningServer:
    """A server with ``WORKERS`` workers and its metrics on a free loopback port."""
    return start_server(
        tmp_path,
        "--workers",
        str(WORKERS),
        "--metrics-listen",
        "127.0.0.1:0",
        signing_key=signing_key,
        environment=environment,
    )


async def test_workers_report_the_sum_of_their_calls(tmp_path: Path, signing_key: Path) -> None:
    """With two workers, one scrape counts the calls both handled, and the pools of both; the
    supervisor's private metrics directory is gone once it stopped."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    server = start_workers_with_metrics(tmp_path, signing_key, {"TMPDIR": str(private_tmp)})
    try:
        assert [p.name.startswith("modelcatalog-metrics-") for p in private_tmp.iterdir()] == [True]
        async with AsyncClient(server.address, ca_cert=server.ca_cert) as alice:
            await alice.sign_up("alice", PASSWORD)
        for signed_in in range(1, MAX_CONNECTIONS + 1):
            async with AsyncClient(server.address, ca_cert=server.ca_cert) as alice:
                await alice.sign_in("alice", PASSWORD)
            # A call is logged and counted just after its answer has left.
            assert await asyncio.to_thread(
                wait_for, functools.partial(logged, server, SIGN_IN, signed_in), 5
            )
            if len(calls_by_process(server, SIGN_IN)) == WORKERS:
                break
        by_worker = calls_by_process(server, SIGN_IN)
        assert len(by_worker) == WORKERS
        assert await asyncio.to_thread(
            wait_for, lambda: calls(server, SIGN_IN) == sum(by_worker.values()), 5
        )
        assert await asyncio.to_thread(
            wait_for,
            lambda: (
                value(server, "modelcatalog_database_pool_size")
                == WORKERS * pool_size_of_one_process()
            ),
            GAUGE_SECONDS,
        )
    finally:
        assert server.stop() == 0, server.log()
    assert list(private_tmp.iterdir()) == []


async def test_a_killed_workers_calls_stay_counted_and_its_upload_leaves_the_gauge(
    tmp_path: Path, signing_key: Path
) -> None:
    """SIGKILL of a worker in the middle of an upload: the calls it answered before still
    count, and its upload no longer shows as in progress."""
    server = start_workers_with_metrics(tmp_path, signing_key)
    try:
        async with AsyncClient(server.address, ca_cert=server.ca_cert) as alice:
            await alice.sign_up("alice", PASSWORD)
            await alice.sign_in("alice", PASSWORD)
            folder = await alice.create_folder("vision")
            model = await alice.create_model(folder.id, "resnet")
            token = alice.token
        sent_first = asyncio.Event()

        # One connection: every call on it goes to the same worker.
        channel = server.channel()
        stub = v1.ModelServiceStub(channel, metadata={"authorization": f"Bearer {token}"})
        for _ in range(3):
            await stub.get_model(v1.GetModelRequest(model.id))
        uploading = asyncio.create_task(
            stub.upload_model_version(stalled_upload(model.id, sent_first))
        )
        await sent_first.wait()
        assert await asyncio.to_thread(
            wait_for,
            lambda: value(server, "modelcatalog_uploads_in_progress") == 1,
            GAUGE_SECONDS,
        )
        assert await asyncio.to_thread(wait_for, lambda: calls(server, GET_MODEL) == 3, 5)
        [worker] = calls_by_process(server, GET_MODEL)
        os.kill(worker, signal.SIGKILL)
        assert await asyncio.to_thread(
            wait_for, lambda: f"(pid {worker}) was killed by SIGKILL" in server.log(), EXIT_SECONDS
        )
        uploading.cancel()
        await asyncio.gather(uploading, return_exceptions=True)
        channel.close()
        assert await asyncio.to_thread(
            wait_for,
            lambda: value(server, "modelcatalog_uploads_in_progress") == 0,
            GAUGE_SECONDS,
        )
        assert await asyncio.to_thread(calls, server, GET_MODEL) == 3
    finally:
        assert server.stop() == 0, server.log()
