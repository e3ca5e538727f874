"""A fully wired application (SQLite in a temp dir, bcrypt cost 4) behind in-memory channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpclib.client import Channel
from server_testing import Api, channel_for

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


@pytest.fixture
def settings(tmp_path: Path, signing_key_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
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
