"""Clients in other languages, run against the real server process over TLS.

Each language's client lives under ``clients/`` with its own toolchain. A developer machine
without that toolchain skips its tests with the reason; CI (``CI=true``) never skips: there a
missing toolchain fails the test, because ``.ci/run`` installs every toolchain first.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..server_process import RunningServer, start_server

REPOSITORY = Path(__file__).resolve().parents[2]
CLIENTS = REPOSITORY / "clients"


def toolchain(command: str, install_hint: str) -> str:
    """The path of ``command``; skips the test without it, except in CI, where it fails."""
    path = shutil.which(command)
    if path is not None:
        return path
    message = f"{command} is not installed ({install_hint})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI installs every toolchain before the tests")
    pytest.skip(message)


@pytest.fixture
def server(tmp_path: Path, signing_key: Path) -> Iterator[RunningServer]:
    """A running TLS server for one test; it must exit cleanly on SIGTERM afterwards."""
    running = start_server(tmp_path, signing_key=signing_key)
    yield running
    assert running.stop() == 0, running.log()
