"""Several server processes: the restart backoff, and readiness while starting and draining."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from dataclasses import replace

import pytest
from grpclib.client import Channel
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from modelcatalog_server.app import Application, serve_until_stopped
from modelcatalog_server.config import ListenAddress, Settings
from modelcatalog_server.workers import RestartPolicy, Restarts

SERVING = HealthCheckResponse(status=HealthCheckResponse.SERVING)
NOT_SERVING = HealthCheckResponse(status=HealthCheckResponse.NOT_SERVING)
POLICY = RestartPolicy(first_delay=0.5, max_delay=4.0, stable_after=60.0, max_failed_starts=5)


def test_a_worker_that_fails_to_start_is_retried_with_doubling_delays_then_given_up() -> None:
    """Workers that exit before serving are restarted after 0.5, 1, 2, 4 s; the fifth in a row
    ends the retries."""
    restarts = Restarts(POLICY)
    delays = [restarts.after_exit(served=False, ran_for=1.0) for _ in range(5)]
    assert delays == [0.5, 1.0, 2.0, 4.0, None]


def test_workers_that_served_are_always_restarted_within_the_longest_delay() -> None:
    """A worker that crashes after serving never makes the supervisor give up; its restarts
    back off up to the longest delay and no further."""
    restarts = Restarts(POLICY)
    delays = [restarts.after_exit(served=True, ran_for=5.0) for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]


def test_a_worker_that_served_in_between_resets_the_count_of_failed_starts() -> None:
    """Failed starts count only in a row: one worker that serves starts the count over."""
    restarts = Restarts(POLICY)
    for _ in range(POLICY.max_failed_starts - 1):
        assert restarts.after_exit(served=False, ran_for=1.0) is not None
    assert restarts.after_exit(served=True, ran_for=1.0) is not None
    for _ in range(POLICY.max_failed_starts - 1):
        assert restarts.after_exit(served=False, ran_for=1.0) is not None
    assert restarts.after_exit(served=False, ran_for=1.0) is None


def test_a_long_healthy_run_starts_the_delays_over() -> None:
    """After a worker ran longer than ``stable_after``, its replacement starts at once again."""
    restarts = Restarts(POLICY)
    for _ in range(4):
        restarts.after_exit(served=True, ran_for=1.0)
    assert restarts.after_exit(served=True, ran_for=POLICY.stable_after) == POLICY.first_delay


async def health(channel: Channel, service: str = "") -> int:
    return (await HealthStub(channel).Check(HealthCheckRequest(service=service))).status


@pytest.mark.parametrize("service", ["", "modelcatalog.v1.ModelService"])
async def test_readiness_is_part_of_every_health_status(
    app: Application, channel: Channel, service: str
) -> None:
    """A built application is SERVING; withdrawn readiness makes health NOT_SERVING, overall and
    per service."""
    assert await health(channel, service) == HealthCheckResponse.SERVING
    app.readiness.set(False)
    assert await health(channel, service) == HealthCheckResponse.NOT_SERVING


async def test_the_objects_built_at_startup_are_left_out_of_collections_while_serving(
    settings: Settings,
) -> None:
    """While the server serves, what its startup built is out of the garbage collector's
    walks (a full collection of it stalled every call for about 100 ms); once it stopped, the
    process collects as before."""
    frozen_while_serving: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    serving = replace(settings, listen=ListenAddress("127.0.0.1", 0))
    server = asyncio.create_task(
        serve_until_stopped(
            serving,
            on_listening=lambda *_: frozen_while_serving.set_result(gc.get_freeze_count()),
        )
    )
    try:
        assert await asyncio.wait_for(frozen_while_serving, 10) > 0
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(server, 10)
    finally:
        server.cancel()
    assert gc.get_freeze_count() == 0


async def test_a_signal_makes_health_not_serving_while_the_server_drains(
    settings: Settings,
) -> None:
    """SIGTERM turns health NOT_SERVING at once; calls are still answered during the drain
    period, and the server closes after it."""
    listening: asyncio.Future[ListenAddress] = asyncio.get_running_loop().create_future()
    draining = replace(settings, listen=ListenAddress("127.0.0.1", 0), drain_period=1)
    server = asyncio.create_task(
        serve_until_stopped(
            draining, on_listening=lambda bound, note, loop: listening.set_result(bound)
        )
    )
    bound = await asyncio.wait_for(listening, 10)
    channel = Channel(bound.host, bound.port)
    try:
        async with HealthStub(channel).Watch.open() as watch:
            await watch.send_message(HealthCheckRequest(), end=True)
            # The first answer comes before the storage checks have run once.
            async with asyncio.timeout(5):
                while (await watch.recv_message()) != SERVING:
                    pass
            os.kill(os.getpid(), signal.SIGTERM)
            async with asyncio.timeout(5):
                status = await watch.recv_message()
                # grpclib's Watch answers once per check that changed: when the two storage
                # checks passed at once, SERVING comes twice.
                while status == SERVING:
                    status = await watch.recv_message()
            assert status == NOT_SERVING
            assert await health(channel) == HealthCheckResponse.NOT_SERVING
            assert not server.done()
            await watch.cancel()
        await asyncio.wait_for(server, 10)
    finally:
        channel.close()
        server.cancel()
