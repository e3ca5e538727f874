"""Composition root: builds the server from settings and runs it until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import hashlib
import logging
import os
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpclib._typing import IServable
from grpclib.health.check import ServiceCheck, ServiceStatus
from grpclib.health.service import Health
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from . import metrics, rpc
from .auth.hook import Authenticator
from .auth.passwords import PasswordHasher
from .auth.tokens import (
    KeyFileError,
    TokenService,
    load_or_create_signing_key,
    load_rsa_public_key,
)
from .config import ListenAddress, Settings
from .domain.access_tokens import AccessTokens
from .domain.accounts import Accounts
from .domain.aliases import Aliases
from .domain.audit_trail import AuditTrail
from .domain.catalog import Catalog
from .domain.deletion import Deletions
from .domain.edits import Edits
from .domain.events import EventFeed
from .domain.paging import PageTokens
from .domain.requests import RequestResults
from .domain.sign_in_limits import SignInGuard, SignInLimits
from .domain.slots import SlotLimits
from .domain.uploads import PendingUploads
from .domain.versions import Versions
from .memory import tune_allocator
from .services.audit_service import AuditService
from .services.auth_service import AuthService
from .services.folder_service import FolderService
from .services.model_service import ModelService
from .services.reflection import with_reflection
from .storage import locations
from .storage.blobs import BlobStore, LocalBlobStore
from .storage.faults import StorageFault
from .storage.locations import BlobLocation
from .storage.metadata import MetadataStore
from .storage.migrations import SchemaTooNew
from .tls import CertificateError, ensure_self_signed
from .transport import (
    RequestGuards,
    Server,
    TransportLimits,
    open_listener,
    server_tls_context,
)

log = logging.getLogger("modelcatalog_server")

DATABASE_FILE = "catalog.sqlite3"
BLOBS_DIR = "blobs"
LOCK_FILE = ".lock"
#: How long a health check's answer is reused before the check runs again.
HEALTH_CHECK_TTL_SECONDS = 5.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: With several server processes every line names the process that wrote it.
LOG_FORMAT_WITH_PID = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


class _LogFormatter(logging.Formatter):
    """The standard format, its time of day formatted once a second (``strftime`` for every
    line was a fifth of what an access log line costs)."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, stamp = self._second
        if second != int(record.created):
            second = int(record.created)
            stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, stamp)
        msec_format = self.default_msec_format
        return msec_format % (stamp, record.msecs) if msec_format else stamp


class StartupError(Exception):
    """The server cannot start for a reason the operator can fix; the message says which."""


@dataclass
class Application:
    """A built server and what it needs closed after it stops."""

    services: list[IServable]
    guards: RequestGuards
    tls: ssl.SSLContext | None
    tls_note: str
    #: Health's readiness check: SERVING once built, NOT_SERVING again from a drain signal on.
    readiness: ServiceStatus


def page_token_secret(signing_key: rsa.RSAPrivateKey) -> bytes:
    """A page-token key derived from the signing key, so replicas agree with no extra secret."""
    der = signing_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return hashlib.sha256(b"modelcatalog page tokens\0" + der).digest()


def load_token_service(settings: Settings) -> TokenService:
    """The token service from configured keys, or from a key generated in the data dir."""
    try:
        signing_key = load_or_create_signing_key(settings.jwt_private_key, settings.data_dir)
        previous = [load_rsa_public_key(path) for path in settings.jwt_previous_keys]
    except KeyFileError as error:
        raise StartupError(str(error)) from error
    return TokenService(
        signing_key,
        previous,
        issuer=settings.jwt_issuer,
        lifetime_seconds=settings.token_lifetime,
    )


def load_tls(settings: Settings) -> tuple[ssl.SSLContext | None, str]:
    """The server's TLS context and a note for the log on how clients trust it."""
    if settings.insecure:
        return None, "plaintext, --insecure"
    if settings.tls_cert is not None and settings.tls_key is not None:
        cert, key, note = (
            settings.tls_cert,
            settings.tls_key,
            f"TLS, certificate {settings.tls_cert}",
        )
    else:
        try:
            files = ensure_self_signed(settings.data_dir)
        except CertificateError as error:
            raise StartupError(str(error)) from error
        cert, key = files.cert, files.key
        note = f"TLS, self-signed; clients trust it with --ca-cert {files.cert.resolve()}"
        if files.created:
            log.info("created a self-signed TLS certificate for localhost at %s", files.cert)
    try:
        return server_tls_context(cert, key), note
    except (OSError, ssl.SSLError) as error:
        raise StartupError(
            f"cannot load the TLS certificate {cert} and key {key}: {error}"
        ) from error


