"""The metadata store: SQLAlchemy 2 async Core over SQLite (embedded default) or PostgreSQL.

Work happens in transactions: ``read()`` for consistent reads, ``write()`` for changes, each
yielding a ``Transaction`` whose methods are the only SQL in the server. Authorization filters
are part of the queries (joins on ``folder_members``), so lists never need post-filtering.

SQLite specifics live in ``_configure_sqlite``: WAL, ``synchronous=FULL``, foreign keys on,
and one writer at a time (an in-process lock plus ``BEGIN IMMEDIATE``), so concurrent writes
queue instead of failing with "database is locked".
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import and_, event, func, inspect, or_, select, true
from sqlalchemy.engine import URL, Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ColumnElement

from .records import (
    Credentials,
    FolderRecord,
    MemberRecord,
    ModelRecord,
    Role,
    UserRecord,
    VersionRecord,
)
from .schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    folder_members,
    folders,
    metadata,
    model_versions,
    models,
    schema_version,
    users,
)

#: How long SQLite waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: A position in a list ordered by creation: (created_us, id) of the last item returned.
Cursor = tuple[int, str]


class UniqueViolation(Exception):
    """An insert collided with a unique name."""


class SchemaTooNew(Exception):
    """The database was migrated by a newer server than this one."""


def now_us() -> int:
    """Microseconds since the epoch: the resolution of every stored time."""
    return time.time_ns() // 1000


def new_id() -> str:
    """A new random resource id."""
    return str(uuid.uuid4())


class MetadataStore:
    """Owns the engine; hands out read and write transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open_sqlite(cls, path: Path) -> MetadataStore:
        """Opens (creating and migrating as needed) the SQLite database at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(URL.create("sqlite+aiosqlite", database=str(path)))
        _configure_sqlite(engine)
        store = cls(engine)
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Closes every pooled connection."""
        await self._engine.dispose()

    async def migrate(self) -> None:
        """Creates a new schema or brings an existing one up to ``SCHEMA_VERSION``."""
        async with self.write() as tx:
            await tx.connection.run_sync(_migrate)

    async def ping(self) -> None:
        """Raises when the database cannot answer a trivial query."""
        async with self.read() as tx:
            await tx.connection.execute(select(1))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Transaction]:
        """A transaction for reads only."""
        async with self._engine.connect() as connection, connection.begin():
            yield Transaction(connection)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Transaction]:
        """A transaction that may write; committed when the block ends without an error."""
        async with AsyncExitStack() as stack:
            if self._is_sqlite:
                await stack.enter_async_context(self._write_lock)
            connection = await stack.enter_async_context(self._engine.connect())
            connection = await connection.execution_options(sqlite_begin="IMMEDIATE")
            await stack.enter_async_context(connection.begin())
            yield Transaction(connection)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _migrate(connection: Connection) -> None:
    if not inspect(connection).has_table(schema_version.name):
        metadata.create_all(connection)
        connection.execute(
            schema_version.insert().values(version=SCHEMA_VERSION, applied_us=now_us())
        )
        return
    current = connection.execute(select(func.max(schema_version.c.version))).scalar_one()
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the database has schema version {current}, newer than this server's "
            f"{SCHEMA_VERSION}; upgrade the server"
        )
    for version, migration in enumerate(MIGRATIONS[current - 1 :], start=current + 1):
        migration(connection)
        connection.execute(schema_version.insert().values(version=version, applied_us=now_us()))


def _after(created: Any, id_column: Any, cursor: Cursor | None) -> ColumnElement[bool]:
    """Keyset condition: rows strictly after ``cursor`` in (created, id) order."""
    if cursor is None:
        return true()
    created_us, last_id = cursor
    return or_(created > created_us, and_(created == created_us, id_column > last_id))


_creator = users.alias("creator")


