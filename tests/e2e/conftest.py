"""Starts the real ``modelcatalog-server`` console script as a process on a free loopback port."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
LISTENING = re.compile(r"listening on (\S+)")


@dataclass
class RunningServer:
    """A server process, the address it listens on, and the file its log goes to."""

    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Sends ``sig`` and waits for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def server_command() -> str:
    command = shutil.which("modelcatalog-server")
    assert command, "modelcatalog-server is not installed in this environment"
    return command


def start_server(workdir: Path, *args: str) -> RunningServer:
    """Starts the server with ``args`` and waits (polling its log) until it listens."""
    log_path = workdir / f"server-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [server_command(), "--listen", "127.0.0.1:0", *args],
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = RunningServer(process, "", log_path)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        match = LISTENING.search(server.log())
        if match:
            server.address = match.group(1)
            return server
        if process.poll() is not None:
            pytest.fail(
                f"server exited with {process.returncode} before listening:\n{server.log()}"
            )
        time.sleep(0.02)
    server.stop(signal.SIGKILL)
    pytest.fail(f"server did not listen within {START_TIMEOUT_SECONDS} s:\n{server.log()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A running server for one test; it must exit cleanly on SIGTERM afterwards."""
    running = start_server(tmp_path)
    yield running
    assert running.stop() == 0, running.log()
