"""Figure (6): what a second server process buys, ``--workers 1`` against ``--workers 2``.

Two of our servers run side by side, the same code and settings but for ``--workers``, each
on its own data directory; every measurement alternates between them within a repetition:

- ``GetModel`` from 64 concurrent callers over 16 connections (the kernel spreads
  connections, not calls, over the workers' SO_REUSEPORT listeners), with the unary figure's
  load code;
- ``Sizes.workers_transfers`` concurrent SDK uploads of ``Sizes.workers_transfer_mib`` MiB
  (distinct files), each over a connection of its own, then as many concurrent downloads.

The machine has 2 cores and the load generator (this process, one core at most) shares them
with the server, so a ratio below 2 is expected: the figures show what the second core buys
a server that competes with its clients for it. Which worker gets a connection depends on a
hash of its addresses, so a repetition may load one worker more than the other. The run's
facts record, per measurement, the cores this process kept busy (a load generator near 1.0
is the bottleneck) and, on the two-worker server, the busiest worker's share of the calls it
answered (0.5: even).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, replace
from pathlib import Path

from tests.server_process import wait_for

from ._processes import start_ours
from ._report import Better, Comparison
from ._session import Session, Target, alternated, random_file, seconds, sign_up_and_in
from .transfer import sdk_download, sdk_upload
from .unary import load, quantile

WORKER_COUNTS = (1, 2)
CALLERS = 64
CONNECTIONS = 16
#: Every call's access-log line names the worker process that answered it, and the method.
ANSWERED = re.compile(r"modelcatalog_server\.access\[(\d+)\]: rpc method=\S*/(\w+) ")
LOGGED_WITHIN_SECONDS = 5.0


def _name(workers: int) -> str:
    return f"{workers} worker" if workers == 1 else f"{workers} workers"


def _comparison(measurement: str, unit: str, better: Better) -> Comparison:
    """The row of ``measurement`` on two workers against one."""
    return Comparison(
        "workers", f"{measurement} {_name(2)}", f"{measurement} {_name(1)}", unit, better
    )


COMPARISONS = [
    _comparison(f"GetModel c={CALLERS} calls/s", "calls/s", "higher"),
    _comparison(f"GetModel c={CALLERS} p50", "ms", "lower"),
    _comparison(f"GetModel c={CALLERS} p99", "ms", "lower"),
    _comparison("concurrent uploads", "MiB/s", "higher"),
    _comparison("concurrent downloads", "MiB/s", "higher"),
]


@dataclass
class _Server:
    """One of the two servers: the benchmark user's session on it and the user's models."""

    workers: int
    bench: Session
    target: Target
    #: The model ``GetModel`` asks for.
    model_id: str
    #: One model per concurrent transfer, and the version each last upload made.
    transfer_models: list[str]
    versions: list[int]

    @property
    def name(self) -> str:
        return _name(self.workers)


async def run(bench: Session) -> None:
    count, size = bench.sizes.workers_transfers, bench.sizes.workers_transfer_mib
    sources = [random_file(bench.work / f"workers-{index}.bin", size) for index in range(count)]
    bench.results.facts["workers_busiest_share"] = {}
    bench.results.facts["workers_load_generator_cores"] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            servers = [
                await stack.enter_async_context(_started(bench, workers, count))
                for workers in WORKER_COUNTS
            ]
            for repetition in range(bench.sizes.repetitions):
                in_turn = alternated(servers, repetition)
                for server in in_turn:
                    await _measure(server, "GetModel", _get_model(server))
                for server in in_turn:
                    await _measure(server, "UploadModelVersion", _uploads(server, sources))
                for server in in_turn:
                    await _measure(server, "DownloadModelVersion", _downloads(server))
    finally:
        for source in sources:
            source.unlink()


@contextlib.asynccontextmanager
async def _started(bench: Session, workers: int, models: int) -> AsyncIterator[_Server]:
    """Our server with ``workers`` processes, the benchmark user signed up on it (its own
    token: each server has its own database), a folder and ``models`` + 1 models."""
    process = start_ours(
        bench.work / f"workers-{workers}", bench.signing_key, "--workers", str(workers)
    )
    try:
        target = Target(_name(workers), process)
        session = replace(bench, token=await sign_up_and_in(process))
        await session.create_folder(target)
        model_id, *transfer_models = await session.create_models(target, models + 1, "workers")
        yield _Server(workers, session, target, model_id, transfer_models, [])
    finally:
        process.stop()


async def _measure(server: _Server, method: str, step: Awaitable[int]) -> None:
    """Runs ``step``, which makes some calls of ``method``; notes the cores this process (the
    load generator) kept busy, and on the server of several workers how evenly they answered."""
    log_start = len(server.target.server.log())
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    calls = await step
    busy = (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)
    generator = server.bench.results.facts["workers_load_generator_cores"]
    generator.setdefault(f"{method} {server.name}", []).append(round(busy, 2))
    if server.workers == 1:
        return
    answered: Counter[str] = Counter()

    def all_logged() -> bool:
        """Whether every call's line is in the log (a worker writes it after its answer)."""
        answered.clear()
        for pid, logged_method in ANSWERED.findall(server.target.server.log()[log_start:]):
            if logged_method == method:
                answered[pid] += 1
        return answered.total() >= calls

    assert wait_for(all_logged, LOGGED_WITHIN_SECONDS), f"{answered.total()} of {calls} logged"
    shares = server.bench.results.facts["workers_busiest_share"]
    shares.setdefault(method, []).append(round(max(answered.values()) / answered.total(), 2))


async def _get_model(server: _Server) -> int:
    latencies, elapsed = await load(
        server.bench, server.target, "GetModel", server.model_id, CALLERS, CONNECTIONS
    )
    name = f"GetModel c={CALLERS}"
    results = server.bench.results
    results.add(f"{name} calls/s {server.name}", len(latencies) / elapsed)
    results.add(f"{name} p50 {server.name}", 1000 * quantile(latencies, 0.5))
    results.add(f"{name} p99 {server.name}", 1000 * quantile(latencies, 0.99))
    return len(latencies) + CONNECTIONS  # and the first call on each connection


async def _uploads(server: _Server, sources: list[Path]) -> int:
    bench, target = server.bench, server.target
    elapsed, versions = await seconds(
        asyncio.gather(
            *(
                sdk_upload(bench, target, model_id, source)
                for model_id, source in zip(server.transfer_models, sources, strict=True)
            )
        )
    )
    server.versions = versions
    total_mib = len(sources) * bench.sizes.workers_transfer_mib
    bench.results.add(f"concurrent uploads {server.name}", total_mib / elapsed)
    return len(sources)


async def _downloads(server: _Server) -> int:
    bench, target = server.bench, server.target
    transfers = list(zip(server.transfer_models, server.versions, strict=True))
    elapsed, _ = await seconds(
        asyncio.gather(
            *(
                sdk_download(
                    bench, target, model_id, version, bench.work / f"workers-download-{index}.bin"
                )
                for index, (model_id, version) in enumerate(transfers)
            )
        )
    )
    total_mib = len(transfers) * bench.sizes.workers_transfer_mib
    bench.results.add(f"concurrent downloads {server.name}", total_mib / elapsed)
    return len(transfers)
