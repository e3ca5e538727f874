"""Figure (2): unary latency (p50, p99) and throughput at 1, 16 and 64 concurrent callers.

``GetModel`` of one model and ``ListModels`` (first page of 100) with the catalog holding
``Sizes.models`` models, on our server and the reference, from the same grpcio client (so
client cost is equal). Each case runs for ``Sizes.unary_seconds``; cases are interleaved, the
two servers' order alternating from one repetition to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from modelcatalog.v1 import model_service_pb2, model_service_pb2_grpc

from ._report import Comparison
from ._session import Session, Target

CONCURRENCY = (1, 16, 64)
METHODS = ("GetModel", "ListModels")
PAGE_SIZE = 100

COMPARISONS = [
    comparison
    for method in METHODS
    for callers in CONCURRENCY
    for comparison in (
        Comparison(
            "unary",
            f"{method} c={callers} calls/s ours",
            f"{method} c={callers} calls/s reference",
            "calls/s",
            "higher",
            1.0,
        ),
        Comparison(
            "unary",
            f"{method} c={callers} p50 ours",
            f"{method} c={callers} p50 reference",
            "ms",
            "lower",
        ),
        Comparison(
            "unary",
            f"{method} c={callers} p99 ours",
            f"{method} c={callers} p99 reference",
            "ms",
            "lower",
        ),
    )
]


async def run(bench: Session) -> None:
    model_ids = {
        target.name: await bench.create_models(target, bench.sizes.models, "unary")
        for target in bench.targets
    }
    for repetition in range(bench.sizes.repetitions):
        for method in METHODS:
            for callers in CONCURRENCY:
                for target in bench.in_turn(repetition):
                    ids = model_ids[target.name]
                    latencies, elapsed = await load(
                        bench, target, method, ids[len(ids) // 2], callers
                    )
                    name = f"{method} c={callers}"
                    bench.results.add(f"{name} calls/s {target.name}", len(latencies) / elapsed)
                    bench.results.add(f"{name} p50 {target.name}", 1000 * quantile(latencies, 0.5))
                    bench.results.add(f"{name} p99 {target.name}", 1000 * quantile(latencies, 0.99))


async def load(
    bench: Session, target: Target, method: str, model_id: str, callers: int, connections: int = 1
) -> tuple[list[float], float]:
    """Latencies of back-to-back calls by ``callers`` tasks for the set duration; and its length.

    The callers take turns over ``connections`` connections (a server of several processes
    spreads connections, not calls, over them).
    """
    async with contextlib.AsyncExitStack() as stack:
        calls = []
        for _ in range(connections):
            channel = await stack.enter_async_context(target.grpcio_channel())
            calls.append(await _first_call(bench, target, method, model_id, channel))
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + bench.sizes.unary_seconds

        async def caller(call: Callable[[], Awaitable[Any]]) -> None:
            while time.perf_counter() < deadline:
                begun = time.perf_counter()
                await call()
                latencies.append(time.perf_counter() - begun)

        await asyncio.gather(*(caller(calls[index % connections]) for index in range(callers)))
        return latencies, time.perf_counter() - started


async def _first_call(
    bench: Session, target: Target, method: str, model_id: str, channel: grpc.aio.Channel
) -> Callable[[], Awaitable[Any]]:
    """The call to repeat on ``channel``, made once: the answer, before the clock starts, shows
    the connection up and the work real."""
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    if method == "GetModel":
        request = model_service_pb2.GetModelRequest(model_id=model_id)
        model = (await stub.GetModel(request, metadata=bench.metadata)).model
        assert model.id == model_id, f"{target.name} answered {model}"
        return lambda: stub.GetModel(request, metadata=bench.metadata)
    page = model_service_pb2.ListModelsRequest(page_size=PAGE_SIZE)
    models = (await stub.ListModels(page, metadata=bench.metadata)).models
    assert len(models) == PAGE_SIZE, f"{target.name} listed {len(models)} models"
    return lambda: stub.ListModels(page, metadata=bench.metadata)


def quantile(samples: list[float], q: float) -> float:
    if q == 0.5:
        return statistics.median(samples)
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]
