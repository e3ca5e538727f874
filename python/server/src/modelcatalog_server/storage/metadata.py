"""The metadata store: SQLAlchemy 2 Core over SQLite (embedded default) or PostgreSQL.

Work happens in transactions: ``await store.read(work)`` for consistent reads and
``await store.write(work)`` for changes, where ``work`` is a plain function of a
``Transaction`` whose methods are the only SQL in the server. A transaction runs whole, in one
step: begin, every statement ``work`` makes, commit (rollback when it raises). A call therefore
costs one trip off the event loop however many statements it makes, and the rules it applies
between statements (``domain/``) stay in ordinary functions. Authorization filters are part of
the queries (joins on ``folder_members``), so lists never need post-filtering. The statements
of the frequent calls are built once with bound parameters, so each is compiled once and then
served from SQLAlchemy's compiled cache.

SQLite specifics live in this module: the standard ``sqlite3`` driver in a fixed pool of
``SQLITE_POOL_SIZE`` threads, each keeping one connection of the engine's pool for itself
(``_configure_sqlite``: WAL, ``synchronous=FULL``, foreign keys on; the driver's own
transaction handling off, ``BEGIN`` sent by ``_transaction``), and one writer at a time (an
in-process lock plus ``BEGIN IMMEDIATE``), so concurrent writes queue instead of failing with
"database is locked".
The ``work`` functions use only portable Core, so a PostgreSQL backend runs the same ones
through ``AsyncConnection.run_sync`` on an asyncpg engine, with no thread of its own.

Every wait is bounded by ``DATABASE_WAIT_SECONDS`` (a free pooled connection, this server's
turn to write, SQLite's write lock held by another process); past it a call fails with
``StorageUnavailable``, and a full disk with ``StorageFull`` (``faults``).

Cancellation (a client's deadline, a dropped connection) never interrupts a transaction
half-way: one that has started runs to its end in its thread and the caller's cancellation is
raised after it; one still waiting for a connection never starts. Every connection is back in
the pool when its transaction ends, whoever waited for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import operator
import queue
import sqlite3
import string
import threading
import time
import uuid
from collections.abc import Callable, Collection, Hashable, Sequence
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, NamedTuple, NoReturn, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    and_,
    bindparam,
    case,
    create_engine,
    event,
    exists,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Dialect, Engine, Row
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import ColumnElement

from ..recent import Recent
from ..tasks import run_to_end
from .faults import StorageFault, StorageFull, StorageUnavailable
from .locations import database_url, sqlite_path
from .migrations import upgrade
from .records import (
    ROLE_OF_STORED_VALUE,
    AccessTokenHolder,
    AccessTokenRecord,
    AliasRecord,
    AuditEntry,
    AuditEventRecord,
    AuditQuery,
    Credentials,
    FailureCounts,
    FeedKind,
    FolderRecord,
    LabelTest,
    MemberRecord,
    ModelQuery,
    ModelRecord,
    Role,
    TokenStanding,
    UploadSessionRecord,
    UserRecord,
    VersionQuery,
    VersionRecord,
)
from .schema import (
    access_tokens,
    audit_events,
    blob_deletions,
    event_audience,
    event_feed,
    folder_members,
    folders,
    model_aliases,
    model_versions,
    models,
    request_results,
    revoked_tokens,
    sign_in_failures,
    upload_sessions,
    users,
)

#: The longest a database call waits for a pooled connection, for its turn to write, or for
#: SQLite's write lock held by another process; then it fails with StorageUnavailable.
DATABASE_WAIT_SECONDS = 5.0
#: SQLite connections kept open, and threads running transactions on them: a fixed number;
#: above it transactions wait for a free one instead of opening one per call. (One more
#: connection serves ``MetadataStore.lookup`` on the event loop's thread.)
SQLITE_POOL_SIZE = 8

#: SQLite result codes (primary: the low byte of extended codes) that mean "try again later":
#: a lock held too long. Other failures (I/O errors, a read-only file) are server faults.
_SQLITE_UNAVAILABLE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
#: How much CPU time a lookup may spend on the event loop's thread before it is interrupted and
#: run in a pool thread instead (``MetadataStore.lookup``), and how many SQLite VM instructions
#: run between two looks at the clock: a row by its key takes tens, a page of the common model
#: list about 10 000, so a quick read looks at it once at most. CPU time, not wall time: on a
#: busy machine the thread also waits for a core or for the GIL, which sent cheap lists to
#: the pool, where a hand-over costs more than the read.
LOOP_READ_SECONDS = 0.005
_LOOP_READ_CHECK_INSTRUCTIONS = 10_000
#: How long the lookups of a key (``MetadataStore.lookup``) that overran their time on the event
#: loop's thread then run in a pool thread straight away, and how many such keys are kept.
OVERRAN_LOOKUP_SECONDS = 60.0
_OVERRAN_LOOKUPS_KEPT = 4096
#: What a lookup refused on the event loop's thread runs again in a pool thread: a lock
#: (SQLITE_BUSY, SQLITE_LOCKED) or its time there ran out (SQLITE_INTERRUPT).
_RUN_IN_POOL_INSTEAD = _SQLITE_UNAVAILABLE | {sqlite3.SQLITE_INTERRUPT}

#: PostgreSQL connections each server process keeps: a bound on what N processes ask of the
#: database's ``max_connections``.
POSTGRES_POOL_SIZE = 10
#: SQLSTATEs of conflicts that running the transaction again resolves (serialization failure,
#: deadlock), and how often a write is tried.
_POSTGRES_RETRY = frozenset({"40001", "40P01"})
_WRITE_ATTEMPTS = 3
#: SQLSTATE classes and codes that mean "try again later": connection exceptions, insufficient
#: resources, operator intervention (shutdown, recovery), lock waits past ``lock_timeout``.
_POSTGRES_UNAVAILABLE_CLASSES = ("08", "53", "57")
_POSTGRES_UNAVAILABLE = frozenset({"55P03"})

T = TypeVar("T")

#: The folders the current call may see, None for all of its caller's: set once per call for
#: an access token limited to listed folders (``limit_visible_folders``). Every transaction the
#: call runs limits the queries that decide what a caller sees (``_FOLDERS_OF_CALLER``,
#: ``_MODELS_OF_CALLER``) to them, so no rule can forget the limit.
_visible_folders: ContextVar[tuple[str, ...] | None] = ContextVar(
    "modelcatalog_visible_folders", default=None
)

log = logging.getLogger("modelcatalog_server.storage")

#: A position in a list ordered by creation: (created_us, id) of the last item returned.
Cursor = tuple[int, str]
#: A position in a list in any order: (the order's key, id) of the last item returned.
Position = tuple[Any, str]
#: The unfiltered lists, in their default orders.
EVERY_MODEL = ModelQuery()
EVERY_VERSION = VersionQuery()


@dataclass(frozen=True)
class PoolUsage:
    """What the store's pool holds now: read for the metrics, by another thread too."""

    #: Connections (SQLite: threads, each with its connection) the pool keeps at most.
    size: int
    #: Of those, how many run a transaction (PostgreSQL: connections checked out).
    in_use: int
    #: Transactions waiting for one to come free.
    waiting: int


def limit_visible_folders(folder_ids: tuple[str, ...] | None) -> None:
    """Limits what the current call (this context) sees to ``folder_ids``; None for no limit."""
    _visible_folders.set(folder_ids)


class UniqueViolation(Exception):
    """An insert collided with a unique name."""


def now_us() -> int:
    """Microseconds since the epoch: the resolution of every stored time."""
    return time.time_ns() // 1000


def new_id() -> str:
    """A new random resource id."""
    return str(uuid.uuid4())


class MetadataStore:
    """Runs read and write transactions on the database a URL names (``open``)."""

    def __init__(self, transactions: _SqliteTransactions | _PostgresTransactions) -> None:
        self._transactions = transactions

    @classmethod
    async def open(cls, url: str, *, wait_seconds: float = DATABASE_WAIT_SECONDS) -> MetadataStore:
        """Opens the database ``url`` names (``sqlite:///PATH`` or
        ``postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE``) and migrates it; ValueError
        for a URL of another kind."""
        parsed = database_url(url)
        path = sqlite_path(parsed)
        if path is not None:
            return await cls.open_sqlite(path, wait_seconds=wait_seconds)
        engine = create_async_engine(
            parsed,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=0,
            pool_timeout=wait_seconds,
            pool_pre_ping=True,
            connect_args={
                "timeout": wait_seconds,
                # A row lock held longer than the wait limit fails the call, not the server.
                "server_settings": {"lock_timeout": f"{int(wait_seconds * 1000)}"},
            },
        )
        return await cls._migrated(_PostgresTransactions(engine, wait_seconds))

    @classmethod
    async def open_sqlite(
        cls, path: Path, *, wait_seconds: float = DATABASE_WAIT_SECONDS
    ) -> MetadataStore:
        """Opens (creating and migrating as needed) the SQLite database at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            URL.create("sqlite+pysqlite", database=str(path)),
            pool_size=SQLITE_POOL_SIZE + 1,  # one for the event loop's lookups
            max_overflow=0,
            pool_timeout=wait_seconds,
        )
        _configure_sqlite(engine, busy_timeout_ms=int(wait_seconds * 1000))
        return await cls._migrated(_SqliteTransactions(engine, wait_seconds))

    @classmethod
    async def _migrated(
        cls, transactions: _SqliteTransactions | _PostgresTransactions
    ) -> MetadataStore:
        store = cls(transactions)
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Lets running transactions end, then closes every pooled connection."""
        await self._transactions.close()

    def pool_usage(self) -> PoolUsage:
        """How busy the pool is now."""
        return self._transactions.pool_usage()

    async def migrate(self) -> None:
        """Creates a new schema or brings an existing one to the newest revision (once, under
        a lock, whichever process gets there first; see ``migrations``)."""
        await self.write(lambda tx: upgrade(tx.connection))

    async def ping(self) -> None:
        """Raises when the database cannot answer a trivial query."""
        await self.read(lambda tx: tx.connection.execute(_PING).scalar_one())

    async def read(self, work: Callable[[Transaction], T]) -> T:
        """What ``work`` returns, run in a transaction for reads only."""
        return await self._transactions.run(_as_caller(work), write=False)

    async def lookup(self, work: Callable[[Transaction], T], *, key: Hashable = None) -> T:
        """What ``work`` returns, run as ``read`` runs it; for work that reads little: a few
        rows by their keys (a model, a folder, an account), as most calls start, or a page of
        the unfiltered model list, which reads a short run of an index per folder.

        SQLite runs it on the event loop's thread, on a connection of its own: such a read
        costs it tens of microseconds (a page of 100 models, about 1 ms), less than handing it to a
        pool thread and back, where the thread and the event loop then take turns at the GIL
        (``GetModel`` answered 1.3 times the calls a second, ``ListModels`` 1.05 to 1.14
        times). That connection never waits for a lock: a read that meets one (rare in WAL
        mode: a recovery, a checkpoint that restarts the log) runs in a pool thread instead,
        which waits. Nor does a long statement hold the event loop: one still running after
        the lookup spent ``LOOP_READ_SECONDS`` of CPU time (a page of a caller who sees
        thousands of folders), which SQLite looks at every 10 000 instructions, is interrupted
        there and the read run again in a pool thread. When it cost that much there too,
        lookups given the same ``key`` (a caller's list, say) then go to a pool thread straight
        away for ``OVERRAN_LOOKUP_SECONDS``, not to waste the event loop's time again.
        PostgreSQL runs it as ``read``.
        """
        return await self._transactions.lookup(_as_caller(work), key)

    async def write(self, work: Callable[[Transaction], T]) -> T:
        """What ``work`` returns, run in a transaction that may write: committed when ``work``
        returns, rolled back when it raises."""
        return await self._transactions.run(_as_caller(work), write=True)


