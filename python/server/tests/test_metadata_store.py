"""The metadata store, on SQLite unless a test says otherwise: migrations, pragmas, serialized
writes, atomic transactions, authorization inside list queries, keyset paging, storage faults,
cancellation, and the order in which callers get PostgreSQL connections."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from server_testing import blocked_transactions, poll_until
from sqlalchemy import Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import QueuePool

from modelcatalog_server.app import storage_locations
from modelcatalog_server.config import Settings
from modelcatalog_server.storage import metadata as metadata_module
from modelcatalog_server.storage import schema
from modelcatalog_server.storage.faults import StorageFull, StorageUnavailable
from modelcatalog_server.storage.metadata import (
    DATABASE_WAIT_SECONDS,
    SQLITE_POOL_SIZE,
    Cursor,
    MetadataStore,
    PoolUsage,
    Transaction,
    UniqueViolation,
)
from modelcatalog_server.storage.migrations import (
    SchemaTooNew,
    alembic_config,
    current_revisions,
    head_revision,
)
from modelcatalog_server.storage.records import (
    Credentials,
    FolderRecord,
    ModelRecord,
    Role,
    TokenStanding,
    UserRecord,
)
from modelcatalog_server.storage.schema import folders, models

HASH = "$2b$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"

#: More pages than any list in these tests can have: a cursor that repeats rows fails fast.
MAX_PAGES = 100

T = TypeVar("T")
Record = TypeVar("Record", FolderRecord, ModelRecord)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "metadata.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[MetadataStore]:
    opened = await MetadataStore.open_sqlite(db_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def store_of_settings(settings: Settings) -> AsyncIterator[MetadataStore]:
    """A store on the database ``settings`` name (by default SQLite, then PostgreSQL)."""
    database, _ = storage_locations(settings)
    opened = await MetadataStore.open(database)
    try:
        yield opened
    finally:
        await opened.close()


def sqlite_of(store: MetadataStore) -> metadata_module._SqliteTransactions:
    """The SQLite machinery of ``store``, for tests of its threads and pool."""
    transactions = store._transactions
    assert isinstance(transactions, metadata_module._SqliteTransactions)
    return transactions


async def _revisions(store: MetadataStore) -> tuple[str, ...]:
    return await store.read(lambda tx: current_revisions(tx.connection))


async def _user_count(store: MetadataStore) -> int:
    return await store.read(
        lambda tx: int(tx.connection.execute(text("SELECT count(*) FROM users")).scalar_one())
    )


async def _new_user(store: MetadataStore, username: str) -> UserRecord:
    return await store.write(lambda tx: tx.insert_user(username, HASH))


async def _pages(
    fetch: Callable[[Cursor | None], Awaitable[list[Record]]], limit: int
) -> list[list[Record]]:
    """Every page of a keyset-paged list, following (created_us, id) of each page's last row."""
    pages: list[list[Record]] = []
    after: Cursor | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(after)
        assert len(page) <= limit
        if not page:
            return pages
        pages.append(page)
        after = (page[-1].created_us, page[-1].id)
    raise AssertionError(f"paging did not end after {MAX_PAGES} pages")


# Schema


async def test_new_database_is_stamped_with_the_newest_revision(store: MetadataStore) -> None:
    """A freshly created database carries exactly the newest Alembic revision."""
    assert await _revisions(store) == (head_revision(),)


async def test_the_revisions_build_exactly_the_schema_the_code_describes(
    store: MetadataStore,
) -> None:
    """Alembic finds no difference between the migrated database and ``schema.metadata``: a
    table changed without a revision (or a revision without the change) fails here."""

    def differences(tx: Transaction) -> list[Any]:
        found: list[Any] = compare_metadata(
            MigrationContext.configure(tx.connection), schema.metadata
        )
        return found

    assert await store.read(differences) == []


async def test_reopening_runs_nothing_and_keeps_data(db_path: Path) -> None:
    """Reopening an up-to-date database changes no revision and keeps every record."""
    first = await MetadataStore.open_sqlite(db_path)
    try:
        alice = await _new_user(first, "alice")
    finally:
        await first.close()
    again = await MetadataStore.open_sqlite(db_path)
    try:
        assert await _revisions(again) == (head_revision(),)
        assert await again.read(lambda tx: tx.user_by_id(alice.id)) == alice
    finally:
        await again.close()


async def test_stores_opening_a_new_database_at_once_migrate_it_once(db_path: Path) -> None:
    """Several processes starting together on one new database: one migrates, the others
    wait for it and find nothing left to do."""
    stores = await asyncio.gather(*(MetadataStore.open_sqlite(db_path) for _ in range(4)))
    try:
        for opened in stores:
            assert await _revisions(opened) == (head_revision(),)
        await _new_user(stores[0], "alice")
        assert await _user_count(stores[3]) == 1
    finally:
        for opened in stores:
            await opened.close()


async def test_rows_from_before_edits_count_as_changed_when_created(db_path: Path) -> None:
    """Revision 0005 gives existing folders, models and versions their creation time as the
    time they last changed, so their etags and update times are well defined."""
    first = await MetadataStore.open_sqlite(db_path)
    alice = await _new_user(first, "alice")

    def catalog(tx: Transaction) -> ModelRecord:
        folder = tx.insert_folder(alice, "vision", "")
        model = tx.insert_model(folder, alice, "resnet", "")
        tx.insert_version(
            model,
            alice,
            file_name="m.onnx",
            content_type="",
            size_bytes=0,
            sha256="0" * 64,
            description="",
            labels={},
        )
        return model

    def to_0004(tx: Transaction) -> None:
        config = alembic_config()
        config.attributes["connection"] = tx.connection
        command.downgrade(config, "0004")

    model = await first.write(catalog)
    await first.write(to_0004)
    await first.close()
    migrated = await MetadataStore.open_sqlite(db_path)
    try:
        assert await _revisions(migrated) == (head_revision(),)
        folder, again, version = await migrated.read(
            lambda tx: (
                tx.folder_for(alice.id, model.folder_id),
                tx.model_for(alice.id, model.id),
                tx.version(model.id, 1),
            )
        )
        assert folder is not None
        assert again is not None
        assert version is not None
        assert folder.updated_us == folder.created_us
        assert again.updated_us == again.created_us == model.updated_us
        assert version.updated_us == version.created_us
    finally:
        await migrated.close()


async def test_roles_from_before_granters_were_recorded_are_explained_as_well_as_known(
    db_path: Path,
) -> None:
    """Revision 0009 credits a creator's untouched owner role to the creator; other roles from
    before keep no granter."""
    first = await MetadataStore.open_sqlite(db_path)
    alice = await _new_user(first, "alice")
    bob = await _new_user(first, "bob")

    def share(tx: Transaction) -> FolderRecord:
        folder = tx.insert_folder(alice, "vision", "")
        tx.upsert_member(folder.id, bob.id, Role.VIEWER, alice.id)
        return folder

    def to_0008(tx: Transaction) -> None:
        config = alembic_config()
        config.attributes["connection"] = tx.connection
        command.downgrade(config, "0008")

    folder = await first.write(share)
    await first.write(to_0008)
    await first.close()
    migrated = await MetadataStore.open_sqlite(db_path)
    try:
        members = await migrated.read(lambda tx: tx.members(folder.id, None, 10))
        assert [(m.username, m.granted_by_username) for m in members] == [
            ("alice", "alice"),
            ("bob", ""),
        ]
    finally:
        await migrated.close()


