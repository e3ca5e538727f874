"""A grpcio-aio ModelService doing the same work as ours, as the benchmarks' reference.

Generated from the same protos (the grpcio stubs ``modelcatalog.v1.*_pb2_grpc``), it serves
over TLS with our server's certificate and verifies our server's tokens, so the benchmark
compares the same calls from the same clients. What it does, as ours does:

- every call: RS256 JWT verification (algorithm pinned, ``kid``, ``iss``/``aud`` and every
  required claim checked), then one SQLite query for whether the token still stands
  (account's token generation, revoked token id);
- GetModel / ListModels: one SQLite query with the caller's folder membership inside it,
  ordered by creation time with keyset paging (at most 100 per page), the page chosen from
  the same (folder, created, id) index as ours before the rows are joined;
- UploadModelVersion: the caller's editor role checked, SHA-256 computed while the bytes
  stream, written to a temporary file in a worker thread, fsynced, renamed to its content
  address (``blobs/sha256/ab/<digest>``), declared size and digest (header or trailer)
  checked, then a version row inserted (latest version bumped) in one SQLite transaction;
- DownloadModelVersion: the version looked up with the caller's membership, then the blob
  read in 1 MiB chunks in a worker thread.

What it does not do: no access log line per call, no request guards, budgets or deadlines of
its own, no signed page tokens (they are plain ``created_us:id``), no error details, no
validation of names or labels beyond what the benchmark sends, and only the calls the
benchmark makes (CreateFolder, CreateModel, GetModel, ListModels, upload, download).
The database is one ``aiosqlite`` connection (WAL, ``synchronous=FULL`` as ours).

    python -m bench.reference_server --listen 127.0.0.1:0 --data-dir DIR --jwt-key KEY

``DIR/tls/server.crt`` and ``server.key`` must exist; it prints "listening on HOST:PORT".
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

import aiosqlite
import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from google.protobuf.timestamp_pb2 import Timestamp

from modelcatalog.v1 import (
    folder_service_pb2,
    folder_service_pb2_grpc,
    model_service_pb2,
    model_service_pb2_grpc,
    resources_pb2,
)

CHUNK_BYTES = 1 << 20
MAX_PAGE_SIZE = 100
OWNER, EDITOR, VIEWER = 3, 2, 1
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, username TEXT NOT NULL,
    token_generation INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS revoked_tokens (token_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS folders (id TEXT PRIMARY KEY, name TEXT NOT NULL,
    description TEXT NOT NULL, creator_id TEXT NOT NULL, created_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS folder_members (folder_id TEXT, user_id TEXT, role INTEGER NOT NULL,
    PRIMARY KEY (folder_id, user_id));
CREATE INDEX IF NOT EXISTS ix_members_user ON folder_members (user_id, folder_id);
CREATE TABLE IF NOT EXISTS models (id TEXT PRIMARY KEY, folder_id TEXT NOT NULL,
    name TEXT NOT NULL, description TEXT NOT NULL, creator_id TEXT NOT NULL,
    created_us INTEGER NOT NULL, latest_version INTEGER NOT NULL, UNIQUE (folder_id, name));
CREATE INDEX IF NOT EXISTS ix_models_order ON models (created_us, id);
CREATE INDEX IF NOT EXISTS ix_models_folder_order ON models (folder_id, created_us, id);
CREATE TABLE IF NOT EXISTS model_versions (model_id TEXT, version INTEGER,
    file_name TEXT NOT NULL, content_type TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL, description TEXT NOT NULL, creator_id TEXT NOT NULL,
    created_us INTEGER NOT NULL, PRIMARY KEY (model_id, version));
"""

MODEL_COLUMNS = """SELECT m.id, m.folder_id, m.name, m.description, u.username, m.created_us,
    m.latest_version FROM models m
    JOIN folder_members fm ON fm.folder_id = m.folder_id AND fm.user_id = ?
    JOIN users u ON u.id = m.creator_id"""