def _as_caller(work: Callable[[Transaction], T]) -> Callable[[Transaction], T]:
    """``work`` run as the current call: with its context variables (who is calling, from
    where: see domain/audit.py) in whichever pool thread or greenlet it runs, on a transaction
    that sees only the call's visible folders when they are limited."""
    context = copy_context()
    visible = _visible_folders.get()
    if visible is None:
        return lambda tx: context.run(work, tx)
    return lambda tx: context.run(work, Transaction(tx.connection, visible))


class _SqliteTransactions:
    """SQLite: each transaction runs whole in one of a fixed set of threads, each keeping its
    connection; one writer at a time in this process (a lock) and in all (``BEGIN
    IMMEDIATE``)."""

    def __init__(self, engine: Engine, wait_seconds: float) -> None:
        self._engine = engine
        self._write_lock = asyncio.Lock()
        self._wait_seconds = wait_seconds
        self._thread_state = threading.local()
        self._threads = _Threads(SQLITE_POOL_SIZE, on_exit=self._close_thread_connection)
        #: The event loop's connection for ``lookup``, taken from the engine at the first one,
        #: and the driver connection under it that was told never to wait for a lock.
        self._loop_connection: Connection | None = None
        self._never_waiting: object = None
        #: When the lookup running on the event loop's thread must give way (perf_counter).
        self._loop_read_deadline = math.inf
        #: The keys of lookups that overran their time on the event loop's thread lately.
        self._overran: Recent[Hashable, bool] = Recent(_OVERRAN_LOOKUPS_KEPT)
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        if self._loop_connection is not None:
            self._loop_connection.close()
            self._loop_connection = None
        await asyncio.to_thread(self._shut_down)

    def _shut_down(self) -> None:
        self._threads.stop()
        self._engine.dispose()

    def pool_usage(self) -> PoolUsage:
        return PoolUsage(SQLITE_POOL_SIZE, self._threads.busy(), self._threads.queued())

    async def run(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        if not write:
            return await self._run(work, immediate=False)
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._write_lock.acquire()
        except TimeoutError:
            raise _unavailable(
                f"no turn to write came within {self._wait_seconds:g} s: the database is busy"
            ) from None
        try:
            return await self._run(work, immediate=True)
        finally:
            self._write_lock.release()

    async def lookup(self, work: Callable[[Transaction], T], key: Hashable) -> T:
        overran = False
        if not self._closed and (key is None or not self._overran.get(key, time.monotonic())):
            try:
                self._loop_read_deadline = time.thread_time() + LOOP_READ_SECONDS
                return _in_transaction(self._connection_on_loop(), work, immediate=False)
            except DBAPIError as error:
                code = _sqlite_code(error)
                if code not in _RUN_IN_POOL_INSTEAD:
                    _raise_as_fault(error)
                overran = code == sqlite3.SQLITE_INTERRUPT and key is not None
            finally:
                self._loop_read_deadline = math.inf
        timed = _CpuTimed(work)
        result = await self._run(timed, immediate=False)
        if overran and timed.seconds > LOOP_READ_SECONDS:
            # Slow in the pool as well: no one-off (a statement compiled at its first use).
            self._overran.put(key, True, time.monotonic() + OVERRAN_LOOKUP_SECONDS)
        return result

    def _connection_on_loop(self) -> Connection:
        """The event loop's connection, which never waits for a lock (busy timeout 0) and
        interrupts a statement past the lookup's deadline, also once SQLAlchemy has replaced a
        driver connection it found broken."""
        connection = self._loop_connection
        if connection is None:
            connection = self._loop_connection = self._engine.connect()
        driver = connection.connection.driver_connection
        if driver is not self._never_waiting:
            _driver_rows(connection, _NEVER_WAIT, {})
            cast(sqlite3.Connection, driver).set_progress_handler(
                self._loop_read_overran, _LOOP_READ_CHECK_INSTRUCTIONS
            )
            self._never_waiting = driver
        return connection

    def _loop_read_overran(self) -> bool:
        """SQLite's progress handler on the event loop's connection: true interrupts the
        statement (SQLITE_INTERRUPT)."""
        return time.thread_time() > self._loop_read_deadline

    async def _run(self, work: Callable[[Transaction], T], *, immediate: bool) -> T:
        loop = asyncio.get_running_loop()
        step = _Step(functools.partial(self._transaction, work, immediate), loop)
        self._threads.submit(step)
        return await step.outcome_within(self._wait_seconds)

    def _transaction(self, work: Callable[[Transaction], T], immediate: bool) -> T:
        """``work`` in a transaction on this pool thread's connection: committed when it
        returns, rolled back when it raises, so the connection is always free afterwards (one
        whose driver connection broke reconnects at its next use)."""
        try:
            return _in_transaction(self._thread_connection(), work, immediate)
        except DBAPIError as error:
            _raise_as_fault(error)

    def _thread_connection(self) -> Connection:
        """The calling pool thread's connection, taken from the engine's pool at first use."""
        connection: Connection | None = getattr(self._thread_state, "connection", None)
        if connection is None:
            connection = self._engine.connect()
            self._thread_state.connection = connection
        return connection

    def _close_thread_connection(self) -> None:
        """Gives the calling pool thread's connection back to the engine's pool."""
        connection: Connection | None = getattr(self._thread_state, "connection", None)
        self._thread_state.connection = None
        if connection is not None:
            connection.close()


def _in_transaction(connection: Connection, work: Callable[[Transaction], T], immediate: bool) -> T:
    """``work`` in a SQLite transaction on ``connection`` (``BEGIN IMMEDIATE`` if
    ``immediate``): committed when it returns, rolled back when it raises."""
    with connection.begin():
        _driver_rows(connection, _BEGIN_IMMEDIATE if immediate else _BEGIN, {})
        return work(Transaction(connection))


class _CpuTimed(Generic[T]):
    """``work`` that notes the CPU time it took on the thread that ran it."""

    def __init__(self, work: Callable[[Transaction], T]) -> None:
        self._work = work
        self.seconds = 0.0

    def __call__(self, tx: Transaction) -> T:
        started = time.thread_time()
        try:
            return self._work(tx)
        finally:
            self.seconds = time.thread_time() - started


class _PostgresTransactions:
    """PostgreSQL through asyncpg: the same ``work`` functions, run by
    ``AsyncConnection.run_sync`` on the event loop (no thread). Reads see one snapshot
    (REPEATABLE READ, READ ONLY); writes run at READ COMMITTED with the row locks the rules take
    (``Transaction.lock_folder``, the version counter's UPDATE). A write that loses a
    serialization conflict or a deadlock is run again, up to ``_WRITE_ATTEMPTS`` times."""

    def __init__(self, engine: AsyncEngine, wait_seconds: float) -> None:
        self._engine = engine
        self._wait_seconds = wait_seconds
        self._waiting = 0
        #: Turns at the pool, handed out first come, first served (see ``_once``).
        self._turns = asyncio.Semaphore(POSTGRES_POOL_SIZE)

    async def close(self) -> None:
        await self._engine.dispose()

    def pool_usage(self) -> PoolUsage:
        pool = cast(QueuePool, self._engine.pool)  # the engine's default, sized in ``open``
        return PoolUsage(pool.size(), pool.checkedout(), self._waiting)

    async def lookup(self, work: Callable[[Transaction], T], key: Hashable) -> T:
        return await self.run(work, write=False)

    async def run(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        attempt = 1
        while True:
            try:
                return await self._once(work, write=write)
            except DBAPIError as error:
                if _is_conflict(error) and attempt < _WRITE_ATTEMPTS:
                    attempt += 1
                    continue
                fault = _postgres_fault(error)
                if fault is None:
                    raise
                raise fault from error
            except OSError as error:
                raise _unavailable(f"the database cannot be reached: {error}") from error

    async def _once(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        """One attempt: a turn and then a connection are awaited (cancellable: a call cancelled
        meanwhile never starts), then the transaction runs to its end even if the caller is
        cancelled, and gives its turn back once its connection is back in the pool.

        The turns make the wait first come, first served. The pool alone gives a connection
        that comes free to whoever asks first, not to the caller it woke for: under a flood of
        calls, newcomers kept overtaking that caller until its wait limit ran out."""
        self._waiting += 1
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._turns.acquire()
                try:
                    connection = await self._engine.connect()
                except BaseException:
                    self._turns.release()
                    raise
        except TimeoutError:
            raise _unavailable("no database connection came free within the wait limit") from None
        finally:
            self._waiting -= 1
        return await run_to_end(self._transaction(connection, work, write))

    async def _transaction(
        self, connection: AsyncConnection, work: Callable[[Transaction], T], write: bool
    ) -> T:
        try:
            if not write:
                await connection.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            async with connection.begin():
                return await connection.run_sync(lambda synchronous: work(Transaction(synchronous)))
        finally:
            try:
                await connection.close()
            finally:
                self._turns.release()


class _Step(Generic[T]):
    """One transaction handed to the pool threads, and its caller's side of it.

    Exactly one of the two sides claims the step: a pool thread, which then runs it to its
    end, or the caller, which gives it up before it started (its wait ran out, or it was
    cancelled). The outcome comes back to the event loop in one callback.
    """

    def __init__(self, run: Callable[[], T], loop: asyncio.AbstractEventLoop) -> None:
        self.run = run
        self._loop = loop
        self._claim = threading.Lock()
        self._outcome: asyncio.Future[T] = loop.create_future()
        self._ended = False

    def claim(self) -> bool:
        """Whether this side may have the step (the other side then never will)."""
        return self._claim.acquire(blocking=False)

    def deliver(self, result: T | None, error: BaseException | None) -> None:
        """Hands what the step returned or raised to the event loop (from its thread)."""
        with contextlib.suppress(RuntimeError):  # a closed event loop: nobody waits any more
            self._loop.call_soon_threadsafe(self._settle, result, error)

    def _settle(self, result: T | None, error: BaseException | None) -> None:
        self._ended = True
        if self._outcome.done():
            return  # its caller was cancelled meanwhile
        if error is not None:
            self._outcome.set_exception(error)
        else:
            self._outcome.set_result(result)  # type: ignore[arg-type]

    def _expire(self) -> None:
        if self.claim():
            self._outcome.set_exception(
                _unavailable("no database connection came free within the wait limit")
            )

    async def outcome_within(self, wait_seconds: float) -> T:
        """What the step returned once it has run to its end; ``StorageUnavailable`` if no
        thread started it within ``wait_seconds``. A caller cancelled before the step started
        gives it up at once; one cancelled later gets the cancellation once the step ended.
        """
        timer = self._loop.call_later(wait_seconds, self._expire)
        try:
            return await self._outcome
        except asyncio.CancelledError:
            if self._outcome.done() and not self._outcome.cancelled():
                self._outcome.exception()  # it ended; its error is seen, the caller gets this
            elif self.claim():
                raise  # never started, and now never will
            else:
                await self._end_of_started_step()
            raise
        finally:
            timer.cancel()

    async def _end_of_started_step(self) -> None:
        """Waits, through any further cancellation, until the running step has ended."""
        if self._ended:
            return
        self._outcome = self._loop.create_future()
        while not self._outcome.done():
            try:
                await asyncio.wait((self._outcome,))
            except asyncio.CancelledError:
                continue
        if not self._outcome.cancelled():
            self._outcome.exception()


class _Threads:
    """The fixed pool threads that run transactions, one at a time each; ``on_exit`` runs in
    each thread as it ends."""

    def __init__(self, count: int, *, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._steps: queue.SimpleQueue[_Step[Any] | None] = queue.SimpleQueue()
        #: Whether each thread runs a step: each writes only its own entry, so no lock.
        self._running = [False] * count
        self._threads = [
            threading.Thread(
                target=self._serve, args=(number,), name=f"metadata-{number}", daemon=True
            )
            for number in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, step: _Step[Any]) -> None:
        """Queues ``step`` for the next free thread."""
        self._steps.put(step)

    def busy(self) -> int:
        """Threads running a step now."""
        return sum(self._running)

    def queued(self) -> int:
        """Steps waiting for a thread (those their callers gave up included, until skipped)."""
        return self._steps.qsize()

    def stop(self) -> None:
        """Lets the threads finish their steps, then ends them (blocking)."""
        for _ in self._threads:
            self._steps.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self, number: int) -> None:
        try:
            while (step := self._steps.get()) is not None:
                if not step.claim():
                    continue  # given up by its caller before it started
                self._running[number] = True
                result, error = None, None
                try:
                    result = step.run()
                except BaseException as caught:  # every outcome goes back to the caller
                    error = caught
                # Free before its caller resumes, which then sees the pool as it is.
                self._running[number] = False
                step.deliver(result, error)
        finally:
            self._on_exit()


def _sqlite_code(error: DBAPIError) -> int | None:
    """The primary SQLite result code of a SQLite driver error."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _raise_as_fault(error: DBAPIError) -> NoReturn:
    """Raises the storage fault a SQLite driver error stands for, or the error itself."""
    fault = _sqlite_fault(error)
    if fault is None:
        raise error
    raise fault from error


def _sqlite_fault(error: DBAPIError) -> StorageFault | None:
    """The storage fault a SQLite driver error stands for, if it is one."""
    primary = _sqlite_code(error)
    if primary == sqlite3.SQLITE_FULL:
        log.warning("storage is full: the database cannot grow: %s", error.orig)
        return StorageFull(f"the database cannot grow: {error.orig}")
    if primary in _SQLITE_UNAVAILABLE:
        return _unavailable(f"the database stayed locked: {error.orig}")
    return None


def _is_conflict(error: DBAPIError) -> bool:
    """Whether another attempt of the transaction resolves ``error`` (PostgreSQL)."""
    return getattr(error.orig, "sqlstate", None) in _POSTGRES_RETRY


def _postgres_fault(error: DBAPIError) -> StorageFault | None:
    """The storage fault a PostgreSQL error stands for, or None for an error of the server's
    own."""
    if error.connection_invalidated:
        return _unavailable(f"the database connection broke: {error.orig}")
    state = getattr(error.orig, "sqlstate", None) or ""
    if state in _POSTGRES_RETRY:
        return _unavailable(f"the database kept refusing a transaction: {error.orig}")
    if state == "53100":  # disk_full
        log.warning("storage is full: the database cannot grow: %s", error.orig)
        return StorageFull(f"the database cannot grow: {error.orig}")
    if state.startswith(_POSTGRES_UNAVAILABLE_CLASSES) or state in _POSTGRES_UNAVAILABLE:
        return _unavailable(f"the database is unavailable: {error.orig}")
    if isinstance(error, InterfaceError):
        return _unavailable(f"the database connection failed: {error.orig}")
    return None


def _unavailable(message: str) -> StorageUnavailable:
    log.warning("storage is unavailable: %s", message)
    return StorageUnavailable(message)


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver begins no transaction of its own: _transaction sends BEGIN. (No engine
        # "begin" listener does it: any engine event makes every statement dispatch events.)
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


# Statements of the frequent calls, built once: their parameters are bound at execution. Lookups
# read their row with Transaction._row, lists their pages with Transaction._page_rows.

_PING = select(1)
_creator = users.alias("creator")

_USER_BY_ID = select(users.c.id, users.c.username, users.c.created_us).where(
    users.c.id == bindparam("user_id"), users.c.deleted_us.is_(None)
)
_CREDENTIALS = select(
    users.c.id,
    users.c.username,
    users.c.created_us,
    users.c.password_hash,
    users.c.token_generation,
).where(users.c.username == bindparam("username"), users.c.deleted_us.is_(None))
_TOKEN_STANDING = select(
    users.c.token_generation,
    exists().where(revoked_tokens.c.token_id == bindparam("token_id")),
).where(users.c.id == bindparam("user_id"), users.c.deleted_us.is_(None))
_ACCESS_TOKEN = select(
    access_tokens.c.id,
    access_tokens.c.name,
    access_tokens.c.scope,
    access_tokens.c.folder_ids,
    access_tokens.c.created_us,
    access_tokens.c.expires_us,
    access_tokens.c.last_used_us,
)
_ACCESS_TOKEN_HOLDER = (
    _ACCESS_TOKEN.add_columns(users.c.id, users.c.username)
    .join(users, users.c.id == access_tokens.c.user_id)
    .where(
        access_tokens.c.secret_sha256 == bindparam("secret_sha256"),
        users.c.deleted_us.is_(None),
    )
)
#: AccessTokenScope.ACCESS_TOKEN_SCOPE_READ as stored; every other stored scope is read-write.
_SCOPE_READ = 1
_SCOPE_READ_WRITE = 2

_FOLDERS_OF_CALLER = (
    select(
        folders.c.id,
        folders.c.name,
        folders.c.description,
        _creator.c.username,
        folders.c.created_us,
        folder_members.c.role,
        folders.c.updated_us,
    )
    .join(
        folder_members,
        and_(
            folder_members.c.folder_id == folders.c.id,
            folder_members.c.user_id == bindparam("caller"),
        ),
    )
    .join(_creator, _creator.c.id == folders.c.creator_id)
)
_FOLDER_FOR = _FOLDERS_OF_CALLER.where(folders.c.id == bindparam("folder_id"))
_LOCK_FOLDER = select(folders.c.id).where(folders.c.id == bindparam("folder_id")).with_for_update()
_LOCK_BLOB = select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("key"), 0)))
_LOCK_MODEL = select(models.c.id).where(models.c.id == bindparam("model_id")).with_for_update()
_LOCK_FOLDER_MODELS = (
    select(models.c.id)
    .where(models.c.folder_id == bindparam("folder_id"))
    .order_by(models.c.id)
    .with_for_update()
)
_granter = users.alias("granter")
_MEMBERS = (
    select(
        users.c.id,
        users.c.username,
        folder_members.c.role,
        folder_members.c.updated_us,
        func.coalesce(_granter.c.username, ""),
    )
    .join(users, users.c.id == folder_members.c.user_id)
    .outerjoin(_granter, _granter.c.id == folder_members.c.granted_by)
)
_MEMBER = _MEMBERS.where(
    folder_members.c.folder_id == bindparam("folder_id"),
    folder_members.c.user_id == bindparam("user_id"),
)
_ROLE = select(folder_members.c.role).where(
    folder_members.c.folder_id == bindparam("folder_id"),
    folder_members.c.user_id == bindparam("user_id"),
)

#: The newest version a model has now (0 for none): what clients see as its latest version.
#: Not the next number's source: ``models.latest_version`` counts every number ever given, so a
#: deleted version's number is never given again.
_NEWEST_VERSION = (
    select(func.coalesce(func.max(model_versions.c.version), 0))
    .where(model_versions.c.model_id == models.c.id)
    .scalar_subquery()
)
_MODELS_OF_CALLER = (
    select(
        models.c.id,
        models.c.folder_id,
        models.c.name,
        models.c.description,
        _creator.c.username,
        models.c.created_us,
        _NEWEST_VERSION,
        folder_members.c.role,
        models.c.updated_us,
    )
    .join(
        folder_members,
        and_(
            folder_members.c.folder_id == models.c.folder_id,
            folder_members.c.user_id == bindparam("caller"),
        ),
    )
    .join(_creator, _creator.c.id == models.c.creator_id)
)
_MODEL_FOR = _MODELS_OF_CALLER.where(models.c.id == bindparam("model_id"))
#: The ids of the caller's models, from which a list page is chosen before anything is joined.
_MODEL_IDS_OF_CALLER = select(models.c.id).join(
    folder_members,
    and_(
        folder_members.c.folder_id == models.c.folder_id,
        folder_members.c.user_id == bindparam("caller"),
    ),
)

_VERSIONS = select(
    model_versions.c.model_id,
    model_versions.c.version,
    model_versions.c.file_name,
    model_versions.c.content_type,
    model_versions.c.size_bytes,
    model_versions.c.sha256,
    model_versions.c.description,
    model_versions.c.labels,
    _creator.c.username,
    model_versions.c.created_us,
    model_versions.c.updated_us,
).join(_creator, _creator.c.id == model_versions.c.creator_id)
_VERSION = _VERSIONS.where(
    model_versions.c.model_id == bindparam("model_id"),
    model_versions.c.version == bindparam("version"),
)

_updater = users.alias("updater")
_ALIASES = (
    select(
        model_aliases.c.model_id,
        model_aliases.c.name,
        model_aliases.c.version,
        _updater.c.username,
        model_aliases.c.updated_us,
    )
    .join(_updater, _updater.c.id == model_aliases.c.updater_id)
    .where(model_aliases.c.model_id == bindparam("model_id"))
)
_ALIAS = _ALIASES.where(model_aliases.c.name == bindparam("name"))


#: The condition that limits a caller's query to the folders bound as ``visible``.
_VISIBLE = folder_members.c.folder_id.in_(bindparam("visible", expanding=True))


@functools.lru_cache(maxsize=64)
def _limited_to_visible(query: Select[Any]) -> Select[Any]:
    """``query`` limited to the folders bound as ``visible``; built once per statement (the
    frequent ones are module constants or cached pages), so a folder-limited access token's
    calls cost what others' do."""
    return query.where(_VISIBLE)


_actor = users.alias("actor")
_INSERT_AUDIT_EVENT = audit_events.insert()
_NEXT_FEED_POSITION = (
    event_feed.update()
    .where(event_feed.c.id == 1)
    .values(position=event_feed.c.position + 1)
    .returning(event_feed.c.position)
)
_FEED_HEAD = select(event_feed.c.position, event_feed.c.pruned_through).where(event_feed.c.id == 1)
_AUDIT_EVENTS = select(
    audit_events.c.id,
    audit_events.c.occurred_us,
    audit_events.c.actor_id,
    _actor.c.username.label("actor_username"),
    audit_events.c.token_id,
    audit_events.c.token_name,
    audit_events.c.action,
    audit_events.c.outcome,
    audit_events.c.folder_id,
    audit_events.c.resource,
    audit_events.c.peer,
    audit_events.c.details,
    audit_events.c.feed_position,
    audit_events.c.feed_kind,
).outerjoin(_actor, _actor.c.id == audit_events.c.actor_id)


@functools.cache
def _feed_page(in_folder: bool, limited: bool) -> Select[Any]:
    """Feed events in (after, through] that the bound caller may see now, in feed order (only
    in the folders bound as ``visible`` when ``limited``: a folder-limited access token)."""
    position = audit_events.c.feed_position
    visible = or_(
        audit_events.c.folder_id.in_(
            select(folder_members.c.folder_id).where(
                folder_members.c.user_id == bindparam("caller")
            )
        ),
        exists().where(
            event_audience.c.feed_position == position,
            event_audience.c.user_id == bindparam("caller"),
        ),
    )
    query = _AUDIT_EVENTS.where(
        position > bindparam("after"), position <= bindparam("through"), visible
    )
    if in_folder:
        query = query.where(audit_events.c.folder_id == bindparam("folder_id"))
    if limited:
        query = query.where(audit_events.c.folder_id.in_(bindparam("visible", expanding=True)))
    return query.order_by(position).limit(bindparam("limit"))


def _after(created: Any, id_column: Any) -> ColumnElement[bool]:
    """Keyset condition: rows strictly after the bound (``after_us``, ``after_id``) position in
    (created, id) order."""
    # A row-value comparison, which both databases read as an index range.
    return tuple_(created, id_column) > tuple_(bindparam("after_us"), bindparam("after_id"))


@functools.cache
def _folders_page(after: bool) -> Select[Any]:
    query = _FOLDERS_OF_CALLER
    if after:
        query = query.where(_after(folders.c.created_us, folders.c.id))
    return query.order_by(folders.c.created_us, folders.c.id).limit(bindparam("limit"))


def _model_rows(page: Select[Any], order: Sequence[ColumnElement[Any]]) -> Select[Any]:
    """The whole rows of a page of model ids, in ``order`` (the page's own).

    The page is chosen from the models' ids and sort keys alone (the
    ``ix_models_folder_order`` index covers the common list), and only its rows are joined to
    their creator and newest version: sorting every visible model's whole row to keep a hundred
    made a list cost ten times more in a folder of 10 000 models.
    """
    chosen = page.order_by(*order).limit(bindparam("limit")).subquery("page")
    return _MODELS_OF_CALLER.join(chosen, chosen.c.id == models.c.id).order_by(*order)


@functools.lru_cache(maxsize=128)
def _as_one_json_row(page: Select[Any]) -> Select[Any]:
    """SQLite: ``page``'s rows as one JSON array of arrays, in the page's order (SQLite runs a
    subquery that has an ORDER BY by itself, not flattened into an aggregate over it, whose
    result may depend on the order: ``json_group_array`` sees the rows in order)."""
    rows = page.subquery("page_rows")
    dialect = sqlite_dialect()
    for column in rows.c:
        if not _read_as_stored(column, dialect):
            raise TypeError(f"column {column.name} is converted as it is read, not from JSON")
    return select(func.json_group_array(func.json_array(*rows.c)))


def _read_as_stored(column: ColumnElement[Any], dialect: Dialect) -> bool:
    """Whether SQLAlchemy hands ``column``'s values on as the driver reads them."""
    return column.type.dialect_impl(dialect).result_processor(dialect, None) is None


class _DriverStatement(NamedTuple):
    """A statement as SQLite's driver runs it: its SQL, the names of its ``?`` parameters in
    order, and the values the statement binds itself."""

    sql: str
    names: tuple[str, ...]
    bound: dict[str, Any]


@functools.lru_cache(maxsize=256)
def _driver_statement(statement: Select[Any], dialect: Dialect) -> _DriverStatement | None:
    """``statement`` compiled once for SQLite's driver; None when only SQLAlchemy can run it:
    it converts a parameter or a column as it passes (a bind or result processor: Boolean
    columns, say), or renders a parameter at execution (an expanding one, as ``_VISIBLE``)."""
    compiled = statement.compile(dialect=dialect)
    binds = compiled.binds
    names = tuple(compiled.positiontup or ())
    if (
        not compiled.positional
        or compiled.post_compile_params
        or compiled.literal_execute_params
        or any(name not in binds for name in names)
        or any(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds.values())
        or not all(_read_as_stored(column, dialect) for column in statement.selected_columns)
    ):
        return None
    bound = {name: binds[name].effective_value for name in names if not binds[name].required}
    return _DriverStatement(compiled.string, names, bound)


def _driver_rows(
    connection: Connection, statement: _DriverStatement, parameters: dict[str, Any]
) -> list[Any]:
    """The rows of ``statement`` run on ``connection``'s SQLite driver connection; its errors
    raised as SQLAlchemy raises them (``DBAPIError``), so that they map to the same faults."""
    values = [
        parameters[name] if name in parameters else statement.bound[name]
        for name in statement.names
    ]
    driver = cast(sqlite3.Connection, connection.connection.driver_connection)
    try:
        return driver.execute(statement.sql, values).fetchall()
    except sqlite3.Error as error:
        raise DBAPIError.instance(statement.sql, values, error, sqlite3.Error) from error


_BEGIN = _DriverStatement("BEGIN", (), {})
_BEGIN_IMMEDIATE = _DriverStatement("BEGIN IMMEDIATE", (), {})
_NEVER_WAIT = _DriverStatement("PRAGMA busy_timeout = 0", (), {})


def _model_ids(in_folder: bool, limited: bool) -> Select[Any]:
    """The ids of the caller's models: in the folder bound as ``folder_id`` or in all, only in
    the visible folders when ``limited``."""
    page = _limited_to_visible(_MODEL_IDS_OF_CALLER) if limited else _MODEL_IDS_OF_CALLER
    if in_folder:
        page = page.where(models.c.folder_id == bindparam("folder_id"))
    return page


@functools.cache
def _models_page(in_folder: bool, after: bool, limited: bool) -> Select[Any]:
    page = _model_ids(in_folder, limited)
    if after:
        page = page.where(_after(models.c.created_us, models.c.id))
    return _model_rows(page, [models.c.created_us, models.c.id])


@functools.cache
def _members_page(after: bool) -> Select[Any]:
    query = _MEMBERS.where(folder_members.c.folder_id == bindparam("folder_id"))
    if after:
        query = query.where(users.c.username > bindparam("after"))
    return query.order_by(users.c.username).limit(bindparam("limit"))


@functools.cache
def _versions_page(before: bool) -> Select[Any]:
    query = _VERSIONS.where(model_versions.c.model_id == bindparam("model_id"))
    if before:
        query = query.where(model_versions.c.version < bindparam("before"))
    return query.order_by(model_versions.c.version.desc()).limit(bindparam("limit"))


@functools.cache
def _aliases_page(after: bool) -> Select[Any]:
    query = _ALIASES
    if after:
        query = query.where(model_aliases.c.name > bindparam("after"))
    return query.order_by(model_aliases.c.name).limit(bindparam("limit"))


def _label_value(labels: Any, key: str, dialect: str) -> ColumnElement[Any]:
    """The value of label ``key`` in a version's labels (a JSON object), NULL without it."""
    if dialect == "postgresql":
        as_json: ColumnElement[Any] = sql_cast(labels, JSONB)
        return as_json.op("->>")(bindparam(None, key, type_=String))
    # Label keys never hold a double quote, so the key is a quoted JSON path member as is.
    return func.json_extract(labels, bindparam(None, f'$."{key}"', type_=String))


def _label_matches(labels: Any, test: LabelTest, dialect: str) -> ColumnElement[bool]:
    value = _label_value(labels, test.key, dialect)
    return value.is_not(None) if test.value is None else value == test.value


_COMPARE: dict[str, Callable[[Any, int], ColumnElement[bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


#: ``str.translate`` table that lowers ASCII letters alone: a ``name :`` condition ignores
#: the case of ASCII letters only, as SQLite's lower() does.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _like_pattern(text: str) -> str:
    """``text`` inside a LIKE pattern (ESCAPE '\\'): its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _keyset(key: Any, id_column: Any, after: Position, descending: bool) -> ColumnElement[bool]:
    """Rows strictly past ``after`` (the last row's key and id) in (key, id) order."""
    rows, position = tuple_(key, id_column), tuple_(*after)
    return rows < position if descending else rows > position


def _matching_models(
    query: ModelQuery, in_folder: bool, after: Position | None, dialect: str, limited: bool
) -> Select[Any]:
    """A page of the caller's models for a filtered or ordered list; values other than the
    caller, folder, visible folders and limit are bound in the statement."""
    page = _model_ids(in_folder, limited)
    name = models.c.name
    # Names sort by code point on every backend (PostgreSQL's default collation may not), and
    # lower() changes ASCII letters alone in that collation, as in SQLite.
    by_code_point = name.collate("C") if dialect == "postgresql" else name
    conditions: list[ColumnElement[bool]] = [
        *(models.c.folder_id == folder_id for folder_id in query.folder_ids),
        *(name == exact for exact in query.names),
        *(func.substr(name, 1, len(prefix)) == prefix for prefix in query.name_prefixes),
        *(
            func.lower(by_code_point).like(_like_pattern(part.translate(_ASCII_LOWER)), escape="\\")
            for part in query.name_substrings
        ),
        *(
            exists().where(
                model_versions.c.model_id == models.c.id,
                _label_matches(model_versions.c.labels, test, dialect),
            )
            for test in query.labels
        ),
        *(_COMPARE[bound.operator](models.c.created_us, bound.us) for bound in query.created),
    ]
    key = by_code_point if query.by_name else models.c.created_us
    if after is not None:
        conditions.append(_keyset(key, models.c.id, after, query.descending))
    order = [key.desc(), models.c.id.desc()] if query.descending else [key, models.c.id]
    return _model_rows(page.where(*conditions), order)


def _matching_versions(query: VersionQuery, past: int | None, dialect: str) -> Select[Any]:
    """A page of one model's versions for a filtered or ordered list."""
    number = model_versions.c.version
    conditions: list[ColumnElement[bool]] = [
        model_versions.c.model_id == bindparam("model_id"),
        *(_label_matches(model_versions.c.labels, test, dialect) for test in query.labels),
        *(
            _COMPARE[bound.operator](model_versions.c.created_us, bound.us)
            for bound in query.created
        ),
    ]
    if past is not None:
        conditions.append(number > past if query.oldest_first else number < past)
    order = number if query.oldest_first else number.desc()
    return _VERSIONS.where(*conditions).order_by(order).limit(bindparam("limit"))


def _position(after: Cursor | None) -> dict[str, Any]:
    """The bound parameters of a keyset position (none for the first page)."""
    if after is None:
        return {}
    return {"after_us": after[0], "after_id": after[1]}


class Transaction:
    """Queries and changes inside one database transaction (run by ``MetadataStore``)."""

    def __init__(self, connection: Connection, visible: tuple[str, ...] | None = None) -> None:
        self.connection = connection
        #: The only folders the caller's queries see; None for all the caller has a role in.
        self._visible = visible

    def _limited(self, parameters: dict[str, Any]) -> bool:
        """Whether the caller's queries are limited to some folders, which are then bound in
        ``parameters`` as ``visible`` (``_VISIBLE``)."""
        if self._visible is None:
            return False
        parameters["visible"] = list(self._visible)
        return True

    def _seen(self, query: Select[Any], parameters: dict[str, Any]) -> Select[Any]:
        """``query`` (built on ``_FOLDERS_OF_CALLER`` or ``_MODELS_OF_CALLER``) limited to the
        visible folders, if limited."""
        return _limited_to_visible(query) if self._limited(parameters) else query

    @property
    def _dialect(self) -> str:
        return self.connection.dialect.name

    def _rows(self, statement: Select[Any], parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of ``statement``, one of the statements built once (module constants and
        cached ones: each is compiled once more for SQLite's driver and kept).

        On SQLite they come straight from the driver when SQLAlchemy would only pass them on
        (``_driver_statement``): its execution (a context, parameter and result objects) cost
        about 80 µs of Python around the 15 µs SQLite spends finding a model by its key, in a
        pool thread holding the GIL that the event loop waits for. PostgreSQL's run on the
        event loop through SQLAlchemy.
        """
        if self._dialect == "sqlite":
            prepared = _driver_statement(statement, self.connection.dialect)
            if prepared is not None:
                return _driver_rows(self.connection, prepared, parameters)
        return self.connection.execute(statement, parameters).all()

    def _row(self, statement: Select[Any], parameters: dict[str, Any]) -> Sequence[Any] | None:
        """The row of ``statement``, a lookup by key (see ``_rows``), or None."""
        rows = self._rows(statement, parameters)
        return rows[0] if rows else None

    def _page_rows(self, page: Select[Any], parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of ``page``, a list page (ORDER BY, LIMIT) of text, integer and NULL columns
        whose statement is built once (wrapping it costs about as much as building it).

        SQLite's driver lets go of the GIL around each row it steps and must win it back from
        the other threads (the event loop's, the pool's): under load a page of 100 models cost
        its pool thread three times the CPU of the query itself, and tens of milliseconds of
        waiting. SQLite gives the page as one JSON array instead, one step; PostgreSQL's driver
        reads a result whole. (Not for REAL or BLOB columns: JSON keeps 15 significant digits
        of a REAL and cannot hold a BLOB.)
        """
        if self._dialect != "sqlite":
            return self.connection.execute(page, parameters).all()
        (encoded,) = self._rows(_as_one_json_row(page), parameters)[0]
        return cast(list[list[Any]], json.loads(encoded))

    # Users

    def insert_user(self, username: str, password_hash: str) -> UserRecord:
        user = UserRecord(new_id(), username, now_us())
        try:
            self.connection.execute(
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

    def user_by_id(self, user_id: str) -> UserRecord | None:
        row = self._row(_USER_BY_ID, {"user_id": user_id})
        return UserRecord(*row) if row else None

    def credentials(self, username: str) -> Credentials | None:
        row = self._row(_CREDENTIALS, {"username": username})
        if row is None:
            return None
        user_id, name, created_us, password_hash, token_generation = row
        return Credentials(UserRecord(user_id, name, created_us), password_hash, token_generation)

    def replace_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Stores ``new_hash`` if the account still has ``old_hash`` (a concurrent change wins)."""
        updated = self.connection.execute(
            users.update()
            .where(users.c.id == user_id, users.c.password_hash == old_hash)
            .values(password_hash=new_hash)
        )
        return bool(updated.rowcount)

    def password_hash_prefixes(self, length: int) -> dict[str, int]:
        """How many accounts have each distinct first ``length`` characters of their hash."""
        prefix = func.substr(users.c.password_hash, 1, length).label("prefix")
        rows = self.connection.execute(
            select(prefix, func.count().label("accounts"))
            .where(users.c.deleted_us.is_(None))
            .group_by(prefix)
        )
        return {row.prefix: row.accounts for row in rows}

    def set_password_hash(self, user_id: str, password_hash: str) -> int | None:
        """Replaces the account's password hash and raises its token generation, ending every
        sign-in token issued before; returns the new generation (None: no such account)."""
        return self.connection.execute(
            users.update()
            .where(users.c.id == user_id, users.c.deleted_us.is_(None))
            .values(password_hash=password_hash, token_generation=users.c.token_generation + 1)
            .returning(users.c.token_generation)
        ).scalar_one_or_none()

    def raise_token_generation(self, user_id: str) -> None:
        """Ends every sign-in token of the account issued so far."""
        self.connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(token_generation=users.c.token_generation + 1)
        )

    def sole_owned_folders(self, user_id: str) -> list[tuple[str, str, bool]]:
        """(id, name, whether it holds models or has other members) of each folder whose only
        owner is the user, by name."""
        owner = folder_members.alias("owner")
        other_owner = exists().where(
            owner.c.folder_id == folder_members.c.folder_id,
            owner.c.role == int(Role.OWNER),
            owner.c.user_id != user_id,
        )
        shared = or_(
            exists().where(models.c.folder_id == folders.c.id),
            exists().where(owner.c.folder_id == folders.c.id, owner.c.user_id != user_id),
        )
        rows = self.connection.execute(
            select(folders.c.id, folders.c.name, shared)
            .join(folder_members, folder_members.c.folder_id == folders.c.id)
            .where(
                folder_members.c.user_id == user_id,
                folder_members.c.role == int(Role.OWNER),
                ~other_owner,
            )
            .order_by(folders.c.name, folders.c.id)
        ).all()
        return [(folder_id, name, bool(in_use)) for folder_id, name, in_use in rows]

    def delete_user(self, user_id: str, deleted_us: int) -> list[str]:
        """Marks the account deleted: no password, no tokens, no roles; returns the secret
        digests of the access tokens it had. Its row stays, for what it made elsewhere."""
        self.connection.execute(folder_members.delete().where(folder_members.c.user_id == user_id))
        digests = self.connection.execute(
            access_tokens.delete()
            .where(access_tokens.c.user_id == user_id)
            .returning(access_tokens.c.secret_sha256)
        )
        revoked = [digest for (digest,) in digests]
        self.connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(
                password_hash="",
                token_generation=users.c.token_generation + 1,
                deleted_us=deleted_us,
            )
        )
        return revoked

    # Access tokens

    def insert_access_token(
        self, user_id: str, secret_sha256: str, token: AccessTokenRecord
    ) -> None:
        """Stores a new token of the user; UniqueViolation if the user has one of that name."""
        folder_ids = None if token.folder_ids is None else json.dumps(list(token.folder_ids))
        try:
            self.connection.execute(
                access_tokens.insert().values(
                    id=token.id,
                    user_id=user_id,
                    name=token.name,
                    secret_sha256=secret_sha256,
                    scope=_SCOPE_READ if token.read_only else _SCOPE_READ_WRITE,
                    folder_ids=folder_ids,
                    created_us=token.created_us,
                    expires_us=token.expires_us,
                    last_used_us=None,
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(token.name) from error

    def access_token_holder(self, secret_sha256: str) -> AccessTokenHolder | None:
        """The token with this secret digest and its owner, or None (none, or no owner)."""
        row = self.connection.execute(
            _ACCESS_TOKEN_HOLDER, {"secret_sha256": secret_sha256}
        ).first()
        if row is None:
            return None
        return AccessTokenHolder(_access_token(row[:7]), row[7], row[8])

    def access_tokens_of(
        self, user_id: str, now_us: int, after: str | None, limit: int
    ) -> list[AccessTokenRecord]:
        """The user's unexpired tokens by name, starting after the name ``after``."""
        query = _ACCESS_TOKEN.where(
            access_tokens.c.user_id == user_id, access_tokens.c.expires_us > now_us
        )
        if after is not None:
            query = query.where(access_tokens.c.name > after)
        rows = self.connection.execute(query.order_by(access_tokens.c.name).limit(limit)).all()
        return [_access_token(row) for row in rows]

    def access_token(self, user_id: str, token_id: str, now_us: int) -> AccessTokenRecord | None:
        """The user's unexpired token with this id, or None."""
        row = self.connection.execute(
            _ACCESS_TOKEN.where(
                access_tokens.c.user_id == user_id,
                access_tokens.c.id == token_id,
                access_tokens.c.expires_us > now_us,
            )
        ).first()
        return _access_token(row) if row else None

    def delete_access_token(self, user_id: str, token_id: str) -> str | None:
        """Deletes the user's token; returns its secret digest, None when it has no such one."""
        return self.connection.execute(
            access_tokens.delete()
            .where(access_tokens.c.user_id == user_id, access_tokens.c.id == token_id)
            .returning(access_tokens.c.secret_sha256)
        ).scalar_one_or_none()

    def prune_access_tokens(self, user_id: str, now_us: int) -> None:
        """Forgets the user's expired tokens, whose names may then be used again."""
        self.connection.execute(
            access_tokens.delete().where(
                access_tokens.c.user_id == user_id, access_tokens.c.expires_us <= now_us
            )
        )

    def touch_access_token(self, token_id: str, used_us: int) -> None:
        """Records that the token was used at ``used_us``."""
        self.connection.execute(
            access_tokens.update()
            .where(access_tokens.c.id == token_id)
            .values(last_used_us=used_us)
        )

    # Sign-in failures

    def sign_in_failure_counts(
        self, account_key: str, peer_key: str, since_us: int
    ) -> FailureCounts:
        """Failures after ``since_us`` for the account from the peer, the account, the peer."""
        same_account = sign_in_failures.c.account_key == account_key
        same_peer = sign_in_failures.c.peer_key == peer_key

        def count(condition: ColumnElement[bool]) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        row = self.connection.execute(
            select(
                count(and_(same_account, same_peer)).label("account_from_peer"),
                count(same_account).label("account"),
                count(same_peer).label("peer"),
            ).where(sign_in_failures.c.failed_us > since_us, or_(same_account, same_peer))
        ).one()
        return FailureCounts(row.account_from_peer, row.account, row.peer)

    def nth_latest_sign_in_failure(
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
        return self.connection.execute(query).scalar_one_or_none()

    def insert_sign_in_failure(self, account_key: str, peer_key: str, at_us: int) -> None:
        self.connection.execute(
            sign_in_failures.insert().values(
                account_key=account_key, peer_key=peer_key, failed_us=at_us
            )
        )

    def delete_sign_in_failures(self, account_key: str, peer_key: str) -> None:
        """Forgets the failures of one account from one peer."""
        self.connection.execute(
            sign_in_failures.delete().where(
                sign_in_failures.c.account_key == account_key,
                sign_in_failures.c.peer_key == peer_key,
            )
        )

    def prune_sign_in_failures(self, before_us: int) -> None:
        """Forgets failures older than ``before_us``, which no longer count."""
        self.connection.execute(
            sign_in_failures.delete().where(sign_in_failures.c.failed_us <= before_us)
        )

    # Tokens

    def token_standing(self, user_id: str, token_id: str) -> TokenStanding | None:
        """The account's token generation and whether ``token_id`` is revoked, in one query;
        None when the account no longer exists."""
        row = self.connection.execute(
            _TOKEN_STANDING, {"user_id": user_id, "token_id": token_id}
        ).first()
        return TokenStanding(row[0], bool(row[1])) if row else None

    def insert_revoked_token(self, token_id: str, user_id: str, until_us: int) -> None:
        """Revokes one token until ``until_us``; UniqueViolation if it already is."""
        try:
            self.connection.execute(
                revoked_tokens.insert().values(
                    token_id=token_id, user_id=user_id, until_us=until_us
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(token_id) from error

    def prune_revoked_tokens(self, before_us: int) -> None:
        """Forgets revocations of tokens that have expired by ``before_us``."""
        self.connection.execute(
            revoked_tokens.delete().where(revoked_tokens.c.until_us < before_us)
        )

    # Folders and members

    def insert_folder(self, creator: UserRecord, name: str, description: str) -> FolderRecord:
        created = now_us()
        folder = FolderRecord(
            new_id(), name, description, creator.username, created, Role.OWNER, created
        )
        try:
            self.connection.execute(
                folders.insert().values(
                    id=folder.id,
                    name=name,
                    description=description,
                    creator_id=creator.id,
                    created_us=created,
                    updated_us=created,
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(name) from error
        # The creator's owner role is given with the folder, by themself, at the same time.
        self.connection.execute(
            folder_members.insert().values(
                folder_id=folder.id,
                user_id=creator.id,
                role=int(Role.OWNER),
                updated_us=created,
                granted_by=creator.id,
            )
        )
        return folder

    def folder_for(self, user_id: str, folder_id: str) -> FolderRecord | None:
        """The folder if ``user_id`` has a role in it, else None (missing or not shared)."""
        parameters: dict[str, Any] = {"caller": user_id, "folder_id": folder_id}
        row = self._row(self._seen(_FOLDER_FOR, parameters), parameters)
        return _folder(row) if row else None

    def folders_for(self, user_id: str, after: Cursor | None, limit: int) -> list[FolderRecord]:
        parameters = {"caller": user_id, "limit": limit, **_position(after)}
        page = self._seen(_folders_page(after is not None), parameters)
        return [_folder(row) for row in self._page_rows(page, parameters)]

    def update_folder(self, folder_id: str, name: str, description: str, updated_us: int) -> None:
        """Sets the folder's name and description; UniqueViolation if its creator has another
        folder of that name."""
        try:
            self.connection.execute(
                folders.update()
                .where(folders.c.id == folder_id)
                .values(name=name, description=description, updated_us=updated_us)
            )
        except IntegrityError as error:
            raise UniqueViolation(name) from error

    def role(self, folder_id: str, user_id: str) -> Role | None:
        value = self.connection.execute(
            _ROLE, {"folder_id": folder_id, "user_id": user_id}
        ).scalar_one_or_none()
        return ROLE_OF_STORED_VALUE[value] if value is not None else None

    def lock_folder(self, folder_id: str) -> None:
        """Holds the folder's row until the transaction ends, so that changes to its members
        happen one after another: two owners demoting each other at once cannot both see the
        other still an owner, and two grants of one user cannot both insert; and so that no
        model is created in a folder being deleted. (A no-op on SQLite, where writes run one
        at a time anyway.)"""
        self.connection.execute(_LOCK_FOLDER, {"folder_id": folder_id})

    def owner_count(self, folder_id: str) -> int:
        return self.connection.execute(
            select(func.count()).where(
                folder_members.c.folder_id == folder_id,
                folder_members.c.role == int(Role.OWNER),
            )
        ).scalar_one()

    def upsert_member(self, folder_id: str, user_id: str, role: Role, granted_by: str) -> int:
        """Sets the user's role in the folder, as given by the user ``granted_by``; returns the
        time of the change."""
        changed = now_us()
        values = {"role": int(role), "updated_us": changed, "granted_by": granted_by}
        updated = self.connection.execute(
            folder_members.update()
            .where(folder_members.c.folder_id == folder_id, folder_members.c.user_id == user_id)
            .values(**values)
        )
        if updated.rowcount == 0:
            self.connection.execute(
                folder_members.insert().values(folder_id=folder_id, user_id=user_id, **values)
            )
        return changed

    def delete_member(self, folder_id: str, user_id: str) -> None:
        self.connection.execute(
            folder_members.delete().where(
                folder_members.c.folder_id == folder_id, folder_members.c.user_id == user_id
            )
        )

    def members(self, folder_id: str, after: str | None, limit: int) -> list[MemberRecord]:
        """Members by username, starting after the username ``after``."""
        parameters: dict[str, Any] = {"folder_id": folder_id, "limit": limit}
        if after is not None:
            parameters["after"] = after
        rows = self._page_rows(_members_page(after is not None), parameters)
        return [_member(row) for row in rows]

    def member(self, folder_id: str, user_id: str) -> MemberRecord | None:
        """The user's role in the folder and who set it; None without a role."""
        row = self._row(_MEMBER, {"folder_id": folder_id, "user_id": user_id})
        return _member(row) if row else None

    # Models

    def insert_model(
        self, folder: FolderRecord, creator: UserRecord, name: str, description: str
    ) -> ModelRecord:
        created = now_us()
        model = ModelRecord(
            new_id(),
            folder.id,
            name,
            description,
            creator.username,
            created,
            0,
            folder.caller_role,
            created,
        )
        try:
            self.connection.execute(
                models.insert().values(
                    id=model.id,
                    folder_id=folder.id,
                    name=name,
                    description=description,
                    creator_id=creator.id,
                    created_us=created,
                    latest_version=0,
                    updated_us=created,
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(name) from error
        return model

    def model_for(self, user_id: str, model_id: str) -> ModelRecord | None:
        """The model if ``user_id`` has a role in its folder, else None."""
        parameters: dict[str, Any] = {"caller": user_id, "model_id": model_id}
        row = self._row(self._seen(_MODEL_FOR, parameters), parameters)
        return _model(row) if row else None

    def models_for(
        self,
        user_id: str,
        folder_id: str | None,
        after: Position | None,
        limit: int,
        query: ModelQuery = EVERY_MODEL,
    ) -> list[ModelRecord]:
        """The caller's models that match ``query``, in its order, after the position
        ``after`` (the order's key and the id of the last model of the previous page)."""
        parameters: dict[str, Any] = {"caller": user_id, "limit": limit}
        if folder_id is not None:
            parameters["folder_id"] = folder_id
        limited = self._limited(parameters)
        if query == EVERY_MODEL:  # the common list, a statement compiled once
            page = _models_page(folder_id is not None, after is not None, limited)
            parameters.update(_position(after))
            rows = self._page_rows(page, parameters)
        else:
            page = _matching_models(query, folder_id is not None, after, self._dialect, limited)
            rows = self.connection.execute(page, parameters).all()
        return [_model(row) for row in rows]

    def update_model(self, model_id: str, name: str, description: str, updated_us: int) -> None:
        """Sets the model's name and description; UniqueViolation if its folder holds another
        model of that name."""
        try:
            self.connection.execute(
                models.update()
                .where(models.c.id == model_id)
                .values(name=name, description=description, updated_us=updated_us)
            )
        except IntegrityError as error:
            raise UniqueViolation(name) from error

    # Versions

    def insert_version(
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
        bumped = self.connection.execute(
            models.update()
            .where(models.c.id == model.id)
            .values(latest_version=models.c.latest_version + 1)
            .returning(models.c.latest_version)
        )
        created = now_us()
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
            created,
            created,
        )
        self.connection.execute(
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
                created_us=created,
                updated_us=created,
            )
        )
        return record

    def version(self, model_id: str, version: int) -> VersionRecord | None:
        row = self._row(_VERSION, {"model_id": model_id, "version": version})
        return _version(row) if row else None

    def versions(
        self,
        model_id: str,
        before: int | None,
        limit: int,
        query: VersionQuery = EVERY_VERSION,
    ) -> list[VersionRecord]:
        """The model's versions that match ``query``, newest first (or oldest first if the
        query says so), starting past version number ``before``."""
        parameters: dict[str, Any] = {"model_id": model_id, "limit": limit}
        if query == EVERY_VERSION:  # the common list, a statement compiled once
            page = _versions_page(before is not None)
            if before is not None:
                parameters["before"] = before
            rows = self._page_rows(page, parameters)
        else:
            page = _matching_versions(query, before, self._dialect)
            rows = self.connection.execute(page, parameters).all()
        return [_version(row) for row in rows]

    def update_version(
        self,
        model_id: str,
        version: int,
        description: str,
        labels: dict[str, str],
        updated_us: int,
    ) -> None:
        """Sets the version's description and labels; nothing else of a version changes."""
        self.connection.execute(
            model_versions.update()
            .where(model_versions.c.model_id == model_id, model_versions.c.version == version)
            .values(
                description=description,
                labels=json.dumps(labels, sort_keys=True),
                updated_us=updated_us,
            )
        )

    # Aliases

    def lock_model(self, model_id: str) -> None:
        """Holds the model's row until the transaction ends, so that alias changes, version
        commits and deletions of one model happen one after another: two compare-and-swaps
        expecting the same version cannot both see it and both win, and no version is committed
        to a model being deleted. (A no-op on SQLite, where writes run one at a time anyway.)"""
        self.connection.execute(_LOCK_MODEL, {"model_id": model_id})

    def alias(self, model_id: str, name: str) -> AliasRecord | None:
        row = self._row(_ALIAS, {"model_id": model_id, "name": name})
        return AliasRecord(*row) if row else None

    def aliases(self, model_id: str, after: str | None, limit: int) -> list[AliasRecord]:
        """Aliases by name, starting after the name ``after``."""
        parameters: dict[str, Any] = {"model_id": model_id, "limit": limit}
        if after is not None:
            parameters["after"] = after
        rows = self._page_rows(_aliases_page(after is not None), parameters)
        return [AliasRecord(*row) for row in rows]

    def put_alias(self, model_id: str, name: str, version: int, updater: UserRecord) -> AliasRecord:
        """Points the alias at ``version``, creating it if needed; the version must exist."""
        alias = AliasRecord(model_id, name, version, updater.username, now_us())
        values = {"version": version, "updater_id": updater.id, "updated_us": alias.updated_us}
        moved = self.connection.execute(
            model_aliases.update()
            .where(model_aliases.c.model_id == model_id, model_aliases.c.name == name)
            .values(**values)
        )
        if moved.rowcount == 0:
            self.connection.execute(
                model_aliases.insert().values(model_id=model_id, name=name, **values)
            )
        return alias

    def delete_alias(self, model_id: str, name: str) -> None:
        self.connection.execute(
            model_aliases.delete().where(
                model_aliases.c.model_id == model_id, model_aliases.c.name == name
            )
        )

    # Results of requests made with a request_id (see domain/requests.py)

    def request_result(
        self, user_id: str, request_id: str, since_us: int
    ) -> tuple[str, str] | None:
        """The fingerprint and resource of the user's request with this id made after
        ``since_us``, or None."""
        row = self.connection.execute(
            select(request_results.c.fingerprint, request_results.c.resource).where(
                request_results.c.user_id == user_id,
                request_results.c.request_id == request_id,
                request_results.c.created_us > since_us,
            )
        ).first()
        return (row[0], row[1]) if row else None

    def insert_request_result(
        self, user_id: str, request_id: str, fingerprint: str, resource: str
    ) -> None:
        """Records what the request made; UniqueViolation if the id is recorded already (a
        concurrent retry committed first)."""
        try:
            self.connection.execute(
                request_results.insert().values(
                    user_id=user_id,
                    request_id=request_id,
                    fingerprint=fingerprint,
                    resource=resource,
                    created_us=now_us(),
                )
            )
        except IntegrityError as error:
            raise UniqueViolation(request_id) from error

    def prune_request_results(self, before_us: int) -> None:
        """Forgets requests made before ``before_us``: their ids may be used again."""
        self.connection.execute(
            request_results.delete().where(request_results.c.created_us <= before_us)
        )

    # Deletion (the blobs of deleted versions are then marked: see domain/uploads.py)

    def lock_folder_models(self, folder_id: str) -> int:
        """Holds the rows of the folder's models, in id order, until the transaction ends, so
        that no upload or alias change commits in one of them meanwhile; returns how many
        there are. (A no-op on SQLite, where writes run one at a time anyway.)"""
        return len(self.connection.execute(_LOCK_FOLDER_MODELS, {"folder_id": folder_id}).all())

    def version_aliases(self, model_id: str, version: int) -> list[str]:
        """The names of the aliases that point at the version, by name."""
        rows = self.connection.execute(
            select(model_aliases.c.name)
            .where(model_aliases.c.model_id == model_id, model_aliases.c.version == version)
            .order_by(model_aliases.c.name)
        )
        return [name for (name,) in rows]

    def delete_version(self, model_id: str, version: int) -> str | None:
        """Deletes the version and the aliases pointing at it; returns its SHA-256, or None
        when the model has no such version. The model's version counter stays as it is."""
        this_version = and_(
            model_aliases.c.model_id == model_id, model_aliases.c.version == version
        )
        self.connection.execute(model_aliases.delete().where(this_version))
        deleted = self.connection.execute(
            model_versions.delete()
            .where(model_versions.c.model_id == model_id, model_versions.c.version == version)
            .returning(model_versions.c.sha256)
        ).first()
        return deleted[0] if deleted else None

    def delete_model(self, model_id: str) -> list[str]:
        """Deletes the model with its aliases and versions; returns the SHA-256 of each
        deleted version."""
        self.connection.execute(model_aliases.delete().where(model_aliases.c.model_id == model_id))
        deleted = self.connection.execute(
            model_versions.delete()
            .where(model_versions.c.model_id == model_id)
            .returning(model_versions.c.sha256)
        )
        digests = [sha256 for (sha256,) in deleted]
        self.connection.execute(models.delete().where(models.c.id == model_id))
        return digests

    def delete_folder(self, folder_id: str) -> tuple[int, list[str]]:
        """Deletes the folder with its memberships, models, aliases and versions; returns how
        many models it held and the SHA-256 of each deleted version."""
        in_folder = select(models.c.id).where(models.c.folder_id == folder_id)
        self.connection.execute(
            model_aliases.delete().where(model_aliases.c.model_id.in_(in_folder))
        )
        deleted = self.connection.execute(
            model_versions.delete()
            .where(model_versions.c.model_id.in_(in_folder))
            .returning(model_versions.c.sha256)
        )
        digests = [sha256 for (sha256,) in deleted]
        removed = self.connection.execute(models.delete().where(models.c.folder_id == folder_id))
        self.connection.execute(
            folder_members.delete().where(folder_members.c.folder_id == folder_id)
        )
        self.connection.execute(folders.delete().where(folders.c.id == folder_id))
        return removed.rowcount, digests

    # Uploads in progress and blob garbage (see domain/uploads.py for the protocol)

    def lock_blob(self, sha256: str) -> None:
        """Holds the blob's digest until the transaction ends, so that claiming it for an
        upload and marking it for deletion happen one after the other. (A no-op on SQLite,
        where writes run one at a time anyway.)"""
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(_LOCK_BLOB, {"key": f"blob:{sha256}"})

    def insert_upload_session(
        self,
        session_id: str,
        blob_handle: str,
        expires_us: int,
        request: tuple[str, str, str] | None = None,
    ) -> None:
        """Records an upload that counts as alive until ``expires_us``; ``request`` is the
        (user id, request id, fingerprint) of one that can be resumed."""
        user_id, request_id, fingerprint = request or (None, None, None)
        self.connection.execute(
            upload_sessions.insert().values(
                id=session_id,
                blob_handle=blob_handle,
                sha256=None,
                expires_us=expires_us,
                user_id=user_id,
                request_id=request_id,
                fingerprint=fingerprint,
                paused_bytes=None,
            )
        )

    def upload_sessions_of_request(
        self, user_id: str, request_id: str, now_us: int
    ) -> list[UploadSessionRecord]:
        """The user's unexpired uploads made with this request id, in progress or paused."""
        rows = self.connection.execute(
            select(
                upload_sessions.c.id,
                upload_sessions.c.blob_handle,
                upload_sessions.c.fingerprint,
                upload_sessions.c.expires_us,
                upload_sessions.c.paused_bytes,
            ).where(
                upload_sessions.c.user_id == user_id,
                upload_sessions.c.request_id == request_id,
                upload_sessions.c.expires_us >= now_us,
            )
        ).all()
        return [UploadSessionRecord(*row) for row in rows]

    def paused_upload_sessions(self, user_id: str, now_us: int) -> list[str]:
        """The ids of the user's unexpired paused uploads, the one that expires first first."""
        rows = self.connection.execute(
            select(upload_sessions.c.id)
            .where(
                upload_sessions.c.user_id == user_id,
                upload_sessions.c.paused_bytes.is_not(None),
                upload_sessions.c.expires_us >= now_us,
            )
            .order_by(upload_sessions.c.expires_us, upload_sessions.c.id)
        ).all()
        return [session_id for (session_id,) in rows]

    def pause_upload_session(self, session_id: str, paused_bytes: int, expires_us: int) -> bool:
        """Marks the upload as paused, holding ``paused_bytes``, until ``expires_us``; False
        when the session is gone (cleaned up as abandoned)."""
        updated = self.connection.execute(
            upload_sessions.update()
            .where(upload_sessions.c.id == session_id, upload_sessions.c.sha256.is_(None))
            .values(paused_bytes=paused_bytes, expires_us=expires_us)
        )
        return bool(updated.rowcount)

    def resume_upload_session(self, session_id: str, now_us: int, expires_us: int) -> bool:
        """Takes a paused upload for a stream that continues it, alive until ``expires_us``;
        False when it is no longer paused (another stream took it) or has expired."""
        updated = self.connection.execute(
            upload_sessions.update()
            .where(
                upload_sessions.c.id == session_id,
                upload_sessions.c.paused_bytes.is_not(None),
                upload_sessions.c.expires_us >= now_us,
            )
            .values(paused_bytes=None, expires_us=expires_us)
        )
        return bool(updated.rowcount)

    def expire_paused_upload_sessions(self, session_ids: list[str]) -> None:
        """Ends the lives of those of the sessions that are paused now (none a stream has taken
        meanwhile): the next sweep of any process removes them."""
        if session_ids:
            self.connection.execute(
                upload_sessions.update()
                .where(
                    upload_sessions.c.id.in_(session_ids),
                    upload_sessions.c.paused_bytes.is_not(None),
                )
                .values(expires_us=0)
            )

    def blob_being_deleted(self, sha256: str) -> bool:
        query = select(blob_deletions.c.sha256).where(blob_deletions.c.sha256 == sha256)
        return self.connection.execute(query).first() is not None

    def claim_blob(self, session_id: str, sha256: str, expires_us: int) -> bool:
        """Records that the upload's bytes are the blob ``sha256``; False when the session is
        gone (cleaned up as abandoned)."""
        updated = self.connection.execute(
            upload_sessions.update()
            .where(upload_sessions.c.id == session_id)
            .values(sha256=sha256, expires_us=expires_us)
        )
        return bool(updated.rowcount)

    def touch_upload_sessions(self, session_ids: list[str], expires_us: int) -> None:
        """Keeps the sessions alive until ``expires_us``."""
        self.connection.execute(
            upload_sessions.update()
            .where(upload_sessions.c.id.in_(session_ids))
            .values(expires_us=expires_us)
        )

    def abandoned_upload_sessions(self, now_us: int, limit: int) -> list[tuple[str, str]]:
        """(id, blob handle) of sessions past their deadline at ``now_us``, oldest first."""
        rows = self.connection.execute(
            select(upload_sessions.c.id, upload_sessions.c.blob_handle)
            .where(upload_sessions.c.expires_us < now_us)
            .order_by(upload_sessions.c.expires_us)
            .limit(limit)
        ).all()
        return [(session_id, handle) for session_id, handle in rows]

    def end_upload_session(self, session_id: str) -> tuple[bool, str | None]:
        """Deletes the session; returns whether it existed and the blob it had claimed. Call
        ``lock_blob`` first when the blob is known."""
        claimed = self.connection.execute(
            select(upload_sessions.c.sha256).where(upload_sessions.c.id == session_id)
        ).first()
        if claimed is None:
            return False, None
        self.connection.execute(upload_sessions.delete().where(upload_sessions.c.id == session_id))
        return True, claimed[0]

    def mark_blob_if_unused(self, sha256: str, marked_us: int) -> bool:
        """Marks the blob for deletion if no version points to it and no upload claims it;
        returns whether it is marked. Call ``lock_blob`` first."""
        if self.blob_being_deleted(sha256):
            return True
        in_use = select(model_versions.c.version).where(model_versions.c.sha256 == sha256)
        claimed = select(upload_sessions.c.id).where(upload_sessions.c.sha256 == sha256)
        if self.connection.execute(in_use.limit(1)).first() is not None:
            return False
        if self.connection.execute(claimed.limit(1)).first() is not None:
            return False
        self.connection.execute(blob_deletions.insert().values(sha256=sha256, marked_us=marked_us))
        return True

    def blobs_being_deleted(self, limit: int) -> list[str]:
        rows = self.connection.execute(
            select(blob_deletions.c.sha256).order_by(blob_deletions.c.marked_us).limit(limit)
        )
        return [sha256 for (sha256,) in rows]

    def forget_blob_deletion(self, sha256: str) -> None:
        """The blob's bytes are gone: it may be stored again."""
        self.connection.execute(blob_deletions.delete().where(blob_deletions.c.sha256 == sha256))

    # The audit trail and the event feed (see domain/audit.py)

    def insert_audit_event(
        self,
        entry: AuditEntry,
        audience: Collection[str] = (),
        audience_folder: str | None = None,
    ) -> None:
        """Records ``entry``; one with a feed kind also takes the next feed position, which
        holds the feed's row lock until this transaction ends (positions in commit order), and
        lets ``audience`` and the members ``audience_folder`` has now see it even once they no
        longer have a role in its folder."""
        position = None
        if entry.feed_kind is not None:
            position = self.connection.execute(_NEXT_FEED_POSITION).scalar_one()
            if audience:
                self.connection.execute(
                    event_audience.insert(),
                    [{"feed_position": position, "user_id": user} for user in set(audience)],
                )
            if audience_folder is not None:
                members = select(
                    bindparam("position", position, type_=BigInteger), folder_members.c.user_id
                ).where(folder_members.c.folder_id == audience_folder)
                self.connection.execute(
                    event_audience.insert().from_select(["feed_position", "user_id"], members)
                )
        self.connection.execute(
            _INSERT_AUDIT_EVENT,
            {
                "occurred_us": entry.occurred_us,
                "actor_id": entry.actor_id,
                "token_id": entry.token_id,
                "token_name": entry.token_name,
                "action": entry.action,
                "outcome": entry.outcome,
                "folder_id": entry.folder_id,
                "resource": entry.resource,
                "peer": entry.peer,
                "details": json.dumps(entry.details, sort_keys=True),
                "feed_position": position,
                "feed_kind": None if entry.feed_kind is None else int(entry.feed_kind),
            },
        )

    def audit_events(
        self, query: AuditQuery, before_id: int | None, limit: int
    ) -> list[AuditEventRecord]:
        """Recorded events matching ``query``, newest first, from before ``before_id`` on."""
        event = audit_events.c
        conditions: list[ColumnElement[bool]] = []
        if query.folder_id is not None:
            conditions.append(event.folder_id == query.folder_id)
        if query.own_user is not None:
            conditions.append(
                or_(event.actor_id == query.own_user, event.resource == f"users/{query.own_user}")
            )
        if query.actor_id is not None:
            conditions.append(event.actor_id == query.actor_id)
        if query.action is not None:
            conditions.append(event.action == query.action)
        if query.resource is not None:
            conditions.append(event.resource == query.resource)
        if query.since_us is not None:
            conditions.append(event.occurred_us >= query.since_us)
        if query.until_us is not None:
            conditions.append(event.occurred_us < query.until_us)
        if before_id is not None:
            conditions.append(event.id < before_id)
        if self._visible is not None:  # a folder-limited access token: its folders' events
            conditions.append(event.folder_id.in_(self._visible))
        statement = _AUDIT_EVENTS.where(*conditions).order_by(event.id.desc()).limit(limit)
        return [_audit_event(row) for row in self.connection.execute(statement).all()]

    def feed_head(self) -> tuple[int, int]:
        """The last feed position given, and the highest one pruned."""
        position, pruned = self.connection.execute(_FEED_HEAD).one()
        return int(position), int(pruned)

    def feed_events(
        self, caller: str, after: int, through: int, folder_id: str | None, limit: int
    ) -> list[AuditEventRecord]:
        """Feed events past position ``after`` up to ``through`` that ``caller`` may see now
        (a role in their folder, or in their audience), in feed order; at most ``limit``."""
        parameters: dict[str, Any] = {
            "caller": caller,
            "after": after,
            "through": through,
            "limit": limit,
        }
        if folder_id is not None:
            parameters["folder_id"] = folder_id
        page = _feed_page(folder_id is not None, self._limited(parameters))
        rows = self.connection.execute(page, parameters).all()
        return [_audit_event(row) for row in rows]

    def prune_audit_events(self, before_us: int, limit: int) -> int:
        """Deletes up to ``limit`` of the oldest events recorded before ``before_us`` (with the
        audiences of those in the feed); returns how many."""
        oldest = (
            select(audit_events.c.id, audit_events.c.feed_position)
            .where(audit_events.c.occurred_us < before_us)
            .order_by(audit_events.c.id)
            .limit(limit)
        )
        rows = self.connection.execute(oldest).all()
        if not rows:
            return 0
        ids = [row.id for row in rows]
        positions = [row.feed_position for row in rows if row.feed_position is not None]
        if positions:
            self.connection.execute(
                event_audience.delete().where(event_audience.c.feed_position.in_(positions))
            )
            self.connection.execute(
                event_feed.update()
                .where(event_feed.c.id == 1, event_feed.c.pruned_through < max(positions))
                .values(pruned_through=max(positions))
            )
        self.connection.execute(audit_events.delete().where(audit_events.c.id.in_(ids)))
        return len(ids)


def _access_token(row: tuple[Any, ...]) -> AccessTokenRecord:
    token_id, name, scope, folder_ids, created_us, expires_us, last_used_us = row
    return AccessTokenRecord(
        token_id,
        name,
        scope == _SCOPE_READ,
        None if folder_ids is None else tuple(json.loads(folder_ids)),
        created_us,
        expires_us,
        last_used_us,
    )


def _version(row: Sequence[Any]) -> VersionRecord:
    (
        model_id,
        version,
        file_name,
        content_type,
        size_bytes,
        sha256,
        description,
        labels,
        creator_username,
        created_us,
        updated_us,
    ) = row
    return VersionRecord(
        model_id,
        version,
        file_name,
        content_type,
        size_bytes,
        sha256,
        description,
        json.loads(labels),
        creator_username,
        created_us,
        updated_us,
    )


def _folder(row: Sequence[Any]) -> FolderRecord:
    folder_id, name, description, creator_username, created_us, role, updated_us = row
    return FolderRecord(
        folder_id,
        name,
        description,
        creator_username,
        created_us,
        ROLE_OF_STORED_VALUE[role],
        updated_us,
    )


def _member(row: Sequence[Any]) -> MemberRecord:
    user_id, username, role, updated_us, granted_by_username = row
    return MemberRecord(
        user_id, username, ROLE_OF_STORED_VALUE[role], updated_us, granted_by_username
    )


def _model(row: Sequence[Any]) -> ModelRecord:
    (
        model_id,
        folder_id,
        name,
        description,
        creator_username,
        created_us,
        latest_version,
        role,
        updated_us,
    ) = row
    return ModelRecord(
        model_id,
        folder_id,
        name,
        description,
        creator_username,
        created_us,
        latest_version,
        ROLE_OF_STORED_VALUE[role],
        updated_us,
    )


def _audit_event(row: Row[*tuple[Any, ...]]) -> AuditEventRecord:
    kind = row.feed_kind
    return AuditEventRecord(
        id=row.id,
        occurred_us=row.occurred_us,
        actor_id=row.actor_id,
        actor_username=row.actor_username or "",
        token_id=row.token_id,
        token_name=row.token_name,
        action=row.action,
        outcome=row.outcome,
        folder_id=row.folder_id,
        resource=row.resource,
        peer=row.peer,
        details=json.loads(row.details),
        feed_position=row.feed_position or 0,
        feed_kind=None if kind is None else FeedKind(kind),
    )
