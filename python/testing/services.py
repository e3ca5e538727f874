"""The real services the scale-out tests use, PostgreSQL and an S3-compatible store (SeaweedFS):
the ones the environment names, or throwaway ones that ``scripts/postgres`` and
``scripts/seaweedfs`` start for the test session where they are installed.

Without a service, the tests that need it are skipped with the reason shown; under CI (``CI``
set) they fail instead, so the scale-out leg never silently disappears.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
DATABASE_URL_VARIABLE = "MODELCATALOG_TEST_DATABASE_URL"
BLOB_URL_VARIABLE = "MODELCATALOG_TEST_BLOB_URL"
T = TypeVar("T")
S3_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


def missing(reason: str) -> NoReturn:
    """Skips the test for want of a service, or fails it under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run every test)")
    pytest.skip(reason)


@dataclass(frozen=True)
class _Service:
    """A service: the script that starts it, the variables it exports (the first one says it
    runs) and whether its programs are installed here."""

    script: list[str]
    variables: tuple[str, ...]
    installed: Callable[[], bool]


POSTGRES = _Service(
    [str(_SCRIPTS / "postgres")],
    (DATABASE_URL_VARIABLE,),
    lambda: (
        shutil.which("pg_ctl") is not None or bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    ),
)
SEAWEEDFS = _Service(
    [sys.executable, str(_SCRIPTS / "seaweedfs")],
    (BLOB_URL_VARIABLE, *S3_VARIABLES),
    lambda: shutil.which("weed") is not None,
)


def _exported(env_file: Path) -> dict[str, str]:
    """The ``export NAME=VALUE`` lines of a script's environment file."""
    values: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            name, value = line.removeprefix("export ").split("=", 1)
            values[name] = " ".join(shlex.split(value))
    return values


@contextlib.contextmanager
def running(service: _Service) -> Iterator[dict[str, str] | None]:
    """The environment of ``service`` for this session (its variables), None without one."""
    if os.environ.get(service.variables[0]):
        yield {name: os.environ[name] for name in service.variables if name in os.environ}
        return
    if not service.installed():
        yield None
        return
    with tempfile.TemporaryDirectory() as directory:
        env_file = Path(directory) / "service.env"
        subprocess.run([*service.script, "start", str(env_file)], check=True, capture_output=True)
        try:
            exported = _exported(env_file)
            yield {name: exported[name] for name in service.variables if name in exported}
        finally:
            subprocess.run(
                [*service.script, "stop", str(env_file)], check=False, capture_output=True
            )


class _StartedForWorkers:
    """The services a pytest-xdist controller starts for its workers: at the start of its
    session, before it spawns them, until its configuration ends, after they have stopped
    (also when a start fails or is interrupted)."""

    def __init__(self, config: pytest.Config, services: tuple[_Service, ...]) -> None:
        self._config = config
        self._services = services

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self) -> None:
        if not self._config.pluginmanager.has_plugin("dsession"):
            return  # no workers to start (--collect-only)
        started = contextlib.ExitStack()
        self._config.add_cleanup(started.close)
        for service in self._services:
            environment = started.enter_context(running(service))
            if environment is not None:
                os.environ.update(environment)


def share_with_workers(config: pytest.Config, *services: _Service) -> None:
    """Under pytest-xdist, starts ``services`` once, in the controller: its workers inherit
    their variables, so ``running`` in a worker finds them instead of starting its own. Only for
    services whose variables may be in every test's environment. They start whether or not the
    selected tests need them."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    config.pluginmanager.register(_StartedForWorkers(config, services))


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def fresh_database(
    admin_url: str, *, drop: bool = True, template: str | None = None
) -> AsyncIterator[str]:
    """The URL of a new database in the cluster, empty or a copy of the database ``template``
    (which nobody may be connected to), dropped afterwards unless ``drop`` is false (the
    throwaway cluster goes as a whole)."""
    name = f"test_{uuid.uuid4().hex}"
    copied = f' TEMPLATE "{template}"' if template else ""
    admin = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copied}')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            if drop:
                await _drop(admin, name)
    finally:
        await admin.close()


async def _drop(admin: asyncpg.Connection, name: str) -> None:
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """What ``work`` returns, run on an event loop of its own: for code without an event loop,
    or inside one."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


def new_database(admin_url: str) -> str:
    """A new, empty database's URL, for code without an event loop (or inside one)."""

    async def create() -> str:
        async with fresh_database(admin_url, drop=False) as url:
            return url

    return in_own_loop(create())


def drop_database(admin_url: str, url: str) -> None:
    """Drops the database ``url`` names, for code without an event loop (or inside one)."""

    async def drop() -> None:
        admin = await asyncpg.connect(_asyncpg_dsn(admin_url))
        try:
            await _drop(admin, str(make_url(url).database))
        finally:
            await admin.close()

    in_own_loop(drop())
