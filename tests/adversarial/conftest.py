"""Starts the real server with the limits an attack needs, and judges how it stopped.

Limits are passed as ``MODELCATALOG_*`` environment variables (each server option is both a
flag and a variable), short enough for the attack to reach them in seconds. Every server
started here must, after its test, stop with status 0 on SIGTERM and have written no
traceback and no "Task was destroyed" to its log, whatever the attack did.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from ..server_process import RunningServer, start_server
from ._gauges import first_traceback, tracebacks

#: The request timeout the tests set (the default is 10 s), so that it passes in seconds.
REQUEST_TIMEOUT_SECONDS = 2
#: How late a server timer may fire on a loaded 2-core machine and still count as on time.
TIMER_SLACK_SECONDS = 3.0
#: ``MODELCATALOG_TEST_ADVERSARIAL_LONG=1`` runs the attacks at the issue's full figures.
LONG = os.environ.get("MODELCATALOG_TEST_ADVERSARIAL_LONG") == "1"


@dataclass(frozen=True)
class Scale:
    """How hard each attack pushes: short in CI, the issue's measured figures in long mode."""

    idle_connections: int
    connection_cap: int
    plain_tcp_connections: int
    incomplete_connections: int
    incomplete_streams: int
    resets: int
    control_frames: int
    wrong_sign_ins: int
    dropped_calls: int
    cancelled_calls: int


SHORT = Scale(
    idle_connections=200,
    connection_cap=100,
    plain_tcp_connections=50,
    incomplete_connections=2,
    incomplete_streams=100,
    resets=6_000,
    control_frames=100_000,
    wrong_sign_ins=200,
    dropped_calls=10,
    cancelled_calls=1_000,
)
FULL = Scale(
    idle_connections=1_000,
    connection_cap=500,
    plain_tcp_connections=500,
    incomplete_connections=2,
    incomplete_streams=100,
    resets=60_000,
    control_frames=1_000_000,
    wrong_sign_ins=1_000,
    dropped_calls=100,
    cancelled_calls=10_000,
)
SCALE = FULL if LONG else SHORT


class Launcher(Protocol):
    def __call__(
        self,
        *args: str,
        data_dir: Path | None = None,
        open_files_limit: int | None = None,
        **limits: str,
    ) -> RunningServer: ...


@pytest.fixture
def launch(tmp_path: Path, signing_key: Path) -> Iterator[Launcher]:
    """Starts servers with flags ``args`` and settings ``limits`` (``request_timeout="2s"`` is
    ``MODELCATALOG_REQUEST_TIMEOUT=2s``); stops and checks each after the test."""
    started: list[RunningServer] = []

    def launch_server(
        *args: str,
        data_dir: Path | None = None,
        open_files_limit: int | None = None,
        **limits: str,
    ) -> RunningServer:
        environment = {f"MODELCATALOG_{name.upper()}": value for name, value in limits.items()}
        server = start_server(
            tmp_path,
            *args,
            data_dir=data_dir,
            signing_key=signing_key,
            environment=environment,
            open_files_limit=open_files_limit,
        )
        started.append(server)
        return server

    yield launch_server
    stopped = [(server.stop(), server.log()) for server in started]
    for status, log in stopped:
        assert status == 0, f"the server exited with {status}:\n{log[-4000:]}"
        assert tracebacks(log) == 0, (
            f"the server logged {tracebacks(log)} tracebacks; the first:\n{first_traceback(log)}"
        )
        assert "Task was destroyed" not in log, log[log.find("Task was destroyed") :][:3000]


@pytest.fixture
def server(launch: Launcher) -> RunningServer:
    """A server with every limit at its default."""
    return launch()
