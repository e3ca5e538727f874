"""A fully wired application (bcrypt cost 4) behind in-memory channels, on each metadata
backend: SQLite in a temp dir and a fresh PostgreSQL database (``services`` in python/testing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from alone import alone_when_marked
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpclib.client import Channel
from server_testing import Api, channel_for
from services import (
    POSTGRES,
    drop_database,
    fresh_database,
    in_own_loop,
    missing,
    new_database,
    running,
    share_with_workers,
)
from sqlalchemy.engine import make_url

from modelcatalog_server.app import Application, build_application
from modelcatalog_server.config import Settings
from modelcatalog_server.storage.metadata import MetadataStore

__all__ = ["alone_when_marked"]

NO_POSTGRES = "PostgreSQL is not installed: its leg of the tests is skipped"


def pytest_configure(config: pytest.Config) -> None:
    """One PostgreSQL cluster for all the workers of a distributed run (SeaweedFS, which one
    module uses, is started by the worker that runs it: its AWS_* variables would reach moto's
    tests)."""
    share_with_workers(config, POSTGRES)


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RSA key for the whole session: generating keys is slow."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("jwt") / "signing-key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str | None]:
    """One PostgreSQL cluster for the session (None where there is none)."""
    with running(POSTGRES) as environment:
        yield None if environment is None else environment["MODELCATALOG_TEST_DATABASE_URL"]


@pytest.fixture(scope="session")
def postgres_schema_template(postgres_admin_url: str | None) -> Iterator[str]:
    """The name of a database migrated to the newest schema once for the session, which each
    test's database copies: migrating every test's database took most of a second of its
    setup. The migrations still run on PostgreSQL: here, once, and in every server process of
    the e2e-scaleout leg."""
    if postgres_admin_url is None:
        missing(NO_POSTGRES)
    url = new_database(postgres_admin_url)

    async def migrate() -> None:
        await (await MetadataStore.open(url)).close()

    try:
        in_own_loop(migrate())
        yield str(make_url(url).database)
    finally:
        drop_database(postgres_admin_url, url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, postgres_admin_url: str | None
) -> AsyncIterator[str]:
    """Empty for SQLite in the data directory, else a fresh PostgreSQL database with the
    newest schema."""
    if request.param == "sqlite":
        yield ""
        return
    if postgres_admin_url is None:
        missing(NO_POSTGRES)
    template = request.getfixturevalue("postgres_schema_template")
    async with fresh_database(postgres_admin_url, template=template) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, signing_key_file: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        insecure=True,
        bcrypt_cost=4,
        jwt_private_key=signing_key_file,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    async with build_application(settings) as application:
        yield application


@pytest.fixture
async def channel(app: Application) -> AsyncIterator[Channel]:
    async with channel_for(app) as channel:
        yield channel


@pytest.fixture
def api(channel: Channel) -> Api:
    return Api(channel)