#: Undoes what the revisions after the first one added.
_AFTER_ALEMBIC = (
    "DROP TABLE request_results",
    "ALTER TABLE folders DROP COLUMN updated_us",
    "ALTER TABLE models DROP COLUMN updated_us",
    "ALTER TABLE model_versions DROP COLUMN updated_us",
    "DROP TABLE model_aliases",
    "DROP TABLE upload_sessions",
    "DROP TABLE blob_deletions",
    "DROP INDEX ix_models_folder_order",
    "ALTER TABLE folder_members DROP COLUMN granted_by",
    "DROP TABLE access_tokens",
    "ALTER TABLE users DROP COLUMN deleted_us",
    "DROP TABLE audit_events",
    "DROP TABLE event_feed",
    "DROP TABLE event_audience",
)
_PRE_ALEMBIC_DOWNGRADES = {
    2: (
        "DROP TABLE sign_in_failures",
        "DROP TABLE revoked_tokens",
        "ALTER TABLE users DROP COLUMN token_generation",
    ),
    1: (
        "DROP TABLE sign_in_failures",
        "DROP TABLE revoked_tokens",
        "ALTER TABLE users DROP COLUMN token_generation",
        "DROP TABLE model_versions",
    ),
}


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_a_database_made_before_alembic_is_brought_forward(
    db_path: Path, version: int
) -> None:
    """A data directory from a server that stamped ``schema_version`` 1, 2 or 3 keeps its
    records and gains what came after (token generations start at 0), and then carries only
    Alembic's stamp."""
    first = await MetadataStore.open_sqlite(db_path)
    alice = await _new_user(first, "alice")

    def to_pre_alembic(tx: Transaction) -> None:
        for statement in (
            *_AFTER_ALEMBIC,
            *_PRE_ALEMBIC_DOWNGRADES.get(version, ()),
            "DROP TABLE alembic_version",
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_us BIGINT)",
            f"INSERT INTO schema_version VALUES ({version}, 0)",
        ):
            tx.connection.exec_driver_sql(statement)

    def use_newer_tables(tx: Transaction) -> tuple[Credentials | None, TokenStanding | None]:
        credentials = tx.credentials("alice")
        tx.insert_sign_in_failure("account", "peer", 1)
        tx.insert_revoked_token("token", alice.id, 2)
        return credentials, tx.token_standing(alice.id, "token")

    await first.write(to_pre_alembic)
    await first.close()
    migrated = await MetadataStore.open_sqlite(db_path)
    try:
        assert await _revisions(migrated) == (head_revision(),)
        credentials, standing = await migrated.write(use_newer_tables)
        assert credentials is not None
        assert credentials.token_generation == 0
        assert standing is not None
        assert (standing.token_generation, standing.revoked) == (0, True)
        assert await migrated.read(
            lambda tx: not inspect(tx.connection).has_table("schema_version")
        )
    finally:
        await migrated.close()


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Engine]]:
    """Every engine open_sqlite creates during the test; all are disposed afterwards."""
    created: list[Engine] = []

    def capture(url: str, **kwargs: Any) -> Engine:
        engine = create_engine(url, **kwargs)
        created.append(engine)
        return engine

    monkeypatch.setattr(metadata_module, "create_engine", capture)
    yield created
    for engine in created:
        engine.dispose()


async def _stamp_too_new(db_path: Path) -> None:
    store = await MetadataStore.open_sqlite(db_path)
    await store.write(
        lambda tx: tx.connection.exec_driver_sql(
            "UPDATE alembic_version SET version_num = 'f00d-from-the-future'"
        )
    )
    await store.close()


async def test_database_of_a_newer_server_is_refused(db_path: Path, engines: list[Engine]) -> None:
    """A database stamped with a revision this server does not know raises SchemaTooNew."""
    await _stamp_too_new(db_path)
    with pytest.raises(SchemaTooNew, match=r"f00d-from-the-future.*upgrade the server"):
        await MetadataStore.open_sqlite(db_path)


async def test_refused_open_leaves_no_connection_open(db_path: Path, engines: list[Engine]) -> None:
    """When open_sqlite raises (SchemaTooNew), the engine it created holds no connection."""
    await _stamp_too_new(db_path)
    with pytest.raises(SchemaTooNew):
        await MetadataStore.open_sqlite(db_path)
    pool = engines[-1].pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedin() == 0


@pytest.mark.parametrize("directory", ["data?v=1", "data%41"])
async def test_database_is_created_exactly_at_the_given_path(
    tmp_path: Path, directory: str, engines: list[Engine]
) -> None:
    """open_sqlite creates the database at the path given, even with ? or % in a directory."""
    path = tmp_path / directory / "metadata.db"
    store = await MetadataStore.open_sqlite(path)
    await store.close()
    assert path.is_file()


# Connection settings


@pytest.mark.parametrize("mode", ["read", "write"])
async def test_pragmas_hold_on_every_connection(store: MetadataStore, mode: str) -> None:
    """WAL journal, synchronous=FULL, foreign keys on and a busy timeout, in reads and writes."""

    def pragmas(tx: Transaction) -> dict[str, Any]:
        return {
            pragma: tx.connection.exec_driver_sql(f"PRAGMA {pragma}").scalar_one()
            for pragma in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }

    values = await (store.read(pragmas) if mode == "read" else store.write(pragmas))
    assert values == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": DATABASE_WAIT_SECONDS * 1000,
    }


async def test_foreign_keys_are_enforced(store: MetadataStore) -> None:
    """A member row pointing at a folder that does not exist is refused."""
    alice = await _new_user(store, "alice")
    with pytest.raises(IntegrityError):
        await store.write(
            lambda tx: tx.upsert_member("no-such-folder", alice.id, Role.VIEWER, alice.id)
        )


# One trip per transaction


async def _trace_statements(store: MetadataStore, seen: Callable[[str], None]) -> None:
    """Has every pool thread's SQLite connection report each statement SQLite runs to ``seen``
    (SQLite's own trace: it sees statements run through SQLAlchemy and on the driver alike)."""
    every_thread = threading.Barrier(metadata_module.SQLITE_POOL_SIZE)

    def trace(tx: Transaction) -> None:
        tx.connection.connection.driver_connection.set_trace_callback(seen)  # type: ignore[union-attr]
        every_thread.wait(timeout=10)  # each thread takes one of these transactions

    await asyncio.gather(*(store.read(trace) for _ in range(metadata_module.SQLITE_POOL_SIZE)))