@contextmanager
def exclusive_data_dir(data_dir: Path) -> Iterator[None]:
    """Holds a lock on the data directory: two servers on one directory would corrupt it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = (data_dir / LOCK_FILE).open("a")
    except OSError as error:
        raise StartupError(f"cannot use the data directory {data_dir}: {error}") from error
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"another modelcatalog-server is already using the data directory {data_dir}"
            ) from None
        yield


def storage_locations(settings: Settings) -> tuple[str, BlobLocation]:
    """The database URL and blob location the settings name, the data directory's by default."""
    database = settings.database_url or f"sqlite:///{settings.data_dir / DATABASE_FILE}"
    blobs = locations.blob_location(settings.blob_url or str(settings.data_dir / BLOBS_DIR))
    return database, blobs


def uses_data_dir(settings: Settings) -> bool:
    """Whether metadata or blobs live in the data directory, which one server owns at a time."""
    return not settings.database_url or not settings.blob_url


@contextmanager
def data_dir_claimed(settings: Settings) -> Iterator[None]:
    """The data directory's lock when the settings keep storage there; nothing otherwise
    (replicas sharing PostgreSQL and S3 need no local lock)."""
    if uses_data_dir(settings):
        with exclusive_data_dir(settings.data_dir):
            yield
    else:
        yield


async def prepare_storage(settings: Settings) -> None:
    """The start-up work on storage that runs once, before any server process serves: the
    schema brought up to date, and the configured stores found usable (a clear error now
    rather than one per worker).

    A server that runs several processes does it in its supervisor, so that its workers open
    storage with the schema already current and do not each fail alike; a single process does
    the same when it opens storage (``build_application``).
    """
    store, blobs = await open_storage(settings)
    try:
        await blobs.close()
    finally:
        await store.close()


async def open_storage(settings: Settings) -> tuple[MetadataStore, BlobStore]:
    """The metadata store (migrated) and the blob store the settings name."""
    database, blob_location = storage_locations(settings)
    try:
        store = await MetadataStore.open(database)
    except (OSError, SchemaTooNew, StorageFault, SQLAlchemyError) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        raise StartupError(f"cannot open the database {_shown(database)}: {cause}") from error
    try:
        blobs = await open_blob_store(blob_location, settings.max_version_size)
    except BaseException as error:
        await store.close()
        if isinstance(error, OSError | ValueError | StorageFault):
            raise StartupError(
                f"cannot open the blob store {blob_location.url}: {error}"
            ) from error
        raise
    try:
        await blobs.check_writable()
    except (OSError, StorageFault) as error:
        await blobs.close()
        await store.close()
        raise StartupError(
            f"the blob store {blob_location.url} cannot store files: {error}"
        ) from error
    return store, blobs


async def open_blob_store(location: BlobLocation, max_blob_bytes: int) -> BlobStore:
    """The blob store at ``location``, for blobs of up to ``max_blob_bytes``."""
    if location.directory is None:
        # Imported only for S3: the AWS client and its HTTP stack take half a second to
        # import, a cost every start of an embedded server would pay for nothing.
        from .storage.s3 import open_s3_blob_store

        return await open_s3_blob_store(location.url, max_blob_bytes=max_blob_bytes)
    return LocalBlobStore(location.directory)


def _shown(database_url: str) -> str:
    """A database URL as logs may show it: without its password."""
    return locations.database_url(database_url).render_as_string(hide_password=True)


@asynccontextmanager
async def build_application(settings: Settings) -> AsyncIterator[Application]:
    """Opens storage and keys, wires every layer, and closes them all afterwards. The caller
    holds the data directory (``data_dir_claimed``), for itself or for its workers."""
    store, blobs = await open_storage(settings)
    hasher = PasswordHasher(settings.bcrypt_cost)
    try:
        pending = PendingUploads(
            store,
            blobs,
            grace_seconds=settings.upload_grace_period,
            resume_seconds=settings.upload_resume_period,
            max_paused_per_user=settings.max_paused_uploads_per_user,
        )
        accounts = build_accounts(settings, store, hasher)
        await accounts.match_dummy_hash_cost()
        tokens = load_token_service(settings)
        tls, tls_note = load_tls(settings)
        guards = RequestGuards(transport_limits(settings))
        readiness = ServiceStatus()
        trail = AuditTrail(
            store, page_tokens_of(tokens), retention_seconds=settings.audit_retention
        )
        services = build_services(
            settings, store, blobs, accounts, tokens, guards, pending, readiness, trail
        )
        async with pending.running(), trail.running():
            readiness.set(True)
            yield Application(services, guards, tls, tls_note, readiness)
    finally:
        hasher.close()
        await blobs.close()
        await store.close()


