"""Figure (4): health-check p99 while sign-ins (bcrypt) run, against the same server idle.

A server of its own with the bcrypt cost of ``Sizes.sign_in_bcrypt_cost`` (the product's
default, 12, in a full run); health checks go back to back from a grpcio client, first with
nothing else running, then while ``Sizes.sign_ins`` sign-ins run at once (one per account:
the server throttles many sign-ins to one account from one address, which is not the point).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelcatalog import AsyncClient, ResourceExhausted

from ._processes import start_ours
from ._report import Comparison
from ._session import PASSWORD, USERNAME, Session, Target

IDLE_CHECKS = 100
#: How long a refused sign-in waits before it asks again.
RETRY_SECONDS = 0.05

COMPARISONS = [
    Comparison(
        "health",
        "health p99 during sign-ins",
        "health p99 idle",
        "ms",
        "lower",
        max_value=50,
    ),
]


async def run(bench: Session) -> None:
    cost = str(bench.sizes.sign_in_bcrypt_cost)
    bench.results.facts["health_sign_ins_refused_and_retried"] = 0
    server = start_ours(bench.work / "health", bench.signing_key, "--bcrypt-cost", cost)
    try:
        target = Target("health", server)
        async with AsyncClient(server.address, ca_cert=server.ca_cert) as client:
            for index in range(bench.sizes.sign_ins):
                await client.sign_up(f"{USERNAME}-{index}", PASSWORD)
        for _ in range(bench.sizes.repetitions):
            idle = await _check_latencies(target, asyncio.sleep(0), minimum=IDLE_CHECKS)
            bench.results.add("health p99 idle", 1000 * _p99(idle))
            busy = await _check_latencies(target, _sign_ins(bench, target))
            bench.results.add("health p99 during sign-ins", 1000 * _p99(busy))
    finally:
        server.stop()


async def _sign_ins(bench: Session, target: Target) -> None:
    """``Sizes.sign_ins`` sign-ins at once, each retried while the server refuses it as
    OVERLOADED (it bounds the password checks in flight from one address), as a client would."""

    async def sign_in(username: str) -> None:
        async with AsyncClient(target.server.address, ca_cert=target.server.ca_cert) as client:
            while True:
                try:
                    await client.sign_in(username, PASSWORD)
                    return
                except ResourceExhausted:
                    bench.results.facts["health_sign_ins_refused_and_retried"] += 1
                    await asyncio.sleep(RETRY_SECONDS)

    users = (f"{USERNAME}-{index}" for index in range(bench.sizes.sign_ins))
    await asyncio.gather(*(sign_in(username) for username in users))


async def _check_latencies(target: Target, load: Awaitable[None], minimum: int = 0) -> list[float]:
    """Latencies of back-to-back health checks until ``load`` is done and ``minimum`` ran."""
    async with target.grpcio_channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        await stub.Check(health_pb2.HealthCheckRequest())
        task = asyncio.ensure_future(load)
        latencies: list[float] = []
        while not task.done() or len(latencies) < minimum:
            started = time.perf_counter()
            response = await stub.Check(health_pb2.HealthCheckRequest())
            latencies.append(time.perf_counter() - started)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        await task
        return latencies


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