async def test_a_transaction_runs_whole_in_one_trip_to_one_pool_thread(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN, every statement and COMMIT of a transaction run in one call on one pool thread,
    never on the event loop's thread: a call pays one hop however many statements it makes."""
    alice = await _new_user(store, "alice")
    trips: list[object] = []
    submit = sqlite_of(store)._threads.submit

    def counted(step: Any) -> None:
        trips.append(step)
        submit(step)

    threads: set[int] = set()
    statements: list[str] = []

    def seen(statement: str) -> None:
        threads.add(threading.get_ident())
        statements.append(statement.split()[0])

    await _trace_statements(store, seen)
    threads.clear()
    statements.clear()
    monkeypatch.setattr(sqlite_of(store)._threads, "submit", counted)

    def three_statements(tx: Transaction) -> None:
        tx.user_by_id(alice.id)
        tx.token_standing(alice.id, "token")
        tx.folders_for(alice.id, None, 10)

    await store.read(three_statements)
    assert len(trips) == 1
    assert statements == ["BEGIN", "SELECT", "SELECT", "SELECT", "COMMIT"]
    assert len(threads) == 1
    assert threading.get_ident() not in threads


async def test_pool_threads_keep_their_connections_between_transactions(
    store: MetadataStore,
) -> None:
    """Once each pool thread has its connection, transactions take none from the engine's
    pool: a transaction pays no checkout, no checkin and no reset."""
    alice = await _new_user(store, "alice")
    checkouts: list[object] = []
    event.listen(sqlite_of(store)._engine, "checkout", lambda *args: checkouts.append(args))
    warm = len(checkouts)
    every_thread = threading.Barrier(SQLITE_POOL_SIZE, timeout=10)

    def meet(tx: Transaction) -> None:
        tx.user_by_id(alice.id)
        every_thread.wait()  # each pool thread holds one of these at once

    await asyncio.gather(*(store.read(meet) for _ in range(SQLITE_POOL_SIZE)))
    assert len(checkouts) - warm <= SQLITE_POOL_SIZE
    before = len(checkouts)
    await asyncio.gather(*(store.read(lambda tx: tx.user_by_id(alice.id)) for _ in range(40)))
    assert len(checkouts) == before


async def test_a_pool_thread_whose_connection_broke_takes_a_new_one(
    store: MetadataStore,
) -> None:
    """A transaction whose driver connection broke fails; every later transaction works, on a
    new connection, within the pool's size."""
    alice = await _new_user(store, "alice")

    def break_connection(tx: Transaction) -> None:
        tx.connection.connection.driver_connection.close()  # type: ignore[union-attr]
        tx.connection.exec_driver_sql("SELECT 1")

    for _ in range(SQLITE_POOL_SIZE):
        with pytest.raises(DBAPIError):
            await store.read(break_connection)
    users = await asyncio.gather(
        *(store.read(lambda tx: tx.user_by_id(alice.id)) for _ in range(40))
    )
    assert users == [alice] * 40
    pool = sqlite_of(store)._engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() <= SQLITE_POOL_SIZE


async def test_frequent_reads_build_no_statement_per_call(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statements of the calls made on every request (token standing, user, get and list of
    folders, models, members and versions) are built once: after a first use no call builds a
    SELECT or a bound parameter again, so SQLAlchemy's compiled cache serves them directly."""
    w = await _shared_world(store)
    alice, folder, model = w["alice"].id, w["bob_shared"].id, w["shared_model"].id
    after = (w["shared_model"].created_us, w["shared_model"].id)

    def every_frequent_read(tx: Transaction) -> None:
        tx.token_standing(alice, "token")
        tx.user_by_id(alice)
        tx.credentials("alice")
        tx.role(folder, alice)
        tx.folder_for(alice, folder)
        tx.model_for(alice, model)
        tx.version(model, 1)
        for position in (None, after):
            tx.folders_for(alice, position, 10)
            for in_folder in (None, folder):
                tx.models_for(alice, in_folder, position, 10)
        for name in (None, "alice"):
            tx.members(folder, name, 10)
        for before in (None, 2):
            tx.versions(model, before, 10)

    await store.read(every_frequent_read)

    def built(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a frequent read built a statement")

    for name in ("select", "bindparam", "and_", "or_", "exists", "tuple_"):
        monkeypatch.setattr(metadata_module, name, built)
    await store.read(every_frequent_read)


@pytest.mark.parametrize("in_folder", [False, True])
@pytest.mark.parametrize("after", [False, True])
async def test_a_page_of_models_is_chosen_from_the_folder_order_index(
    store: MetadataStore, in_folder: bool, after: bool
) -> None:
    """A list page of models is picked from the (folder, created, id) index alone, a later page
    by a range of it: a page does not cost a sort of every model in the caller's folders."""

    def plan(tx: Transaction) -> str:
        compiled = metadata_module._models_page(in_folder, after, False).compile(tx.connection)
        values = compiled.construct_params(
            {"caller": "u", "folder_id": "f", "limit": 100, "after_us": 1, "after_id": "m"}
        )
        rows = tx.connection.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}",
            tuple(values[name] for name in compiled.positiontup or ()),
        ).all()
        return "\n".join(row[3] for row in rows)

    steps = await store.read(plan)
    index_read = "USING COVERING INDEX ix_models_folder_order (folder_id=?"
    assert index_read + (" AND (created_us,id)>(?,?))" if after else ")") in steps, steps


async def test_lists_read_each_page_from_sqlite_in_one_step(store: MetadataStore) -> None:
    """Folder, model, member, version and alias lists get a whole page from SQLite as one row
    (a JSON array aggregated by SQLite), never a row per driver step: SQLite's driver gives up
    the GIL around each step and must win it back from the event loop and the other pool
    threads."""
    w = await _shared_world(store)
    alice, folder, model = w["alice"].id, w["bob_shared"].id, w["shared_model"].id
    statements: list[str] = []
    await _trace_statements(store, statements.append)
    statements.clear()

    def every_list(tx: Transaction) -> list[int]:
        return [
            len(tx.folders_for(alice, None, 10)),
            len(tx.models_for(alice, None, None, 10)),
            len(tx.members(folder, None, 10)),
            len(tx.versions(model, None, 10)),
            len(tx.aliases(model, None, 10)),
        ]

    assert await store.read(every_list) == [2, 2, 2, 0, 0]
    queries = [statement for statement in statements if statement.startswith("SELECT")]
    assert len(queries) == 5
    assert all(query.startswith("SELECT json_group_array(json_array(") for query in queries)


async def test_lookups_read_from_sqlites_driver_give_what_sqlalchemy_gives(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frequent lookups (user, credentials, folder, member, model, version, alias), which
    SQLite answers straight from its driver, give the records SQLAlchemy's execution gives,
    found and not found alike; a page is read the same way."""
    w = await _shared_world(store)
    alice, bob, model = w["alice"], w["bob"], w["shared_model"]

    def add_version_and_alias(tx: Transaction) -> None:
        tx.insert_version(
            model,
            bob,
            file_name="m.onnx",
            content_type="application/onnx",
            size_bytes=7,
            sha256="ab" * 32,
            description="first",
            labels={"stage": "prod"},
        )
        tx.put_alias(model.id, "prod", 1, bob)

    await store.write(add_version_and_alias)

    def lookups(tx: Transaction) -> list[Any]:
        return [
            tx.user_by_id(alice.id),
            tx.user_by_id("nobody"),
            tx.credentials("bob"),
            tx.credentials("nobody"),
            tx.folder_for(alice.id, w["bob_shared"].id),
            tx.folder_for(alice.id, w["bob_private"].id),
            tx.member(w["bob_shared"].id, alice.id),
            tx.member(w["bob_private"].id, alice.id),
            tx.model_for(alice.id, model.id),
            tx.model_for(alice.id, w["private_model"].id),
            tx.version(model.id, 1),
            tx.version(model.id, 2),
            tx.alias(model.id, "prod"),
            tx.alias(model.id, "staging"),
            tx.models_for(alice.id, None, None, 10),
        ]

    driver_reads: list[str] = []
    run_on_driver = metadata_module._driver_rows

    def counted(connection: Any, statement: Any, parameters: dict[str, Any]) -> list[Any]:
        driver_reads.append(statement.sql.split()[0])
        return run_on_driver(connection, statement, parameters)

    monkeypatch.setattr(metadata_module, "_driver_rows", counted)
    from_driver = await store.read(lookups)
    assert driver_reads.count("SELECT") == 15
    monkeypatch.setattr(metadata_module, "_driver_statement", lambda *_args: None)
    driver_reads.clear()
    from_sqlalchemy = await store.read(lookups)
    assert driver_reads == ["BEGIN"]
    assert from_driver == from_sqlalchemy
    assert sum(found is None for found in from_driver) == 7


def test_statements_sqlalchemy_must_convert_or_expand_are_not_run_on_the_driver() -> None:
    """A statement with a column SQLAlchemy converts as it reads it (a Boolean), or with a
    parameter it expands at execution (the folders a limited token sees) stays SQLAlchemy's."""
    dialect = create_engine("sqlite://").dialect
    assert metadata_module._driver_statement(metadata_module._MODEL_FOR, dialect) is not None
    assert metadata_module._driver_statement(metadata_module._TOKEN_STANDING, dialect) is None
    limited = metadata_module._limited_to_visible(metadata_module._MODEL_FOR)
    assert metadata_module._driver_statement(limited, dialect) is None


async def test_a_page_read_as_one_row_holds_the_rows_the_query_gives(store: MetadataStore) -> None:
    """The JSON page is the query's own rows, value for value and in its order: text of any
    kind (quotes, backslashes, control characters, non-ASCII, the empty string) and 64-bit
    integers, over several pages of models inserted in shuffled order."""
    owner = await _new_user(store, "owner")
    names = ['a "quoted" \\name', "tab\there\nline", "ünï-cödé ✓", "x" * 300, "", "0", "[1]"]

    def create(tx: Transaction) -> str:
        folder = tx.insert_folder(owner, "f", "")
        for index in random.Random(7).sample(range(40), 40):
            model = tx.insert_model(folder, owner, f"m{index}", names[index % len(names)])
            tx.connection.execute(
                models.update()
                .where(models.c.id == model.id)
                .values(created_us=2**62 + index % 5, updated_us=2**63 - 1 - index)
            )
        return folder.id

    folder_id = await store.write(create)

    def both(after: Any, tx: Transaction) -> tuple[list[ModelRecord], list[ModelRecord]]:
        parameters: dict[str, Any] = {"caller": owner.id, "limit": 15, "folder_id": folder_id}
        parameters.update(metadata_module._position(after))
        page = metadata_module._models_page(True, after is not None, False)
        plain = [metadata_module._model(row) for row in tx.connection.execute(page, parameters)]
        return tx.models_for(owner.id, folder_id, after, 15), plain

    after, seen = None, 0
    while True:
        listed, plain = await store.read(functools.partial(both, after))
        assert listed == plain
        seen += len(listed)
        if len(listed) < 15:
            break
        after = (listed[-1].created_us, listed[-1].id)
    assert seen == 40


# Concurrency


async def test_concurrent_writes_all_succeed(store: MetadataStore) -> None:
    """50 write transactions started at once all commit; none fails with "database is locked"."""
    users = await asyncio.gather(*(_new_user(store, f"user{i:02}") for i in range(50)))
    assert len({user.id for user in users}) == 50
    assert await _user_count(store) == 50


async def test_two_stores_on_one_file_write_concurrently(
    store: MetadataStore, db_path: Path
) -> None:
    """Two stores (as two processes would) reading then writing the same file at once succeed."""

    async def read_then_write(target: MetadataStore, username: str) -> None:
        def change(tx: Transaction) -> None:
            assert tx.credentials(username) is None
            tx.insert_user(username, HASH)

        await target.write(change)

    other = await MetadataStore.open_sqlite(db_path)
    try:
        writes = [read_then_write(store if i % 2 else other, f"user{i:02}") for i in range(40)]
        await asyncio.gather(*writes, *(_user_count(other) for _ in range(5)))
        assert await _user_count(store) == 40
        assert await _user_count(other) == 40
    finally:
        await other.close()


# Transactions


async def test_duplicate_username_raises_and_keeps_the_first_user(store: MetadataStore) -> None:
    """A second user with a taken name raises UniqueViolation; the first account is unchanged."""
    alice = await _new_user(store, "alice")
    with pytest.raises(UniqueViolation):
        await store.write(lambda tx: tx.insert_user("alice", "another-hash"))
    credentials = await store.read(lambda tx: tx.credentials("alice"))
    assert credentials is not None
    assert (credentials.user, credentials.password_hash) == (alice, HASH)
    assert await _user_count(store) == 1


async def test_error_inside_a_write_rolls_everything_back(store: MetadataStore) -> None:
    """An exception inside a write transaction undoes all of that transaction's changes."""
    alice = await _new_user(store, "alice")

    def fail_half_way(tx: Transaction) -> None:
        bob = tx.insert_user("bob", HASH)
        tx.insert_folder(alice, "shared", "")
        tx.insert_folder(bob, "private", "")
        raise RuntimeError("boom")

    def left_behind(tx: Transaction) -> tuple[Credentials | None, list[FolderRecord]]:
        return tx.credentials("bob"), tx.folders_for(alice.id, None, 100)

    with pytest.raises(RuntimeError, match="boom"):
        await store.write(fail_half_way)
    assert await store.read(left_behind) == (None, [])
    assert await _user_count(store) == 1
    await _new_user(store, "carol")  # the write lock was released


async def test_records_read_back_as_written(store: MetadataStore) -> None:
    """user_by_id and credentials return what insert_user stored; unknown ones give None."""
    alice = await _new_user(store, "alice")

    def read_back(tx: Transaction) -> None:
        assert tx.user_by_id(alice.id) == alice
        assert tx.user_by_id("missing") is None
        credentials = tx.credentials("alice")
        assert credentials is not None
        assert credentials.user == alice
        assert tx.credentials("nobody") is None

    await store.read(read_back)


async def test_folder_and_model_names_are_unique_in_their_parent(store: MetadataStore) -> None:
    """Folder names are unique per creator and model names per folder (UniqueViolation)."""
    alice = await _new_user(store, "alice")
    bob = await _new_user(store, "bob")

    def create(tx: Transaction) -> FolderRecord:
        folder = tx.insert_folder(alice, "f", "")
        tx.insert_folder(bob, "f", "")  # another creator may reuse the name
        tx.insert_model(folder, alice, "m", "")
        return folder

    folder = await store.write(create)
    with pytest.raises(UniqueViolation):
        await store.write(lambda tx: tx.insert_folder(alice, "f", ""))
    with pytest.raises(UniqueViolation):
        await store.write(lambda tx: tx.insert_model(folder, alice, "m", ""))


async def test_upsert_member_changes_the_role_in_place(store: MetadataStore) -> None:
    """Granting twice updates the one member row; role, owner_count and members agree."""
    alice = await _new_user(store, "alice")
    bob = await _new_user(store, "bob")

    def share(tx: Transaction) -> FolderRecord:
        folder = tx.insert_folder(alice, "f", "")
        tx.upsert_member(folder.id, bob.id, Role.VIEWER, alice.id)
        tx.upsert_member(folder.id, bob.id, Role.OWNER, alice.id)
        return folder

    def check(tx: Transaction) -> None:
        assert tx.role(folder.id, bob.id) is Role.OWNER
        assert tx.owner_count(folder.id) == 2
        members = tx.members(folder.id, None, 10)
        assert [(m.username, m.role) for m in members] == [
            ("alice", Role.OWNER),
            ("bob", Role.OWNER),
        ]
        assert [m.username for m in tx.members(folder.id, "alice", 10)] == ["bob"]

    folder = await store.write(share)
    await store.read(check)
    await store.write(lambda tx: tx.delete_member(folder.id, bob.id))
    assert await store.read(lambda tx: tx.role(folder.id, bob.id)) is None


# Authorization inside the queries


async def _shared_world(store: MetadataStore) -> dict[str, Any]:
    """alice and bob each own folders with models; bob shares one folder with alice."""
    alice = await _new_user(store, "alice")
    bob = await _new_user(store, "bob")
    carol = await _new_user(store, "carol")

    def create(tx: Transaction) -> dict[str, Any]:
        alice_folder = tx.insert_folder(alice, "alice-f", "")
        bob_shared = tx.insert_folder(bob, "bob-shared", "")
        bob_private = tx.insert_folder(bob, "bob-private", "")
        tx.upsert_member(bob_shared.id, alice.id, Role.VIEWER, bob.id)
        return {
            "alice_folder": alice_folder,
            "bob_shared": bob_shared,
            "bob_private": bob_private,
            "alice_model": tx.insert_model(alice_folder, alice, "am", ""),
            "shared_model": tx.insert_model(bob_shared, bob, "sm", ""),
            "private_model": tx.insert_model(bob_private, bob, "pm", ""),
        }

    return {"alice": alice, "bob": bob, "carol": carol, **await store.write(create)}


async def test_folders_for_returns_only_folders_with_a_member_row(store: MetadataStore) -> None:
    """A user lists own and shared folders with the right role, never others' private ones."""
    w = await _shared_world(store)

    def sights(tx: Transaction) -> tuple[list[FolderRecord], ...]:
        assert tx.folder_for(w["alice"].id, w["bob_private"].id) is None
        assert tx.folder_for(w["carol"].id, w["bob_shared"].id) is None
        return (
            tx.folders_for(w["alice"].id, None, 100),
            tx.folders_for(w["bob"].id, None, 100),
            tx.folders_for(w["carol"].id, None, 100),
        )

    alice_sees, bob_sees, carol_sees = await store.read(sights)
    shared = await store.read(lambda tx: tx.folder_for(w["alice"].id, w["bob_shared"].id))
    assert {(f.name, f.caller_role) for f in alice_sees} == {
        ("alice-f", Role.OWNER),
        ("bob-shared", Role.VIEWER),
    }
    assert {f.name for f in bob_sees} == {"bob-shared", "bob-private"}
    assert carol_sees == []
    assert shared is not None
    assert (shared.creator_username, shared.caller_role) == ("bob", Role.VIEWER)


async def test_models_for_returns_only_models_of_member_folders(store: MetadataStore) -> None:
    """A user lists models only from folders where they have a role, with that role."""
    w = await _shared_world(store)
    alice_id = w["alice"].id

    def sights(tx: Transaction) -> tuple[list[ModelRecord], ...]:
        assert tx.model_for(alice_id, w["private_model"].id) is None
        return (
            tx.models_for(alice_id, None, None, 100),
            tx.models_for(alice_id, w["bob_shared"].id, None, 100),
            tx.models_for(alice_id, w["bob_private"].id, None, 100),
            tx.models_for(w["carol"].id, None, None, 100),
        )

    everything, in_shared, in_private, carol_sees = await store.read(sights)
    shared = await store.read(lambda tx: tx.model_for(alice_id, w["shared_model"].id))
    assert {(m.name, m.caller_role) for m in everything} == {
        ("am", Role.OWNER),
        ("sm", Role.VIEWER),
    }
    assert [m.id for m in in_shared] == [w["shared_model"].id]
    assert in_private == []
    assert carol_sees == []
    assert shared is not None
    assert (shared.creator_username, shared.caller_role) == ("bob", Role.VIEWER)


async def test_revoking_membership_hides_folder_and_models(store: MetadataStore) -> None:
    """Once the member row is deleted, the folder and its models disappear from the lists."""
    w = await _shared_world(store)
    await store.write(lambda tx: tx.delete_member(w["bob_shared"].id, w["alice"].id))
    folders_seen = await store.read(lambda tx: tx.folders_for(w["alice"].id, None, 100))
    models_seen = await store.read(lambda tx: tx.models_for(w["alice"].id, None, None, 100))
    assert [f.name for f in folders_seen] == ["alice-f"]
    assert [m.name for m in models_seen] == ["am"]


# Keyset paging


async def _set_created(store: MetadataStore, table: Any, ids: list[str], created_us: int) -> None:
    await store.write(
        lambda tx: tx.connection.execute(
            table.update().where(table.c.id.in_(ids)).values(created_us=created_us)
        )
    )


@pytest.mark.parametrize("limit", [1, 4, 7, 100])
async def test_folder_pages_return_every_row_exactly_once(store: MetadataStore, limit: int) -> None:
    """Paging folders by (created_us, id) yields each visible folder once, in order, with ties."""
    alice = await _new_user(store, "alice")
    bob = await _new_user(store, "bob")

    def create(tx: Transaction) -> tuple[list[FolderRecord], ...]:
        mine = [tx.insert_folder(alice, f"a{i:02}", "") for i in range(15)]
        others = [tx.insert_folder(bob, f"b{i:02}", "") for i in range(6)]
        shared = [tx.insert_folder(bob, f"s{i:02}", "") for i in range(4)]
        for folder in shared:
            tx.upsert_member(folder.id, alice.id, Role.EDITOR, bob.id)
        return mine, others, shared

    mine, others, shared = await store.write(create)
    # Many rows created in the same microsecond: the id must break the tie.
    tied = [f.id for f in mine[3:10]] + [others[0].id, shared[0].id]
    await _set_created(store, folders, tied, mine[3].created_us)

    async def fetch(after: Cursor | None) -> list[FolderRecord]:
        return await store.read(lambda tx: tx.folders_for(alice.id, after, limit))

    rows = [folder for page in await _pages(fetch, limit) for folder in page]
    ids = [folder.id for folder in rows]
    assert sorted(ids) == sorted(f.id for f in mine + shared)
    assert len(ids) == len(set(ids))
    keys = [(folder.created_us, folder.id) for folder in rows]
    assert keys == sorted(keys)


@pytest.mark.parametrize("in_folder", [False, True])
async def test_model_pages_return_every_row_exactly_once(
    store: MetadataStore, in_folder: bool
) -> None:
    """Paging models by (created_us, id) yields each visible model once, overall or per folder."""
    alice = await _new_user(store, "alice")
    bob = await _new_user(store, "bob")

    def create(
        tx: Transaction,
    ) -> tuple[FolderRecord, list[ModelRecord], list[ModelRecord], list[ModelRecord]]:
        first = tx.insert_folder(alice, "first", "")
        second = tx.insert_folder(alice, "second", "")
        hidden = tx.insert_folder(bob, "hidden", "")
        in_first = [tx.insert_model(first, alice, f"m{i:02}", "") for i in range(9)]
        in_second = [tx.insert_model(second, alice, f"m{i:02}", "") for i in range(8)]
        invisible = [tx.insert_model(hidden, bob, f"m{i:02}", "") for i in range(5)]
        return first, in_first, in_second, invisible

    first, in_first, in_second, invisible = await store.write(create)
    tied = [m.id for m in in_first[2:6] + in_second[:3] + invisible[:2]]
    await _set_created(store, models, tied, in_first[2].created_us)
    folder_id = first.id if in_folder else None

    async def fetch(after: Cursor | None) -> list[ModelRecord]:
        return await store.read(lambda tx: tx.models_for(alice.id, folder_id, after, 3))

    rows = [model for page in await _pages(fetch, 3) for model in page]
    expected = in_first if in_folder else in_first + in_second
    ids = [model.id for model in rows]
    assert sorted(ids) == sorted(m.id for m in expected)
    assert len(ids) == len(set(ids))
    keys = [(model.created_us, model.id) for model in rows]
    assert keys == sorted(keys)


async def test_paging_past_the_end_returns_nothing(store: MetadataStore) -> None:
    """A cursor at or after the last row gives an empty page."""
    alice = await _new_user(store, "alice")
    folder = await store.write(lambda tx: tx.insert_folder(alice, "only", ""))
    after = (folder.created_us, folder.id)
    assert await store.read(lambda tx: tx.folders_for(alice.id, after, 10)) == []
    count = await store.read(
        lambda tx: tx.connection.execute(select(func.count()).select_from(folders)).scalar_one()
    )
    assert count == 1


# Faults: full, locked, busy; cancellation


def database_descriptors(path: Path) -> int:
    """File descriptors of this process open on the database (its file, WAL and shared memory)."""
    count = 0
    for descriptor in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{descriptor}").startswith(str(path)):
                count += 1
    return count


async def _fill_until_full(store: MetadataStore) -> None:
    """Caps the file at its current size, then writes until SQLite has no page left."""

    def fill(tx: Transaction) -> None:
        pages = tx.connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        tx.connection.exec_driver_sql(f"PRAGMA max_page_count={pages}")
        alice = tx.insert_user("alice", HASH)
        folder = tx.insert_folder(alice, "vision", "")
        for number in range(1000):
            tx.insert_model(folder, alice, f"model {number}", "x" * 1000)

    await store.write(fill)


async def test_full_database_is_storage_full_and_keeps_nothing(
    store: MetadataStore, db_path: Path
) -> None:
    """SQLite's "database or disk is full" raises StorageFull and rolls the transaction back."""
    with pytest.raises(StorageFull):
        await _fill_until_full(store)
    await store.ping()
    other = await MetadataStore.open_sqlite(db_path)
    try:
        assert await _user_count(other) == 0
        await _new_user(other, "bob")
    finally:
        await other.close()


@pytest.fixture
def quick_store_path(db_path: Path) -> Path:
    return db_path.with_name("quick.db")


@pytest.fixture
async def quick_store(quick_store_path: Path) -> AsyncIterator[MetadataStore]:
    """A store that waits at most 0.2 s for a connection, its turn to write, or SQLite's lock."""
    opened = await MetadataStore.open_sqlite(quick_store_path, wait_seconds=0.2)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.alone("bounds the time to StorageUnavailable")
async def test_database_locked_by_another_process_is_unavailable_in_bounded_time(
    quick_store: MetadataStore, quick_store_path: Path
) -> None:
    """A write lock held elsewhere: writes are StorageUnavailable after the wait; reads go on."""
    await _new_user(quick_store, "alice")
    other_process = sqlite3.connect(quick_store_path, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await _new_user(quick_store, "bob")
        assert 0.2 <= time.monotonic() - started < 2.0
        assert await _user_count(quick_store) == 1
    finally:
        other_process.close()
    await _new_user(quick_store, "bob")


class Holds:
    """Transactions that stay open in their pool threads until released (threads block on an
    event), and an asyncio event per transaction that is set once it runs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._loop = asyncio.get_running_loop()

    def holding(
        self, entered: asyncio.Event, then: Callable[[Transaction], T]
    ) -> Callable[[Transaction], T]:
        def work(tx: Transaction) -> T:
            result = then(tx)
            self._loop.call_soon_threadsafe(entered.set)
            if not self.release.wait(timeout=30):
                raise AssertionError("the test never released its transaction")
            return result

        return work

    async def every_pool_thread(self, store: MetadataStore) -> list[asyncio.Task[None]]:
        """Holds every pool thread of ``store`` with a read; returns once all of them run."""
        holding = [asyncio.Event() for _ in range(SQLITE_POOL_SIZE)]
        holders = [
            asyncio.create_task(store.read(self.holding(entered, _nothing))) for entered in holding
        ]
        for entered in holding:
            await entered.wait()
        return holders


@pytest.fixture
async def holds() -> AsyncIterator[Holds]:
    """Held transactions, all released when the test ends, however it ends."""
    held = Holds()
    try:
        yield held
    finally:
        held.release.set()


def _nothing(_tx: Transaction) -> None:
    return None


async def test_a_write_kept_waiting_for_its_turn_is_unavailable(
    quick_store: MetadataStore, holds: Holds
) -> None:
    """A write queued behind a longer one fails after the wait instead of queueing forever."""
    holding = asyncio.Event()
    first = asyncio.create_task(
        quick_store.write(holds.holding(holding, lambda tx: tx.insert_user("alice", HASH)))
    )
    await holding.wait()
    with pytest.raises(StorageUnavailable):
        await _new_user(quick_store, "bob")
    holds.release.set()
    await first
    assert await _user_count(quick_store) == 1


async def test_no_free_connection_within_the_wait_is_unavailable(
    quick_store: MetadataStore, holds: Holds
) -> None:
    """With every pooled connection in use past the wait, one more call is StorageUnavailable."""
    holders = await holds.every_pool_thread(quick_store)
    with pytest.raises(StorageUnavailable):
        await quick_store.ping()
    holds.release.set()
    await asyncio.gather(*holders)
    await quick_store.ping()


async def test_a_lookup_runs_on_the_event_loops_thread_while_the_pool_is_busy(
    quick_store: MetadataStore, holds: Holds
) -> None:
    """A lookup by key runs on the event loop's thread, in no trip to the pool: it answers
    while every pool thread is held by a long transaction, and sees what the last write
    committed."""
    alice = await _new_user(quick_store, "alice")
    holders = await holds.every_pool_thread(quick_store)
    threads: list[int] = []

    def user(tx: Transaction) -> UserRecord | None:
        threads.append(threading.get_ident())
        return tx.user_by_id(alice.id)

    assert await quick_store.lookup(user) == alice
    assert threads == [threading.get_ident()]
    holds.release.set()
    await asyncio.gather(*holders)
    bob = await _new_user(quick_store, "bob")
    assert await quick_store.lookup(lambda tx: tx.user_by_id(bob.id)) == bob


async def test_the_event_loops_connection_never_waits_for_a_lock(store: MetadataStore) -> None:
    """Lookups run on a connection whose busy timeout is 0, also once SQLAlchemy has replaced
    its driver connection (after it found one broken); the pool's connections wait."""

    def busy_timeout(tx: Transaction) -> int:
        return int(tx.connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one())

    assert await store.lookup(busy_timeout) == 0
    assert await store.read(busy_timeout) == DATABASE_WAIT_SECONDS * 1000
    loop_connection = sqlite_of(store)._loop_connection
    assert loop_connection is not None
    loop_connection.invalidate()
    assert await store.lookup(busy_timeout) == 0


async def test_a_lookup_after_the_store_closed_opens_no_connection(
    quick_store_path: Path,
) -> None:
    """Once the store is closed, a lookup fails as a read does (StorageUnavailable after the
    wait) and leaves no connection open behind it."""
    store = await MetadataStore.open_sqlite(quick_store_path, wait_seconds=0.2)
    alice = await _new_user(store, "alice")
    assert await store.lookup(lambda tx: tx.user_by_id(alice.id)) == alice
    await store.close()
    with pytest.raises(StorageUnavailable):
        await store.lookup(lambda tx: tx.user_by_id(alice.id))
    assert sqlite_of(store)._loop_connection is None


async def test_a_lookup_that_meets_a_lock_runs_in_a_pool_thread(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The event loop never waits for SQLite's lock: a lookup refused one there (SQLITE_BUSY,
    rare in WAL mode) runs again in a pool thread, which may wait, and answers as if nothing
    happened; an error of another kind is raised as from the pool."""
    alice = await _new_user(store, "alice")
    loop_thread = threading.get_ident()
    run_on_driver = metadata_module._driver_rows
    refusal = sqlite3.SQLITE_BUSY

    def locked_on_the_loop(connection: Any, statement: Any, parameters: Any) -> list[Any]:
        if threading.get_ident() == loop_thread and statement.sql == "BEGIN":
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = refusal
            raise DBAPIError.instance(statement.sql, [], error, sqlite3.Error)
        return run_on_driver(connection, statement, parameters)

    threads: list[int] = []

    def user(tx: Transaction) -> UserRecord | None:
        threads.append(threading.get_ident())
        return tx.user_by_id(alice.id)

    monkeypatch.setattr(metadata_module, "_driver_rows", locked_on_the_loop)
    with caplog.at_level(logging.WARNING):
        assert await store.lookup(user) == alice
    assert len(threads) == 1
    assert threads[0] != loop_thread
    assert not caplog.records
    refusal = sqlite3.SQLITE_FULL
    with pytest.raises(StorageFull):
        await store.lookup(user)


_COUNT_TO_100_000 = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
    "SELECT count(*) FROM n"
)


_COUNT_TO_10_000 = _COUNT_TO_100_000.replace("100000", "10000")


def _counting_to_100_000(threads: list[int]) -> Callable[[Transaction], int]:
    """Work that counts to 100 000 in SQLite (well over the instructions between two looks at
    the clock), noting in ``threads`` the thread it runs in."""

    def count(tx: Transaction) -> int:
        threads.append(threading.get_ident())
        return int(tx.connection.exec_driver_sql(_COUNT_TO_100_000).scalar_one())

    return count


async def test_a_lookup_that_outlasts_its_time_on_the_loop_runs_in_a_pool_thread(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A lookup still running in SQLite after ``LOOP_READ_SECONDS`` is interrupted on the event
    loop's thread and runs again in a pool thread, answering in full with nothing logged; a
    lookup too short for SQLite to look at the clock stays on the loop whatever the time, and
    so does a long one within its time."""
    alice = await _new_user(store, "alice")
    loop_thread = threading.get_ident()
    threads: list[int] = []

    count = _counting_to_100_000(threads)

    def user(tx: Transaction) -> UserRecord | None:
        threads.append(threading.get_ident())
        return tx.user_by_id(alice.id)

    monkeypatch.setattr(metadata_module, "LOOP_READ_SECONDS", 0.0)
    with caplog.at_level(logging.WARNING):
        assert await store.lookup(count) == 100_000
    assert not caplog.records
    assert len(threads) == 2
    assert threads[0] == loop_thread
    assert threads[1] != loop_thread
    threads.clear()
    assert await store.lookup(user) == alice
    assert threads == [loop_thread]
    threads.clear()
    monkeypatch.setattr(metadata_module, "LOOP_READ_SECONDS", 60.0)
    assert await store.lookup(count) == 100_000
    assert threads == [loop_thread]


async def test_a_key_whose_lookup_overran_is_looked_up_in_a_pool_thread_for_a_while(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a lookup given a key overran its time on the event loop's thread, that key's
    lookups run in a pool thread straight away, not to waste the loop's time on every call,
    until ``OVERRAN_LOOKUP_SECONDS`` passed; other keys still run on the loop."""
    loop_thread = threading.get_ident()
    threads: list[int] = []

    count = _counting_to_100_000(threads)
    monkeypatch.setattr(metadata_module, "LOOP_READ_SECONDS", 0.0)
    assert await store.lookup(count, key="alice's models") == 100_000
    assert len(threads) == 2
    assert threads[0] == loop_thread
    monkeypatch.setattr(metadata_module, "LOOP_READ_SECONDS", 60.0)
    threads.clear()
    assert await store.lookup(count, key="alice's models") == 100_000
    assert len(threads) == 1
    assert threads[0] != loop_thread
    threads.clear()
    assert await store.lookup(count, key="bob's models") == 100_000
    assert threads == [loop_thread]
    monkeypatch.setattr(metadata_module, "LOOP_READ_SECONDS", 0.0)
    monkeypatch.setattr(metadata_module, "OVERRAN_LOOKUP_SECONDS", 0.0)
    threads.clear()
    assert await store.lookup(count, key="carol's models") == 100_000
    assert await store.lookup(count, key="carol's models") == 100_000
    assert threads[0] == threads[2] == loop_thread


async def test_a_lookup_that_overran_once_only_is_not_sent_to_the_pool_again(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup that overran on the event loop's thread but ran quickly in the pool (a one-off:
    a statement compiled at its first use, a cold page) leaves its key's next lookups on the
    loop."""
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def slow_on_the_loop_only(tx: Transaction) -> int:
        threads.append(threading.get_ident())
        on_loop = threading.get_ident() == loop_thread
        statement = _COUNT_TO_100_000.replace("100000", "1000000000") if on_loop else "SELECT 1"
        return int(tx.connection.exec_driver_sql(statement).scalar_one())

    monkeypatch.setattr(metadata_module, "LOOP_READ_SECONDS", 0.2)
    assert await store.lookup(slow_on_the_loop_only, key="alice's models") == 1
    assert await store.lookup(slow_on_the_loop_only, key="alice's models") == 1
    assert threads[0] == threads[2] == loop_thread
    assert threads[1] != loop_thread


async def test_time_a_lookup_waits_on_the_loop_is_not_held_against_it(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only CPU time counts against a lookup's time on the event loop's thread: a cheap lookup
    whose thread waited (here in a SQL function; on a busy machine for a core or the GIL)
    stays on the loop; one that spends its time working does not."""
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def waits_then_counts(tx: Transaction) -> int:
        threads.append(threading.get_ident())
        driver = cast(sqlite3.Connection, tx.connection.connection.driver_connection)
        driver.create_function("wait", 1, time.sleep)
        tx.connection.exec_driver_sql("SELECT wait(0.2)")
        return int(tx.connection.exec_driver_sql(_COUNT_TO_10_000).scalar_one())

    monkeypatch.setattr(metadata_module, "LOOP_READ_SECONDS", 0.1)
    assert await store.lookup(waits_then_counts, key="alice's models") == 10_000
    assert threads == [loop_thread]
    threads.clear()
    monkeypatch.setattr(metadata_module, "LOOP_READ_SECONDS", 0.0)
    assert await store.lookup(waits_then_counts, key="bob's models") == 10_000
    assert threads[0] == loop_thread
    assert threads[1] != loop_thread


async def _cancel_at_every_point(
    rounds: int, start_calls: Callable[[int], list[asyncio.Task[Any]]]
) -> None:
    """Starts each round's calls and cancels each at a different point of its call, twice, as
    a deadline and a reset do; then waits for all of them to end."""
    for round_number in range(rounds):
        calls = start_calls(round_number)
        for step, task in enumerate(calls):
            for _ in range(step % 7 + round_number % 3):
                await asyncio.sleep(0)  # let it reach a different point of its call
            task.cancel()
            await asyncio.sleep(0)
            task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_callers_get_connections_in_the_order_they_asked(
    store_of_settings: MetadataStore,
) -> None:
    """Under a flood of back-to-back calls, a caller waiting for a PostgreSQL connection is
    served before the callers that asked after it (give or take the calls starting beside it).
    A pool that hands a freed connection to whoever asks next lets the flood overtake a waiter
    again and again, until it fails for want of a connection while the others are served.
    (SQLite's pool threads take transactions from one queue, in order; there the GIL decides
    which thread runs first, so the order of their starts shows nothing of the wait.)"""
    store = store_of_settings
    size = store.pool_usage().size
    asked = itertools.count()
    started: list[int] = []

    def start(number: int, _tx: Transaction) -> None:
        started.append(number)

    async def call_back_to_back(calls: int) -> None:
        for _ in range(calls):
            await store.read(functools.partial(start, next(asked)))

    await asyncio.gather(*(call_back_to_back(25) for _ in range(4 * size)))
    assert sorted(started) == list(range(100 * size))
    overtaken_by = [
        sum(1 for later in started[:position] if later > number)
        for position, number in enumerate(started)
    ]
    assert max(overtaken_by) < 2 * size


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_cancelled_postgres_calls_leave_the_whole_pool_usable(
    store_of_settings: MetadataStore, settings: Settings
) -> None:
    """Calls cancelled while waiting for their turn, while connecting and while running, twice
    each as a deadline and a reset do, leave every connection free: the pool's size of
    transactions then run at once, none kept waiting."""
    store = store_of_settings
    size = store.pool_usage().size

    def read(tx: Transaction) -> None:
        tx.connection.exec_driver_sql("SELECT pg_sleep(0.001)")

    await _cancel_at_every_point(
        10, lambda _round: [asyncio.create_task(store.read(read)) for _ in range(3 * size)]
    )
    assert store.pool_usage() == PoolUsage(size, 0, 0)
    async with blocked_transactions(settings) as blocked:
        running = [asyncio.create_task(store.read(blocked)) for _ in range(size)]
        assert await poll_until(lambda: store.pool_usage() == PoolUsage(size, size, 0))
    await asyncio.gather(*running)


async def test_a_started_transaction_ends_before_its_caller_sees_the_cancellation(
    store: MetadataStore, holds: Holds
) -> None:
    """A caller cancelled while its write runs stays until the write has ended (committed,
    nothing half-way), then raises the cancellation."""
    holding = asyncio.Event()
    task = asyncio.create_task(
        store.write(holds.holding(holding, lambda tx: tx.insert_user("alice", HASH)))
    )
    await holding.wait()
    task.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()
    holds.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.read(lambda tx: tx.credentials("alice")) is not None


async def test_a_caller_cancelled_as_its_transaction_ends_still_returns(
    store: MetadataStore, holds: Holds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller cancelled after its transaction's result was handed back, but before it was
    read, raises the cancellation at once instead of waiting for an end that already came."""
    delivered = threading.Event()
    deliver = metadata_module._Step.deliver

    def deliver_and_tell(step: Any, result: Any, error: BaseException | None) -> None:
        deliver(step, result, error)
        delivered.set()

    monkeypatch.setattr(metadata_module._Step, "deliver", deliver_and_tell)
    holding = asyncio.Event()
    task = asyncio.create_task(store.read(holds.holding(holding, _nothing)))
    await holding.wait()
    holds.release.set()
    assert delivered.wait(timeout=30)  # the loop has the result queued, not yet run
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=30)
    assert done, "the cancelled caller never returned"
    assert task.cancelled()


async def test_a_transaction_cancelled_while_waiting_for_a_connection_never_runs(
    store: MetadataStore, holds: Holds
) -> None:
    """With every connection busy, a queued write whose caller is cancelled leaves at once and
    never runs."""
    holding = [asyncio.Event() for _ in range(SQLITE_POOL_SIZE)]
    holders = [
        asyncio.create_task(store.read(holds.holding(entered, _nothing))) for entered in holding
    ]
    for entered in holding:
        await entered.wait()
    queued = asyncio.create_task(_new_user(store, "alice"))
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    holds.release.set()
    await asyncio.gather(*holders)
    assert await store.read(lambda tx: tx.credentials("alice")) is None
    await _new_user(store, "alice")


async def test_cancelled_calls_release_their_connections(
    store: MetadataStore, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Reads and writes cancelled at every point, twice each as a deadline and a reset do, leave
    no connection checked out, the descriptors bounded by the pool, and no task destroyed
    pending."""
    alice = await _new_user(store, "alice")

    def create(tx: Transaction) -> FolderRecord:
        folder = tx.insert_folder(alice, "vision", "")
        for number in range(200):
            tx.insert_model(folder, alice, f"model {number}", "x" * 200)
        return folder

    def read_thrice(tx: Transaction) -> None:
        for _ in range(3):
            tx.models_for(alice.id, None, None, 200)

    folder = await store.write(create)

    async def call(number: int) -> None:
        if number % 4 == 0:
            await store.write(lambda tx: tx.insert_model(folder, alice, f"new {number}", ""))
        await store.read(read_thrice)

    await _cancel_at_every_point(
        15, lambda number: [asyncio.create_task(call(number * 100 + i)) for i in range(40)]
    )
    pool = sqlite_of(store)._engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() <= SQLITE_POOL_SIZE  # one per pool thread, none lost
    gc.collect()
    assert database_descriptors(db_path) <= 3 * SQLITE_POOL_SIZE
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]
    await _new_user(store, "bob")
    assert await _user_count(store) == 2
    await store.close()
    assert pool.checkedout() == 0
    assert database_descriptors(db_path) == 0
