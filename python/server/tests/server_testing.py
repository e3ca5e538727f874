"""Helpers for the server unit tests: signed-in callers and error assertions."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo
from grpclib._typing import IServable
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError
from grpclib.testing import ChannelFor
from sqlalchemy import Row, text

from modelcatalog import v1, wire
from modelcatalog_server.app import Application, storage_locations
from modelcatalog_server.config import Settings
from modelcatalog_server.storage import locations
from modelcatalog_server.storage.blobs import BlobStore
from modelcatalog_server.storage.metadata import MetadataStore, Transaction
from modelcatalog_server.transport import RequestCodec


class _InMemoryCodec(wire.Codec):
    """The codec of both ends of an in-memory channel: the server's RequestCodec for request
    messages, as the real server decodes them; the SDK's codec for everything else, as the real
    server encodes responses and the SDK decodes them (request and response types are distinct)."""

    def __init__(self, services: Collection[IServable]) -> None:
        super().__init__()  # grpclib's in-memory streams send only joined bytes
        self._request_types = {
            handler.request_type
            for service in services
            for handler in service.__mapping__().values()
        }
        self._requests = RequestCodec()

    def decode(self, data: bytes, message_type: Any) -> Any:
        if message_type in self._request_types:
            return self._requests.decode(data, message_type)
        return super().decode(data, message_type)


async def store_bytes(store: BlobStore, *parts: bytes) -> str:
    """Stores ``parts`` as one blob, as an upload does; returns its SHA-256."""
    writer = store.writer()
    for part in parts:
        await writer.write(part)
    digest = await writer.finish()
    await writer.commit()
    await writer.abort()
    return digest


async def read_all(store: BlobStore, digest: str, offset: int = 0) -> bytes:
    """The blob's bytes from ``offset`` on."""
    return b"".join([chunk async for chunk in store.read(digest, offset)])


async def sql(settings: Settings, statement: str, **parameters: Any) -> list[Row[Any]]:
    """Runs ``statement`` (named ``:parameters``) on the database the settings name, in a
    transaction of its own, and returns its rows (none for a change): what a test sees or
    changes behind the server's back, on either backend."""

    def run(tx: Transaction) -> list[Row[Any]]:
        result = tx.connection.execute(text(statement), parameters)
        return list(result.all()) if result.returns_rows else []

    database, _ = storage_locations(settings)
    store = await MetadataStore.open(database)
    try:
        return await store.write(run)
    finally:
        await store.close()


@asynccontextmanager
async def blocked_transactions(settings: Settings) -> AsyncIterator[Callable[[Transaction], Any]]:
    """A transaction body that waits until the block ends: on SQLite it blocks its thread, on
    PostgreSQL it waits for an advisory lock this test holds on a connection of its own."""
    if not settings.database_url:
        released = threading.Event()
        try:
            yield lambda tx: released.wait()
        finally:
            released.set()
        return
    url = locations.database_url(settings.database_url).set(drivername="postgresql")
    holder = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await holder.execute("SELECT pg_advisory_lock(7)")
        yield lambda tx: tx.connection.exec_driver_sql("SELECT pg_advisory_xact_lock_shared(7)")
        await holder.execute("SELECT pg_advisory_unlock(7)")
    finally:
        await holder.close()


def channel_for(app: Application) -> ChannelFor:
    """grpclib's in-memory channel to ``app``, with the server's codecs.

    ``app.services`` already carry the request guards; ChannelFor builds its own grpclib server,
    which would otherwise decode requests with grpclib's plain ProtoCodec and send no details.
    """
    return ChannelFor(
        app.services,
        codec=_InMemoryCodec(app.services),
        status_details_codec=ProtoStatusDetailsCodec(),
    )


# Looked up by name: mypy types betterproto enum members as plain ints.
VIEWER = v1.FolderRole.from_string("VIEWER")
EDITOR = v1.FolderRole.from_string("EDITOR")
OWNER = v1.FolderRole.from_string("OWNER")


async def expect_error(
    call: Awaitable[object], status: Status, reason: str, field: str | None = None
) -> GRPCError:
    """Awaits ``call`` and checks it fails with ``status`` and an ErrorInfo of ``reason``."""
    with pytest.raises(GRPCError) as caught:
        await call
    error = caught.value
    assert error.status == status, error.message
    infos = [d for d in error.details or [] if isinstance(d, ErrorInfo)]
    assert [(i.domain, i.reason) for i in infos] == [("modelcatalog.v1", reason)]
    if field is not None:
        assert infos[0].metadata["field"] == field
        violations = [d for d in error.details or [] if isinstance(d, BadRequest)]
        assert violations[0].field_violations[0].field == field
    return error


@dataclass
class Caller:
    """A signed-up, signed-in user and stubs that send its token."""

    user: v1.User
    token: str
    auth: v1.AuthServiceStub
    folders: v1.FolderServiceStub
    models: v1.ModelServiceStub
    audit: v1.AuditServiceStub


class Api:
    """Stubs without a token, and a way to get signed-in callers."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.auth = v1.AuthServiceStub(channel)
        self.folders = v1.FolderServiceStub(channel)
        self.models = v1.ModelServiceStub(channel)

    async def caller(self, username: str, password: str = "correct horse") -> Caller:
        user = (await self.auth.sign_up(v1.SignUpRequest(username, password))).user
        token = (await self.auth.sign_in(v1.SignInRequest(username, password))).access_token
        return self.as_token(user, token)

    def as_token(self, user: v1.User, token: str) -> Caller:
        metadata = {"authorization": f"Bearer {token}"}
        return Caller(
            user,
            token,
            v1.AuthServiceStub(self.channel, metadata=metadata),
            v1.FolderServiceStub(self.channel, metadata=metadata),
            v1.ModelServiceStub(self.channel, metadata=metadata),
            v1.AuditServiceStub(self.channel, metadata=metadata),
        )


async def poll_until(condition: Callable[[], bool], within: float = 10.0) -> bool:
    """Whether ``condition`` came true within ``within`` seconds, checking every 10 ms.

    For outcomes no event announces, such as files that another task removes.
    """
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