def timestamp(micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def model_message(row: Any) -> resources_pb2.Model:
    return resources_pb2.Model(
        id=row[0],
        folder_id=row[1],
        name=row[2],
        description=row[3],
        creator_username=row[4],
        create_time=timestamp(row[5]),
        latest_version=row[6],
    )


class Catalog:
    """Token checks, queries and blob storage shared by both services."""

    def __init__(self, database: aiosqlite.Connection, data_dir: Path, key_path: Path) -> None:
        private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        public = private.public_key()
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._keys = {hashlib.sha256(der).hexdigest()[:16]: public}
        self.database = database
        self._write_lock = asyncio.Lock()
        self._temporary = data_dir / "blobs" / "tmp"
        self._objects = data_dir / "blobs" / "sha256"
        self._temporary.mkdir(parents=True, exist_ok=True)
        self._objects.mkdir(parents=True, exist_ok=True)

    async def caller(self, context: grpc.aio.ServicerContext[Any, Any]) -> tuple[str, str]:
        """The caller's user id and name; aborts UNAUTHENTICATED for a token that does not stand."""
        metadata = dict(context.invocation_metadata() or ())
        scheme, _, token = str(metadata.get("authorization", "")).partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise jwt.InvalidTokenError("no bearer token")
            key = self._keys.get(str(jwt.get_unverified_header(token).get("kid")))
            if key is None:
                raise jwt.InvalidTokenError("unknown key")
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience="modelcatalog",
                issuer="modelcatalog",
                leeway=10,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidTokenError:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        user_id, username = str(claims["sub"]), str(claims.get("username", ""))
        async with self.database.execute(
            "SELECT token_generation, EXISTS(SELECT 1 FROM revoked_tokens WHERE token_id = ?) "
            "FROM users WHERE id = ?",
            (claims["jti"], user_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row is not None and (row[0] != claims.get("gen", 0) or row[1]):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "token revoked")
        if row is None:
            # The reference has no sign-up: it learns an account from its first valid token.
            async with self._write_lock:
                await self.database.execute(
                    "INSERT OR IGNORE INTO users (id, username) VALUES (?, ?)", (user_id, username)
                )
                await self.database.commit()
        return user_id, username

    async def role(self, user_id: str, folder_id: str) -> int:
        async with self.database.execute(
            "SELECT role FROM folder_members WHERE folder_id = ? AND user_id = ?",
            (folder_id, user_id),
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def model(self, user_id: str, model_id: str) -> Any:
        async with self.database.execute(
            MODEL_COLUMNS + " WHERE m.id = ?", (user_id, model_id)
        ) as cursor:
            return await cursor.fetchone()

    async def write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Runs ``statements`` in one transaction (one writer at a time, as SQLite has)."""
        async with self._write_lock:
            await self.database.execute("BEGIN IMMEDIATE")
            try:
                for sql, parameters in statements:
                    await self.database.execute(sql, parameters)
            except BaseException:
                await self.database.rollback()
                raise
            await self.database.commit()

    def blob_path(self, digest: str) -> Path:
        return self._objects / digest[:2] / digest

    def new_temporary(self) -> Path:
        return self._temporary / f"{uuid.uuid4().hex}.part"


def _write_chunk(file: BinaryIO, hasher: Any, chunk: bytes) -> None:
    hasher.update(chunk)
    file.write(chunk)


def _durable_rename(file: BinaryIO, temporary: Path, target: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    target.parent.mkdir(exist_ok=True)
    os.replace(temporary, target)


class FolderService(folder_service_pb2_grpc.FolderServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def CreateFolder(  # noqa: N802 - the generated servicer's name
        self,
        request: folder_service_pb2.CreateFolderRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> folder_service_pb2.CreateFolderResponse:
        user_id, username = await self._catalog.caller(context)
        folder_id, created = str(uuid.uuid4()), int(time.time() * 1e6)
        await self._catalog.write(
            [
                (
                    "INSERT INTO folders VALUES (?, ?, ?, ?, ?)",
                    (folder_id, request.name, request.description, user_id, created),
                ),
                ("INSERT INTO folder_members VALUES (?, ?, ?)", (folder_id, user_id, OWNER)),
            ]
        )
        return folder_service_pb2.CreateFolderResponse(
            folder=resources_pb2.Folder(
                id=folder_id,
                name=request.name,
                description=request.description,
                creator_username=username,
                create_time=timestamp(created),
                caller_role=OWNER,  # type: ignore[arg-type]
            )
        )


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def CreateModel(  # noqa: N802
        self,
        request: model_service_pb2.CreateModelRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> model_service_pb2.CreateModelResponse:
        user_id, username = await self._catalog.caller(context)
        if await self._catalog.role(user_id, request.folder_id) < EDITOR:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not an editor")
        model_id, created = str(uuid.uuid4()), int(time.time() * 1e6)
        await self._catalog.write(
            [
                (
                    "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (
                        model_id,
                        request.folder_id,
                        request.name,
                        request.description,
                        user_id,
                        created,
                    ),
                )
            ]
        )
        row = (model_id, request.folder_id, request.name, request.description, username, created, 0)
        return model_service_pb2.CreateModelResponse(model=model_message(row))

    async def GetModel(  # noqa: N802
        self,
        request: model_service_pb2.GetModelRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> model_service_pb2.GetModelResponse:
        user_id, _ = await self._catalog.caller(context)
        row = await self._catalog.model(user_id, request.model_id)
        if row is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no access")
        return model_service_pb2.GetModelResponse(model=model_message(row))

    async def ListModels(  # noqa: N802
        self,
        request: model_service_pb2.ListModelsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> model_service_pb2.ListModelsResponse:
        user_id, _ = await self._catalog.caller(context)
        size = min(request.page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        created, _, after_id = request.page_token.partition(":")
        # As ours: the page is chosen from the (folder, created, id) index, then joined.
        page = (
            "SELECT m.id FROM models m JOIN folder_members fm ON fm.folder_id = m.folder_id"
            " AND fm.user_id = ? WHERE (m.created_us, m.id) > (?, ?)"
        )
        parameters: list[Any] = [user_id, user_id, int(created or -1), after_id]
        if request.folder_id:
            page += " AND m.folder_id = ?"
            parameters.append(request.folder_id)
        page += " ORDER BY m.created_us, m.id LIMIT ?"
        sql = f"{MODEL_COLUMNS} JOIN ({page}) page ON page.id = m.id ORDER BY m.created_us, m.id"
        async with self._catalog.database.execute(sql, (*parameters, size + 1)) as cursor:
            rows = list(await cursor.fetchall())
        token = f"{rows[size - 1][5]}:{rows[size - 1][0]}" if len(rows) > size else ""
        return model_service_pb2.ListModelsResponse(
            models=[model_message(row) for row in rows[:size]], next_page_token=token
        )

    async def UploadModelVersion(  # noqa: N802
        self,
        request_iterator: AsyncIterator[model_service_pb2.UploadModelVersionRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> model_service_pb2.UploadModelVersionResponse:
        user_id, username = await self._catalog.caller(context)
        requests = aiter(request_iterator)
        header = (await anext(requests)).header
        if not await self._editor(user_id, header.model_id):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not an editor")
        temporary = self._catalog.new_temporary()
        hasher = hashlib.sha256()
        size = 0
        declared = {header.sha256}
        file = await asyncio.to_thread(temporary.open, "xb")
        try:
            async for request in requests:
                if request.HasField("trailer"):
                    declared.add(request.trailer.sha256)
                    continue
                size += len(request.chunk)
                await asyncio.to_thread(_write_chunk, file, hasher, request.chunk)
            digest = hasher.hexdigest()
            if (header.HasField("size_bytes") and header.size_bytes != size) or (
                declared - {"", digest}
            ):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "size or digest mismatch")
            await asyncio.to_thread(
                _durable_rename, file, temporary, self._catalog.blob_path(digest)
            )
        finally:
            file.close()
            temporary.unlink(missing_ok=True)
        created = int(time.time() * 1e6)
        await self._catalog.write(
            [
                (
                    "UPDATE models SET latest_version = latest_version + 1 WHERE id = ?",
                    (header.model_id,),
                ),
                (
                    "INSERT INTO model_versions SELECT id, latest_version, ?, ?, ?, ?, ?, ?, ? "
                    "FROM models WHERE id = ?",
                    (
                        header.file_name,
                        header.content_type,
                        size,
                        digest,
                        header.description,
                        user_id,
                        created,
                        header.model_id,
                    ),
                ),
            ]
        )
        version = await self._version(user_id, header.model_id, 0)
        assert version is not None
        return model_service_pb2.UploadModelVersionResponse(
            version=self._version_message(version, username)
        )

    async def DownloadModelVersion(  # noqa: N802
        self,
        request: model_service_pb2.DownloadModelVersionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[model_service_pb2.DownloadModelVersionResponse]:
        user_id, username = await self._catalog.caller(context)
        version = await self._version(user_id, request.model_id, request.version)
        if version is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no access")
        yield model_service_pb2.DownloadModelVersionResponse(
            version=self._version_message(version, username)
        )
        file = await asyncio.to_thread(self._catalog.blob_path(version[5]).open, "rb")
        try:
            await asyncio.to_thread(file.seek, request.offset)
            while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
                yield model_service_pb2.DownloadModelVersionResponse(chunk=chunk)
        finally:
            file.close()

    async def _editor(self, user_id: str, model_id: str) -> bool:
        async with self._catalog.database.execute(
            "SELECT fm.role FROM models m JOIN folder_members fm ON fm.folder_id = m.folder_id "
            "AND fm.user_id = ? WHERE m.id = ?",
            (user_id, model_id),
        ) as cursor:
            row = await cursor.fetchone()
        return row is not None and int(row[0]) >= EDITOR

    async def _version(self, user_id: str, model_id: str, number: int) -> Any:
        """Version ``number`` of a model the caller can see (0: the latest), or None."""
        async with self._catalog.database.execute(
            "SELECT v.model_id, v.version, v.file_name, v.content_type, v.size_bytes, v.sha256, "
            "v.description, v.created_us FROM model_versions v JOIN models m ON m.id = v.model_id "
            "JOIN folder_members fm ON fm.folder_id = m.folder_id AND fm.user_id = ? "
            "WHERE v.model_id = ? AND v.version = CASE WHEN ? = 0 THEN m.latest_version ELSE ? END",
            (user_id, model_id, number, number),
        ) as cursor:
            return await cursor.fetchone()

    @staticmethod
    def _version_message(row: Any, username: str) -> resources_pb2.ModelVersion:
        return resources_pb2.ModelVersion(
            model_id=row[0],
            version=row[1],
            file_name=row[2],
            content_type=row[3],
            size_bytes=row[4],
            sha256=row[5],
            description=row[6],
            creator_username=username,
            create_time=timestamp(row[7]),
        )


async def serve(listen: str, data_dir: Path, key_path: Path) -> None:
    database = await aiosqlite.connect(data_dir / "reference.sqlite3", isolation_level=None)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"):
        await database.execute(pragma)
    await database.executescript(SCHEMA)
    catalog = Catalog(database, data_dir, key_path)
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 8 << 20)],
    )
    # Only the calls the benchmark makes are implemented: the generated base classes answer
    # UNIMPLEMENTED for the others, which their stubs declare abstract.
    folder_service = FolderService(catalog)  # type: ignore[abstract]
    model_service = ModelService(catalog)  # type: ignore[abstract]
    folder_service_pb2_grpc.add_FolderServiceServicer_to_server(folder_service, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model_service, server)
    credentials = grpc.ssl_server_credentials(
        [
            (
                (data_dir / "tls" / "server.key").read_bytes(),
                (data_dir / "tls" / "server.crt").read_bytes(),
            )
        ]
    )
    port = server.add_secure_port(listen, credentials)
    await server.start()
    print(f"listening on {listen.rsplit(':', 1)[0]}:{port}", flush=True)
    try:
        await server.wait_for_termination()
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--jwt-key", type=Path, required=True, help="PEM RSA private key")
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.data_dir, args.jwt_key))


if __name__ == "__main__":
    main()
