"""A fully wired application (bcrypt cost 4) behind in-memory channels, on each metadata
backend: SQLite in a temp dir and a fresh PostgreSQL database (``services`` in python/testing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpclib.client import Channel
from server_testing import Api, channel_for
from services import POSTGRES, fresh_database, missing, running

from modelcatalog_server.app import Application, build_application
from modelcatalog_server.config import Settings


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


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, postgres_admin_url: str | None
) -> AsyncIterator[str]:
    """Empty for SQLite in the data directory, else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    if postgres_admin_url is None:
        missing("PostgreSQL is not installed: its leg of the tests is skipped")
    async with fresh_database(postgres_admin_url) as url:
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