def transport_limits(settings: Settings) -> TransportLimits:
    """The wire budgets the settings ask for."""
    return TransportLimits(
        max_connections=settings.max_connections,
        max_connections_per_peer=settings.max_connections_per_peer,
        tls_handshake_timeout=settings.tls_handshake_timeout,
        connection_idle_timeout=settings.connection_idle_timeout,
        max_concurrent_streams=settings.max_concurrent_streams,
        max_frame_size=settings.http2_max_frame_size,
        stream_window_bytes=settings.http2_stream_window,
        connection_window_bytes=settings.http2_connection_window,
        connection_buffer_bytes=settings.connection_buffer_limit,
        server_buffer_bytes=settings.server_buffer_limit,
        request_timeout=settings.request_timeout,
        upload_min_bytes=settings.upload_min_bytes,
        upload_progress_window=settings.upload_progress_window,
    )


def build_accounts(settings: Settings, store: MetadataStore, hasher: PasswordHasher) -> Accounts:
    """Accounts whose sign-ins are throttled as the settings say."""
    limits = SignInLimits(
        max_failures_per_account=settings.sign_in_max_failures_per_account,
        max_failures_per_peer=settings.sign_in_max_failures_per_peer,
        window_seconds=settings.sign_in_failure_window,
    )
    return Accounts(
        store,
        hasher,
        SignInGuard(store, limits),
        allow_signup=settings.allow_signup,
        token_check_interval=settings.token_check_interval,
    )


def build_services(
    settings: Settings,
    store: MetadataStore,
    blobs: BlobStore,
    accounts: Accounts,
    tokens: TokenService,
    guards: RequestGuards,
    pending: PendingUploads,
    readiness: ServiceStatus,
    trail: AuditTrail,
) -> list[IServable]:
    """Every service the server answers, with health and reflection, each method behind the
    per-call plumbing (``rpc``) and, inside it, the request guards (``transport``).

    Health is SERVING while ``readiness`` is set, the database answers and the blob store can
    be written (a full disk makes every upload and most changes fail), NOT_SERVING otherwise.
    """
    page_tokens = page_tokens_of(tokens)
    requests = RequestResults(retention_seconds=settings.request_id_retention)
    catalog = Catalog(store, page_tokens, requests)
    edits = Edits(store)
    versions = Versions(
        store,
        blobs,
        page_tokens,
        max_version_bytes=settings.max_version_size,
        max_uploads=settings.max_uploads,
        max_uploads_per_user=settings.max_uploads_per_user,
        max_uploads_per_peer=settings.max_uploads_per_peer,
        max_downloads=settings.max_downloads,
        max_downloads_per_user=settings.max_downloads_per_user,
        max_downloads_per_peer=settings.max_downloads_per_peer,
        pending=pending,
        requests=requests,
    )
    deletions = Deletions(store, pending)
    metrics.watch(store, versions)
    access_tokens = AccessTokens(
        store,
        page_tokens,
        max_lifetime_seconds=settings.access_token_max_lifetime,
        check_interval=settings.token_check_interval,
    )
    authenticator = Authenticator(tokens, accounts, access_tokens)
    api: list[IServable] = [
        AuthService(accounts, tokens, access_tokens),
        FolderService(catalog, edits, deletions),
        ModelService(catalog, versions, Aliases(store, page_tokens, requests), edits, deletions),
        AuditService(
            trail,
            EventFeed(
                store,
                trail.signal,
                poll_interval=settings.watch_poll_interval,
                limits=SlotLimits(
                    settings.max_watchers,
                    settings.max_watchers_per_user,
                    settings.max_watchers_per_peer,
                ),
            ),
            authenticator.still_stands,
        ),
    ]
    checks = [
        readiness,
        ServiceCheck(_database_answers(store), check_ttl=HEALTH_CHECK_TTL_SECONDS),
        ServiceCheck(_blobs_writable(blobs), check_ttl=HEALTH_CHECK_TTL_SECONDS),
    ]
    health = Health(dict.fromkeys(api, checks))
    guarded = guards.apply(with_reflection([*api, health]))
    return rpc.intercept(guarded, authenticator, trail)


def page_tokens_of(tokens: TokenService) -> PageTokens:
    """Page tokens signed with a secret derived from the token signing key."""
    return PageTokens(page_token_secret(tokens.signing_key))


def _database_answers(store: MetadataStore) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            await store.ping()
        except StorageFault as error:
            log.warning("health check: the database does not answer: %s", error)
            return False
        except Exception:
            log.exception("health check: the database does not answer")
            return False
        return True

    return check


def _blobs_writable(blobs: BlobStore) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            await blobs.check_writable()
        except OSError as error:
            log.warning("health check: the blob store cannot be written: %s", error)
            return False
        return True

    return check


