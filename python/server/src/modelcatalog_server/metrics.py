"""Prometheus metrics: what the server handled and what it holds, for ``--metrics-listen``.

Calls are counted where they are logged (``rpc``), with the bytes their DATA frames carried,
which grpclib counts anyway: nothing is added per message or per chunk. Transfers in progress
and the database pool are read from the objects that hold them (``watch``) when Prometheus
scrapes, rather than updated on every change.

One process keeps its metrics in prometheus_client's default registry, which adds its process
and garbage-collector metrics. Under ``--workers N`` the supervisor gives its workers a private
directory (``shared_by_workers``) before it starts them; prometheus_client, imported afresh by
each spawned worker, then keeps the worker's metrics in files there, and the supervisor serves
their sum. Gauges cannot be read at scrape time across processes, so each worker copies them
into its files every ``GAUGE_SAMPLE_SECONDS`` (``gauges_sampled``), and the sum covers the
workers alive (``livesum``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .config import ListenAddress
from .domain.versions import Versions
from .storage.metadata import MetadataStore, PoolUsage

log = logging.getLogger("modelcatalog_server.metrics")

#: Where prometheus_client keeps a process's metrics when several processes share them; it
#: reads this variable once, when it is imported.
SHARED_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: How often a worker copies its gauges into the shared directory.
GAUGE_SAMPLE_SECONDS = 1.0
#: Call durations: unary calls take milliseconds, uploads and downloads up to minutes.
DURATION_BUCKETS_SECONDS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    float("inf"),
)

_CALLS = Counter(
    "modelcatalog_rpc_calls", "Calls handled, by method and gRPC status.", ("method", "status")
)
_DURATION = Histogram(
    "modelcatalog_rpc_duration_seconds",
    "Time from a call's start to its handler's end, by method and gRPC status.",
    ("method", "status"),
    buckets=DURATION_BUCKETS_SECONDS,
)
_RECEIVED = Counter(
    "modelcatalog_rpc_received_bytes",
    "Bytes of request messages received (gRPC framing included), by method.",
    ("method",),
)
_SENT = Counter(
    "modelcatalog_rpc_sent_bytes",
    "Bytes of response messages sent (gRPC framing included), by method.",
    ("method",),
)

_Series = tuple[Counter, Histogram, Counter, Counter]
#: The labelled series of each (method, status) seen: ``labels()`` costs more than the update.
_series: dict[tuple[str, str], _Series] = {}


def record_call(method: str, status: str, seconds: float, received: int, sent: int) -> None:
    """Counts one call that ended with ``status`` after ``seconds``, having received and sent
    that many bytes of messages."""
    series = _series.get((method, status))
    if series is None:
        series = _series[method, status] = (
            _CALLS.labels(method, status),
            _DURATION.labels(method, status),
            _RECEIVED.labels(method),
            _SENT.labels(method),
        )
    calls, duration, received_bytes, sent_bytes = series
    calls.inc()
    duration.observe(seconds)
    received_bytes.inc(received)
    sent_bytes.inc(sent)


@dataclass
class _Watched:
    """What the gauges read: this process's application (the last one built, in tests)."""

    store: MetadataStore | None = None
    versions: Versions | None = None

    def pool(self) -> PoolUsage:
        return PoolUsage(0, 0, 0) if self.store is None else self.store.pool_usage()

    def uploads(self) -> int:
        return 0 if self.versions is None else self.versions.uploads_in_progress

    def downloads(self) -> int:
        return 0 if self.versions is None else self.versions.downloads_in_progress


_watched = _Watched()


def watch(store: MetadataStore, versions: Versions) -> None:
    """Makes the gauges report ``store``'s pool and ``versions``' transfers."""
    _watched.store = store
    _watched.versions = versions


def _gauge(
    name: str, documentation: str, read: Callable[[], float]
) -> tuple[Gauge, Callable[[], float]]:
    return Gauge(name, documentation, multiprocess_mode="livesum"), read


_GAUGES = (
    _gauge("modelcatalog_uploads_in_progress", "Uploads in progress.", _watched.uploads),
    _gauge("modelcatalog_downloads_in_progress", "Downloads in progress.", _watched.downloads),
    _gauge(
        "modelcatalog_database_pool_size",
        "Database connections the pool keeps at most (SQLite: threads with a connection each).",
        lambda: _watched.pool().size,
    ),
    _gauge(
        "modelcatalog_database_pool_in_use",
        "Pooled database connections running a transaction.",
        lambda: _watched.pool().in_use,
    ),
    _gauge(
        "modelcatalog_database_pool_waiting",
        "Transactions waiting for a pooled database connection.",
        lambda: _watched.pool().waiting,
    ),
)

#: Whether this process keeps its metrics in a directory shared with others: a worker of a
#: supervisor that serves metrics.
_SHARED = bool(os.environ.get(SHARED_DIRECTORY_VARIABLE))

if not _SHARED:
    for _gauge_of, _read in _GAUGES:
        _gauge_of.set_function(_read)


@asynccontextmanager
async def gauges_sampled() -> AsyncIterator[None]:
    """While the block runs, copies the gauges into the shared directory every
    ``GAUGE_SAMPLE_SECONDS`` (in a process that keeps its metrics there; else nothing)."""
    if not _SHARED:
        yield
        return
    sampler = asyncio.ensure_future(_sample_forever())
    try:
        yield
    finally:
        sampler.cancel()
        with suppress(asyncio.CancelledError):
            await sampler


async def _sample_forever() -> None:
    while True:
        for gauge, read in _GAUGES:
            gauge.set(read())
        await asyncio.sleep(GAUGE_SAMPLE_SECONDS)


class Endpoint:
    """``/metrics`` served over plain HTTP by a thread, until ``close``."""

    def __init__(self, listen: ListenAddress, registry: CollectorRegistry | None = None) -> None:
        """Serves ``registry`` (by default this process's metrics) at ``listen``; OSError when
        the address cannot be bound."""
        server, thread = _start_http_server(
            listen.port, listen.host, REGISTRY if registry is None else registry
        )
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.address = ListenAddress(listen.host, server.server_port)
        log.info("metrics on http://%s/metrics", self.address)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class SharedByWorkers:
    """The directory where worker processes keep their metrics, and the registry summing it."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=directory)  # type: ignore[no-untyped-call]

    def process_exited(self, pid: int) -> None:
        """Drops the gauges of a worker that exited; its counts stay in the sums."""
        mark_process_dead(pid, self.directory)  # type: ignore[no-untyped-call]


@contextmanager
def shared_by_workers() -> Iterator[SharedByWorkers]:
    """A fresh private directory for the metrics of the worker processes started within the
    block (they learn it from the environment they inherit); removed afterwards."""
    directory = tempfile.mkdtemp(prefix="modelcatalog-metrics-")
    previous = os.environ.get(SHARED_DIRECTORY_VARIABLE)
    os.environ[SHARED_DIRECTORY_VARIABLE] = directory
    try:
        yield SharedByWorkers(directory)
    finally:
        if previous is None:
            del os.environ[SHARED_DIRECTORY_VARIABLE]
        else:
            os.environ[SHARED_DIRECTORY_VARIABLE] = previous
        shutil.rmtree(directory, ignore_errors=True)