class Transaction:
    """Queries and changes inside one database transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    # Users

    async def insert_user(self, username: str, password_hash: str) -> UserRecord:
        user = UserRecord(new_id(), username, now_us())
        try:
            await self.connection.execute(
                users.insert().values(
                    id=user.id,
                    username=username,
                    password_hash=password_hash,
                    created_us=user.created_us,
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(username) from error
        return user

    async def user_by_id(self, user_id: str) -> UserRecord | None:
        row = (
            await self.connection.execute(
                select(users.c.id, users.c.username, users.c.created_us).where(
                    users.c.id == user_id
                )
            )
        ).first()
        return UserRecord(row.id, row.username, row.created_us) if row else None

    async def credentials(self, username: str) -> Credentials | None:
        row = (
            await self.connection.execute(select(users).where(users.c.username == username))
        ).first()
        if row is None:
            return None
        return Credentials(UserRecord(row.id, row.username, row.created_us), row.password_hash)

    # Folders and members

    async def insert_folder(self, creator: UserRecord, name: str, description: str) -> FolderRecord:
        folder = FolderRecord(new_id(), name, description, creator.username, now_us(), Role.OWNER)
        try:
            await self.connection.execute(
                folders.insert().values(
                    id=folder.id,
                    name=name,
                    description=description,
                    creator_id=creator.id,
                    created_us=folder.created_us,
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(name) from error
        await self.upsert_member(folder.id, creator.id, Role.OWNER)
        return folder

    def _folders_of(self, user_id: str) -> Any:
        return (
            select(
                folders.c.id,
                folders.c.name,
                folders.c.description,
                _creator.c.username.label("creator_username"),
                folders.c.created_us,
                folder_members.c.role,
            )
            .join(
                folder_members,
                and_(
                    folder_members.c.folder_id == folders.c.id,
                    folder_members.c.user_id == user_id,
                ),
            )
            .join(_creator, _creator.c.id == folders.c.creator_id)
        )

    async def folder_for(self, user_id: str, folder_id: str) -> FolderRecord | None:
        """The folder if ``user_id`` has a role in it, else None (missing or not shared)."""
        row = (
            await self.connection.execute(
                self._folders_of(user_id).where(folders.c.id == folder_id)
            )
        ).first()
        return _folder(row) if row else None

    async def folders_for(
        self, user_id: str, after: Cursor | None, limit: int
    ) -> list[FolderRecord]:
        query = (
            self._folders_of(user_id)
            .where(_after(folders.c.created_us, folders.c.id, after))
            .order_by(folders.c.created_us, folders.c.id)
            .limit(limit)
        )
        return [_folder(row) for row in await self.connection.execute(query)]

    async def role(self, folder_id: str, user_id: str) -> Role | None:
        value = (
            await self.connection.execute(
                select(folder_members.c.role).where(
                    folder_members.c.folder_id == folder_id,
                    folder_members.c.user_id == user_id,
                )
            )
        ).scalar_one_or_none()
        return Role(value) if value is not None else None

    async def owner_count(self, folder_id: str) -> int:
        return (
            await self.connection.execute(
                select(func.count()).where(
                    folder_members.c.folder_id == folder_id,
                    folder_members.c.role == int(Role.OWNER),
                )
            )
        ).scalar_one()

    async def upsert_member(self, folder_id: str, user_id: str, role: Role) -> int:
        """Sets the user's role in the folder; returns the time of the change."""
        changed = now_us()
        updated = await self.connection.execute(
            folder_members.update()
            .where(folder_members.c.folder_id == folder_id, folder_members.c.user_id == user_id)
            .values(role=int(role), updated_us=changed)
        )
        if updated.rowcount == 0:
            await self.connection.execute(
                folder_members.insert().values(
                    folder_id=folder_id, user_id=user_id, role=int(role), updated_us=changed
                )
            )
        return changed

    async def delete_member(self, folder_id: str, user_id: str) -> None:
        await self.connection.execute(
            folder_members.delete().where(
                folder_members.c.folder_id == folder_id, folder_members.c.user_id == user_id
            )
        )

    async def members(self, folder_id: str, after: str | None, limit: int) -> list[MemberRecord]:
        """Members by username, starting after the username ``after``."""
        query = (
            select(users.c.id, users.c.username, folder_members.c.role, folder_members.c.updated_us)
            .join(users, users.c.id == folder_members.c.user_id)
            .where(folder_members.c.folder_id == folder_id)
            .order_by(users.c.username)
            .limit(limit)
        )
        if after is not None:
            query = query.where(users.c.username > after)
        return [
            MemberRecord(row.id, row.username, Role(row.role), row.updated_us)
            for row in await self.connection.execute(query)
        ]

    # Models

    async def insert_model(
        self, folder: FolderRecord, creator: UserRecord, name: str, description: str
    ) -> ModelRecord:
        model = ModelRecord(
            new_id(),
            folder.id,
            name,
            description,
            creator.username,
            now_us(),
            0,
            folder.caller_role,
        )
        try:
            await self.connection.execute(
                models.insert().values(
                    id=model.id,
                    folder_id=folder.id,
                    name=name,
                    description=description,
                    creator_id=creator.id,
                    created_us=model.created_us,
                    latest_version=0,
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(name) from error
        return model

    def _models_of(self, user_id: str) -> Any:
        return (
            select(
                models.c.id,
                models.c.folder_id,
                models.c.name,
                models.c.description,
                _creator.c.username.label("creator_username"),
                models.c.created_us,
                models.c.latest_version,
                folder_members.c.role,
            )
            .join(
                folder_members,
                and_(
                    folder_members.c.folder_id == models.c.folder_id,
                    folder_members.c.user_id == user_id,
                ),
            )
            .join(_creator, _creator.c.id == models.c.creator_id)
        )

    async def model_for(self, user_id: str, model_id: str) -> ModelRecord | None:
        """The model if ``user_id`` has a role in its folder, else None."""
        row = (
            await self.connection.execute(self._models_of(user_id).where(models.c.id == model_id))
        ).first()
        return _model(row) if row else None

    async def models_for(
        self, user_id: str, folder_id: str | None, after: Cursor | None, limit: int
    ) -> list[ModelRecord]:
        query = self._models_of(user_id).where(_after(models.c.created_us, models.c.id, after))
        if folder_id is not None:
            query = query.where(models.c.folder_id == folder_id)
        query = query.order_by(models.c.created_us, models.c.id).limit(limit)
        return [_model(row) for row in await self.connection.execute(query)]

    # Versions

    async def insert_version(
        self,
        model: ModelRecord,
        creator: UserRecord,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        sha256: str,
        description: str,
        labels: dict[str, str],
    ) -> VersionRecord:
        """Adds the next version of ``model``; numbers are consecutive and never reused."""
        bumped = await self.connection.execute(
            models.update()
            .where(models.c.id == model.id)
            .values(latest_version=models.c.latest_version + 1)
            .returning(models.c.latest_version)
        )
        record = VersionRecord(
            model.id,
            bumped.scalar_one(),
            file_name,
            content_type,
            size_bytes,
            sha256,
            description,
            labels,
            creator.username,
            now_us(),
        )
        await self.connection.execute(
            model_versions.insert().values(
                model_id=model.id,
                version=record.version,
                file_name=file_name,
                content_type=content_type,
                size_bytes=size_bytes,
                sha256=sha256,
                description=description,
                labels=json.dumps(labels, sort_keys=True),
                creator_id=creator.id,
                created_us=record.created_us,
            )
        )
        return record

    def _versions(self) -> Any:
        return select(model_versions, _creator.c.username.label("creator_username")).join(
            _creator, _creator.c.id == model_versions.c.creator_id
        )

    async def version(self, model_id: str, version: int) -> VersionRecord | None:
        row = (
            await self.connection.execute(
                self._versions().where(
                    model_versions.c.model_id == model_id, model_versions.c.version == version
                )
            )
        ).first()
        return _version(row) if row else None

    async def versions(self, model_id: str, before: int | None, limit: int) -> list[VersionRecord]:
        """Versions newest first, starting below version number ``before``."""
        query = self._versions().where(model_versions.c.model_id == model_id)
        if before is not None:
            query = query.where(model_versions.c.version < before)
        query = query.order_by(model_versions.c.version.desc()).limit(limit)
        return [_version(row) for row in await self.connection.execute(query)]

    async def blob_referenced(self, sha256: str) -> bool:
        """Whether any version points to the blob."""
        query = select(model_versions.c.version).where(model_versions.c.sha256 == sha256)
        return (await self.connection.execute(query.limit(1))).first() is not None

    async def referenced_blobs(self) -> set[str]:
        """Every SHA-256 a version points to."""
        rows = await self.connection.execute(select(model_versions.c.sha256).distinct())
        return {row.sha256 for row in rows}


def _version(row: Row[Any]) -> VersionRecord:
    return VersionRecord(
        row.model_id,
        row.version,
        row.file_name,
        row.content_type,
        row.size_bytes,
        row.sha256,
        row.description,
        json.loads(row.labels),
        row.creator_username,
        row.created_us,
    )


def _folder(row: Row[Any]) -> FolderRecord:
    return FolderRecord(
        row.id, row.name, row.description, row.creator_username, row.created_us, Role(row.role)
    )


def _model(row: Row[Any]) -> ModelRecord:
    return ModelRecord(
        row.id,
        row.folder_id,
        row.name,
        row.description,
        row.creator_username,
        row.created_us,
        row.latest_version,
        Role(row.role),
    )
