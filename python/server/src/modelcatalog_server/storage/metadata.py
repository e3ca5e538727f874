"""The metadata store: SQLAlchemy 2 async Core over SQLite (embedded default) or PostgreSQL.

Work happens in transactions: ``read()`` for consistent reads, ``write()`` for changes, each
yielding a ``Transaction`` whose methods are the only SQL in the server. Authorization filters
are part of the queries (joins on ``folder_members``), so lists never need post-filtering.

SQLite specifics live in ``_configure_sqlite``: WAL, ``synchronous=FULL``, foreign keys on,
and one writer at a time (an in-process lock plus ``BEGIN IMMEDIATE``), so concurrent writes
queue instead of failing with "database is locked".

Every wait is bounded by ``DATABASE_WAIT_SECONDS`` (a free pooled connection, this server's
turn to write, SQLite's write lock held by another process); past it a call fails with
``StorageUnavailable``, and a full disk with ``StorageFull`` (``faults``).

Cancellation (a client's deadline, a dropped connection) never interrupts a database call
half-way: each one runs to its end in its own task and the cancellation is raised after it.
Interrupted, SQLAlchemy would discard the connection while aiosqlite's thread still uses it,
and under repeated cancellations the driver's close races its forced stop: connections stay
open (file descriptors grow) and close tasks are destroyed while pending. Kept whole, every
connection goes back to a pool of fixed size.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple, overload

from sqlalchemy import and_, case, event, exists, func, inspect, or_, select, true
from sqlalchemy.engine import URL, Connection, CursorResult, Row
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ColumnElement, Executable
from sqlalchemy.sql.selectable import TypedReturnsRows

from .faults import StorageFault, StorageFull, StorageUnavailable
from .records import (
    Credentials,
    FailureCounts,
    FolderRecord,
    MemberRecord,
    ModelRecord,
    Role,
    TokenStanding,
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
    revoked_tokens,
    schema_version,
    sign_in_failures,
    users,
)

#: The longest a database call waits for a pooled connection, for its turn to write, or for
#: SQLite's write lock held by another process; then it fails with StorageUnavailable.
DATABASE_WAIT_SECONDS = 5.0
#: SQLite connections kept open (each with its own driver thread and three file descriptors).
#: A fixed number: above it calls wait for a free one instead of opening one per call.
SQLITE_POOL_SIZE = 8

#: SQLite result codes (primary: the low byte of extended codes) that mean "try again later":
#: a lock held too long. Other failures (I/O errors, a read-only file) are server faults.
_SQLITE_UNAVAILABLE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

log = logging.getLogger("modelcatalog_server.storage")

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

    def __init__(self, engine: AsyncEngine, *, wait_seconds: float = DATABASE_WAIT_SECONDS) -> None:
        self._engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        self._wait_seconds = wait_seconds

    @classmethod
    async def open_sqlite(
        cls, path: Path, *, wait_seconds: float = DATABASE_WAIT_SECONDS
    ) -> MetadataStore:
        """Opens (creating and migrating as needed) the SQLite database at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            URL.create("sqlite+aiosqlite", database=str(path)),
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=0,
            pool_timeout=wait_seconds,
        )
        _configure_sqlite(engine, busy_timeout_ms=int(wait_seconds * 1000))
        store = cls(engine, wait_seconds=wait_seconds)
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
        async with self._transaction(immediate=False) as tx:
            yield tx

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Transaction]:
        """A transaction that may write; committed when the block ends without an error."""
        if not self._is_sqlite:
            async with self._transaction(immediate=True) as tx:
                yield tx
            return
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._write_lock.acquire()
        except TimeoutError:
            raise _unavailable(
                f"no turn to write came within {self._wait_seconds:g} s: the database is busy"
            ) from None
        try:
            async with self._transaction(immediate=True) as tx:
                yield tx
        finally:
            self._write_lock.release()

    @asynccontextmanager
    async def _transaction(self, *, immediate: bool) -> AsyncIterator[Transaction]:
        """A pooled connection in a transaction; back in the pool afterwards, come what may.

        Closing the connection rolls back whatever was not committed.
        """
        connection = await _complete(self._begin(immediate), undo=_close)
        try:
            yield Transaction(ShieldedConnection(connection))
            await _complete(connection.commit())
        finally:
            await _complete(_close(connection))

    async def _begin(self, immediate: bool) -> AsyncConnection:
        """A connection from the pool with a transaction begun (BEGIN IMMEDIATE to write)."""
        connection = await self._engine.connect().start()
        try:
            if immediate:
                connection = await connection.execution_options(sqlite_begin="IMMEDIATE")
            await connection.begin()
        except BaseException:
            await connection.close()
            raise
        return connection