def set_up_process(settings: Settings) -> None:
    """What every server process does first: a private umask, logging, the tuned allocator."""
    # The data directory holds password hashes and every model: readable by this user only.
    os.umask(0o077)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter(LOG_FORMAT_WITH_PID if settings.workers > 1 else LOG_FORMAT))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    # Every call writes an access log line: records leave out what no line shows, as the
    # logging HOWTO's "Optimization" advises (the caller's source line, thread, process pool).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    tune_allocator()


def run(settings: Settings) -> None:
    """Serves in this one process on the event loop the settings name, until a first SIGINT or
    SIGTERM (``--workers 1``; ``workers.supervise`` runs several)."""
    run_on_event_loop(settings.event_loop, serve(settings))


def run_on_event_loop(event_loop: str, main: Coroutine[Any, Any, None]) -> None:
    """Runs ``main`` on ``event_loop`` (uvloop or asyncio) until it returns."""
    if event_loop == "uvloop":
        import uvloop  # only the loop that runs is imported

        uvloop.run(main)
    else:
        asyncio.run(main)


async def serve(settings: Settings) -> None:
    """The server as one process: holds the data directory and serves until a first
    SIGINT/SIGTERM closes it gracefully (opening storage migrates it, as ``prepare_storage``)."""
    with data_dir_claimed(settings), metrics_served(settings.metrics_listen):
        await serve_until_stopped(settings, on_listening=announce_listening)


@contextmanager
def metrics_served(
    listen: ListenAddress | None, registry: CollectorRegistry | None = None
) -> Iterator[None]:
    """Serves ``registry`` (this process's metrics by default) at ``listen`` while the block
    runs; nothing without an address."""
    if listen is None:
        yield
        return
    try:
        endpoint = metrics.Endpoint(listen, registry)
    except OSError as error:
        raise StartupError(
            f"cannot serve metrics on {listen}: {error.strerror or error}"
        ) from error
    try:
        yield
    finally:
        endpoint.close()


def announce_listening(bound: ListenAddress, tls_note: str, event_loop: str) -> None:
    """The log line that says the server accepts connections (tests and scripts wait for it)."""
    log.info("listening on %s (%s; event loop %s)", bound, tls_note, event_loop)


async def serve_until_stopped(
    settings: Settings,
    *,
    on_listening: Callable[[ListenAddress, str, str], None],
    reuse_port: bool = False,
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """Builds the application and serves it until a first of ``stop_signals``; ``on_listening``
    learns the bound address once connections are accepted.

    A signal turns health NOT_SERVING at once; the server keeps serving for the drain period
    (so that load balancers see it and stop sending calls), then stops accepting and closes.
    """
    async with build_application(settings) as app:
        server = Server(app.services, app.guards)
        try:
            listener = open_listener(
                settings.listen.host, settings.listen.port, reuse_port=reuse_port
            )
        except OSError as error:
            raise StartupError(
                f"cannot listen on {settings.listen}: {error.strerror or error}"
            ) from error
        loop = asyncio.get_running_loop()
        drain = _Drain(server, app.readiness, settings.drain_period, loop)
        for signal_number in stop_signals:
            loop.add_signal_handler(signal_number, drain.begin, signal_number)
        try:
            with startup_objects_left_out_of_collections():
                await server.start(listener, app.tls)
                bound = ListenAddress(settings.listen.host, listener.getsockname()[1])
                on_listening(bound, app.tls_note, settings.event_loop)
                await server.wait_closed()
        finally:
            for signal_number in stop_signals:
                loop.remove_signal_handler(signal_number)
            drain.cancel()
    log.info("stopped")


@contextmanager
def startup_objects_left_out_of_collections() -> Iterator[None]:
    """Keeps every object alive once the application is built (modules, the ORM's and
    grpclib's tables, the services) out of reach of the cyclic garbage collector while the
    block runs (``gc.freeze``).

    They live as long as the server, yet each full collection walked all of them on the event
    loop: about 100 ms with every call waiting, each time connections closing asked for one
    (``transport``) and at each automatic full collection. The collector now only walks what
    calls and connections created since. The price: a startup object that later ends up in a
    reference cycle of garbage (a pooled connection replaced after a database restart) stays
    in memory until the server stops. ``gc.freeze`` is process-wide: one server per process.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Drain:
    """Stops a server on the first signal: NOT_SERVING at once, closed after the drain period;
    later signals change nothing (a supervisor may pass on one the terminal sent too)."""

    def __init__(
        self,
        server: Server,
        readiness: ServiceStatus,
        period: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._server = server
        self._readiness = readiness
        self._period = period
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._begun = False

    def begin(self, signal_number: int) -> None:
        if self._begun:
            return
        self._begun = True
        self._readiness.set(False)
        if not self._period:
            self._server.close()
            return
        log.info(
            "%s: health answers NOT_SERVING; closing in %d s",
            signal.Signals(signal_number).name,
            self._period,
        )
        self._timer = self._loop.call_later(self._period, self._server.close)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
