"""PostgreSQL for the tests: the cluster ``MODELCATALOG_TEST_DATABASE_URL`` names, or a
throwaway one that ``scripts/postgres`` starts for the test session when PostgreSQL's programs
are installed; and a fresh, empty database per test.

Without either, tests that need PostgreSQL are skipped with the reason shown; under CI
(``CI`` set) they fail instead, so the scale-out leg never silently disappears.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

ADMIN_URL_VARIABLE = "MODELCATALOG_TEST_DATABASE_URL"
_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres"


def _server_installed() -> bool:
    return shutil.which("pg_ctl") is not None or bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))


def missing(reason: str) -> None:
    """Skips the test for want of a service, or fails it under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run every test)")
    pytest.skip(reason)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str | None]:
    """The administrator URL of a PostgreSQL cluster for this session, or None without one."""
    given = os.environ.get(ADMIN_URL_VARIABLE)
    if given:
        yield given
        return
    if not _server_installed():
        yield None
        return
    with tempfile.TemporaryDirectory() as directory:
        env_file = Path(directory) / "postgres.env"
        subprocess.run([_SCRIPT, "start", env_file], check=True, capture_output=True)
        try:
            url = next(
                line.split("=", 1)[1]
                for line in env_file.read_text().splitlines()
                if line.startswith(f"export {ADMIN_URL_VARIABLE}=")
            )
            yield url
        finally:
            subprocess.run([_SCRIPT, "stop", env_file], check=False, capture_output=True)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty database in the cluster, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