async def _close(connection: AsyncConnection) -> None:
    await connection.close()


async def _complete(step: Awaitable[T], *, undo: Callable[[T], Awaitable[None]] | None = None) -> T:
    """Runs one database step to its end even if the caller is cancelled meanwhile.

    The step runs in a task of its own; a cancellation of the caller is raised once the step
    has finished (after ``undo`` of its result, for a step that acquires something), so no
    connection is ever left half-way through a call. Database errors that are storage faults
    (full, locked, busy) come out as ``StorageFault``.
    """
    task = asyncio.ensure_future(_with_faults(step))
    cancellation: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError as error:
            cancellation = error
    if cancellation is None:
        return task.result()
    # Asking for the step's error also marks it seen: the caller gets the cancellation instead.
    succeeded = not task.cancelled() and task.exception() is None
    if succeeded and undo is not None:
        await _complete(undo(task.result()))
    raise cancellation


async def _with_faults(step: Awaitable[T]) -> T:
    """``step``, with driver errors that are storage faults raised as such."""
    try:
        return await step
    except PoolTimeout:
        raise _unavailable("no database connection came free within the wait limit") from None
    except DBAPIError as error:
        fault = _fault(error)
        if fault is None:
            raise
        raise fault from error


def _fault(error: DBAPIError) -> StorageFault | None:
    """The storage fault a driver error stands for, if it is one."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary == sqlite3.SQLITE_FULL:
        log.warning("storage is full: the database cannot grow: %s", error.orig)
        return StorageFull(f"the database cannot grow: {error.orig}")
    if primary in _SQLITE_UNAVAILABLE:
        return _unavailable(f"the database stayed locked: {error.orig}")
    return None


def _unavailable(message: str) -> StorageUnavailable:
    log.warning("storage is unavailable: %s", message)
    return StorageUnavailable(message)


class ShieldedConnection:
    """A transaction's connection whose calls always run to their end (see ``_complete``)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    @overload
    async def execute(self, statement: TypedReturnsRows[*Ts]) -> CursorResult[*Ts]: ...

    @overload
    async def execute(self, statement: Executable) -> CursorResult[*tuple[Any, ...]]: ...

    async def execute(self, statement: Executable) -> CursorResult[*tuple[Any, ...]]:
        """Runs a SQLAlchemy statement; the result is fully buffered."""
        return await _complete(self._connection.execute(statement))

    async def exec_driver_sql(self, sql: str) -> CursorResult[Any]:
        """Runs SQL text as the driver receives it (pragmas, tests)."""
        return await _complete(self._connection.exec_driver_sql(sql))

    async def run_sync(self, function: Callable[[Connection], T]) -> T:
        """Runs ``function`` with the synchronous connection (schema migrations)."""
        return await _complete(self._connection.run_sync(function))


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={busy_timeout_ms}",
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

    def __init__(self, connection: ShieldedConnection) -> None:
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
        return Credentials(
            UserRecord(row.id, row.username, row.created_us),
            row.password_hash,
            row.token_generation,
        )

    async def replace_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Stores ``new_hash`` if the account still has ``old_hash`` (a concurrent change wins)."""
        updated = await self.connection.execute(
            users.update()
            .where(users.c.id == user_id, users.c.password_hash == old_hash)
            .values(password_hash=new_hash)
        )
        return bool(updated.rowcount)

    async def password_hash_prefixes(self, length: int) -> dict[str, int]:
        """How many accounts have each distinct first ``length`` characters of their hash."""
        prefix = func.substr(users.c.password_hash, 1, length).label("prefix")
        rows = await self.connection.execute(
            select(prefix, func.count().label("accounts")).group_by(prefix)
        )
        return {row.prefix: row.accounts for row in rows}

    # Sign-in failures

    async def sign_in_failure_counts(
        self, account_key: str, peer_key: str, since_us: int
    ) -> FailureCounts:
        """Failures after ``since_us`` for the account from the peer, the account, the peer."""
        same_account = sign_in_failures.c.account_key == account_key
        same_peer = sign_in_failures.c.peer_key == peer_key

        def count(condition: ColumnElement[bool]) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        row = (
            await self.connection.execute(
                select(
                    count(and_(same_account, same_peer)).label("account_from_peer"),
                    count(same_account).label("account"),
                    count(same_peer).label("peer"),
                ).where(sign_in_failures.c.failed_us > since_us, or_(same_account, same_peer))
            )
        ).one()
        return FailureCounts(row.account_from_peer, row.account, row.peer)

    async def nth_latest_sign_in_failure(
        self, n: int, since_us: int, *, account_key: str | None, peer_key: str | None
    ) -> int | None:
        """The time of the ``n``-th most recent failure after ``since_us`` matching the keys
        given: the moment from which fewer than ``n`` of them remain counted."""
        query = select(sign_in_failures.c.failed_us).where(sign_in_failures.c.failed_us > since_us)
        if account_key is not None:
            query = query.where(sign_in_failures.c.account_key == account_key)
        if peer_key is not None:
            query = query.where(sign_in_failures.c.peer_key == peer_key)
        query = query.order_by(sign_in_failures.c.failed_us.desc()).offset(n - 1).limit(1)
        return (await self.connection.execute(query)).scalar_one_or_none()

    async def insert_sign_in_failure(self, account_key: str, peer_key: str, at_us: int) -> None:
        await self.connection.execute(
            sign_in_failures.insert().values(
                account_key=account_key, peer_key=peer_key, failed_us=at_us
            )
        )

    async def delete_sign_in_failures(self, account_key: str, peer_key: str) -> None:
        """Forgets the failures of one account from one peer."""
        await self.connection.execute(
            sign_in_failures.delete().where(
                sign_in_failures.c.account_key == account_key,
                sign_in_failures.c.peer_key == peer_key,
            )
        )

    async def prune_sign_in_failures(self, before_us: int) -> None:
        """Forgets failures older than ``before_us``, which no longer count."""
        await self.connection.execute(
            sign_in_failures.delete().where(sign_in_failures.c.failed_us <= before_us)
        )

    # Tokens

    async def token_standing(self, user_id: str, token_id: str) -> TokenStanding | None:
        """The account's token generation and whether ``token_id`` is revoked, in one query;
        None when the account no longer exists."""
        revoked = exists().where(revoked_tokens.c.token_id == token_id)
        row = (
            await self.connection.execute(
                select(users.c.token_generation, revoked.label("revoked")).where(
                    users.c.id == user_id
                )
            )
        ).first()
        return TokenStanding(row.token_generation, bool(row.revoked)) if row else None

    async def insert_revoked_token(self, token_id: str, user_id: str, until_us: int) -> None:
        """Revokes one token until ``until_us``; UniqueViolation if it already is."""
        try:
            await self.connection.execute(
                revoked_tokens.insert().values(
                    token_id=token_id, user_id=user_id, until_us=until_us
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(token_id) from error

    async def prune_revoked_tokens(self, before_us: int) -> None:
        """Forgets revocations of tokens that have expired by ``before_us``."""
        await self.connection.execute(
            revoked_tokens.delete().where(revoked_tokens.c.until_us < before_us)
        )

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
