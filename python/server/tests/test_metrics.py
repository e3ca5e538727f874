"""Prometheus metrics: calls by method and status, their bytes, transfers and the database pool
as the server holds them, and the plain-HTTP endpoint that serves them."""

from __future__ import annotations

import asyncio
import os
import socket
import urllib.request

import pytest
from grpclib.const import Status
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from server_testing import Api, blocked_transactions, expect_error, poll_until
from test_versions import download, model_of, upload
from upload_streams import stalled_upload

from modelcatalog import v1
from modelcatalog_server import metrics
from modelcatalog_server.app import StartupError, metrics_served, storage_locations
from modelcatalog_server.config import ListenAddress, Settings
from modelcatalog_server.storage.metadata import (
    POSTGRES_POOL_SIZE,
    SQLITE_POOL_SIZE,
    MetadataStore,
)

MiB = 1 << 20
SIGN_UP = "/modelcatalog.v1.AuthService/SignUp"
UPLOAD = "/modelcatalog.v1.ModelService/UploadModelVersion"
DOWNLOAD = "/modelcatalog.v1.ModelService/DownloadModelVersion"
#: A gRPC message's frame adds 5 bytes to it; an upload message adds a tag and a length.
FRAMING_BYTES = 64


def value(name: str, **labels: str) -> float:
    """A sample of this process's metrics, 0 where none was recorded yet."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_calls_are_counted_and_timed_by_method_and_status(api: Api) -> None:
    """Each call adds one to its method and status, in the counter and the histogram."""
    names = ("modelcatalog_rpc_calls_total", "modelcatalog_rpc_duration_seconds_count")
    ok = {"method": SIGN_UP, "status": "OK"}
    taken = {"method": SIGN_UP, "status": "ALREADY_EXISTS"}
    before = {
        (name, status["status"]): value(name, **status) for name in names for status in (ok, taken)
    }
    await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))
    await expect_error(
        api.auth.sign_up(v1.SignUpRequest("alice", "correct horse")),
        Status.ALREADY_EXISTS,
        "USERNAME_TAKEN",
    )
    for name in names:
        for status in (ok, taken):
            assert value(name, **status) == before[name, status["status"]] + 1
    assert value("modelcatalog_rpc_duration_seconds_sum", **ok) > 0
    assert value("modelcatalog_rpc_duration_seconds_bucket", le="+Inf", **ok) >= 1


async def test_bytes_of_uploads_and_downloads_are_counted(api: Api) -> None:
    """An upload's bytes count as received by its method, a download's as sent by its own."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = os.urandom(2 * MiB + 5)
    received_before = value("modelcatalog_rpc_received_bytes_total", method=UPLOAD)
    await upload(alice, model.id, data)
    received = value("modelcatalog_rpc_received_bytes_total", method=UPLOAD) - received_before
    assert len(data) < received < len(data) + 8 * FRAMING_BYTES
    sent_before = value("modelcatalog_rpc_sent_bytes_total", method=DOWNLOAD)
    await download(alice, model.id, 1)
    sent = value("modelcatalog_rpc_sent_bytes_total", method=DOWNLOAD) - sent_before
    assert len(data) < sent < len(data) + 8 * FRAMING_BYTES


async def test_uploads_in_progress_follow_an_upload(api: Api) -> None:
    """The gauge counts an upload while its client is still sending, and drops when it ends."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    sent_first = asyncio.Event()

    assert value("modelcatalog_uploads_in_progress") == 0
    task = asyncio.create_task(
        alice.models.upload_model_version(stalled_upload(model.id, sent_first))
    )
    await sent_first.wait()
    assert await poll_until(lambda: value("modelcatalog_uploads_in_progress") == 1)
    assert value("modelcatalog_downloads_in_progress") == 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await poll_until(lambda: value("modelcatalog_uploads_in_progress") == 0)


async def test_the_pool_gauges_report_the_application_store(api: Api, settings: Settings) -> None:
    """The pool size is the backend's, and the pool comes free between calls (background
    clean-ups of abandoned uploads may hold a connection for a moment)."""
    await api.caller("alice")
    size = POSTGRES_POOL_SIZE if settings.database_url else SQLITE_POOL_SIZE
    assert value("modelcatalog_database_pool_size") == size
    assert await poll_until(lambda: value("modelcatalog_database_pool_in_use") == 0)
    assert value("modelcatalog_database_pool_waiting") == 0


async def test_pool_usage_counts_transactions_running_and_waiting(settings: Settings) -> None:
    """With every pooled connection held, one more transaction waits; all are counted."""
    database, _ = storage_locations(settings)
    store = await MetadataStore.open(database, wait_seconds=60)
    try:
        size = store.pool_usage().size
        assert await store.read(lambda tx: store.pool_usage().in_use) == 1
        async with blocked_transactions(settings) as blocked:
            running = [asyncio.create_task(store.read(blocked)) for _ in range(size + 1)]
            assert await poll_until(
                lambda: (store.pool_usage().in_use, store.pool_usage().waiting) == (size, 1)
            )
        await asyncio.gather(*running)
        assert (store.pool_usage().in_use, store.pool_usage().waiting) == (0, 0)
    finally:
        await store.close()


def scrape(address: ListenAddress) -> dict[str, float]:
    """The samples an HTTP GET of /metrics returns, by name and labels."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_endpoint_serves_calls_and_process_metrics_over_http(api: Api) -> None:
    """A scrape of /metrics shows the calls made and prometheus_client's process metrics."""
    await api.auth.sign_up(v1.SignUpRequest("alice", "correct horse"))
    endpoint = metrics.Endpoint(ListenAddress("127.0.0.1", 0))
    try:
        assert endpoint.address.port != 0
        samples = await asyncio.to_thread(scrape, endpoint.address)
    finally:
        endpoint.close()
    calls = samples[
        f"modelcatalog_rpc_calls_total{sorted({'method': SIGN_UP, 'status': 'OK'}.items())}"
    ]
    assert calls == value("modelcatalog_rpc_calls_total", method=SIGN_UP, status="OK") >= 1
    assert samples["process_resident_memory_bytes[]"] > 0


def test_a_metrics_address_in_use_stops_the_start() -> None:
    """A metrics port another socket holds is a start-up error naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = ListenAddress("127.0.0.1", taken.getsockname()[1])
        served = metrics_served(address)
        with pytest.raises(StartupError, match=f"cannot serve metrics on {address}"):
            served.__enter__()
