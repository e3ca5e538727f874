"""Starts the real ``modelcatalog-server`` console script as a process on a free loopback port.

The process helpers live in ``tests/server_process.py`` (shared with ``tests/adversarial``);
they are re-exported here for the tests of this suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1.health_pb2 import HealthCheckRequest
from grpc_health.v1.health_pb2_grpc import HealthStub

from ..server_process import RunningServer, start_server, wait_for

__all__ = ["RunningServer", "health_becomes", "start_server", "wait_for"]


@pytest.fixture
def server(tmp_path: Path, signing_key: Path) -> Iterator[RunningServer]:
    """A running TLS server for one test; it must exit cleanly on SIGTERM afterwards."""
    running = start_server(tmp_path, signing_key=signing_key)
    yield running
    assert running.stop() == 0, running.log()


def health_becomes(server: RunningServer, status: int, within: float) -> bool:
    """Whether the overall health status is ``status`` within ``within`` seconds.

    Asked with grpcio's stock health client, as an orchestrator would.
    """
    credentials = grpc.ssl_channel_credentials(server.ca_cert.read_bytes())
    with grpc.secure_channel(server.address, credentials) as channel:
        health = HealthStub(channel)
        return wait_for(
            lambda: health.Check(HealthCheckRequest(), timeout=10).status == status, within
        )
