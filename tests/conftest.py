"""Fixtures shared by every suite under ``tests/`` that runs the real server process."""

from pathlib import Path

import pytest

from .server_process import write_signing_key


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One JWT signing key for the whole session (generating one per server is slow)."""
    return write_signing_key(tmp_path_factory.mktemp("jwt") / "jwtRS256.key")
