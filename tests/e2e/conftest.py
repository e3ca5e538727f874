"""Starts the real ``modelcatalog-server`` console script as a process on a free loopback port.

The process helpers live in ``tests/server_process.py`` (shared with ``tests/adversarial``);
they are re-exported here for the tests of this suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..server_process import RunningServer, start_server, wait_for

__all__ = ["RunningServer", "start_server", "wait_for"]


@pytest.fixture
def server(tmp_path: Path, signing_key: Path) -> Iterator[RunningServer]:
    """A running TLS server for one test; it must exit cleanly on SIGTERM afterwards."""
    running = start_server(tmp_path, signing_key=signing_key)
    yield running
    assert running.stop() == 0, running.log()
