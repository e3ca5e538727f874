"""Tests marked ``alone`` run while no other test does, also when pytest-xdist spreads the tests
over workers: they time the server or bound its latency, which another test's load would skew."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def alone_when_marked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A test marked ``alone`` holds the run's lock file exclusively; every other test holds it
    shared. A gate, held while taking the lock, keeps new tests from taking it shared while a
    marked test waits for the running ones to end. Without workers, there is nothing to wait
    for."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    # The directory above a worker's own temporary directory is the run's, shared by all.
    run_directory = tmp_path_factory.getbasetemp().parent
    exclusive = request.node.get_closest_marker("alone") is not None
    with (
        (run_directory / "modelcatalog-alone.gate").open("a") as gate,
        (run_directory / "modelcatalog-alone.lock").open("a") as lock,
    ):
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)
        yield
