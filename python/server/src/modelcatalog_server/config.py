"""Server settings: one validated object from flags, ``MODELCATALOG_*`` variables and defaults.

A flag wins over its environment variable, which wins over the default. Every option is
declared once, in ``_OPTIONS``, so ``--help``, the environment and validation cannot drift apart.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .domain.access_tokens import MAX_LIFETIME_SECONDS
from .domain.accounts import TOKEN_CHECK_INTERVAL_SECONDS
from .domain.audit_trail import RETENTION_SECONDS as AUDIT_RETENTION_SECONDS
from .domain.events import MAX_WATCHERS, MAX_WATCHERS_PER_PEER, MAX_WATCHERS_PER_USER
from .domain.events import POLL_INTERVAL_SECONDS as WATCH_POLL_INTERVAL_SECONDS
from .domain.requests import DEFAULT_RETENTION_SECONDS as REQUEST_ID_RETENTION_SECONDS
from .domain.sign_in_limits import ACCOUNT_WIDE_FACTOR
from .domain.uploads import (
    MAX_PAUSED_UPLOADS_PER_USER,
    UPLOAD_GRACE_SECONDS,
    UPLOAD_RESUME_SECONDS,
)
from .storage import locations
from .transport._limits import TransportLimits

ENV_PREFIX = "MODELCATALOG_"
#: The wire budgets' defaults are the transport's own.
_WIRE = TransportLimits()
LOG_LEVELS = ("debug", "info", "warning", "error")
EVENT_LOOPS = ("uvloop", "asyncio")
#: Server processes one supervisor runs at most: more than cores only adds memory and contention.
MAX_WORKERS = 64


@dataclass(frozen=True)
class ListenAddress:
    """A host and TCP port to listen on; port 0 lets the system choose a free one."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start, validated."""

    listen: ListenAddress = ListenAddress("127.0.0.1", 50051)
    metrics_listen: ListenAddress | None = None
    data_dir: Path = Path("modelcatalog-data")
    database_url: str = ""
    blob_url: str = ""
    insecure: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    jwt_private_key: Path | None = None
    jwt_previous_keys: tuple[Path, ...] = ()
    jwt_issuer: str = "modelcatalog"
    token_lifetime: int = 3600
    token_check_interval: int = int(TOKEN_CHECK_INTERVAL_SECONDS)
    access_token_max_lifetime: int = MAX_LIFETIME_SECONDS
    bcrypt_cost: int = 12
    sign_in_max_failures_per_account: int = 10
    sign_in_max_failures_per_peer: int = 50
    sign_in_failure_window: int = 900
    allow_signup: bool = True
    max_version_size: int = 100 << 30
    log_level: str = "info"
    event_loop: str = "uvloop"
    workers: int = 1
    drain_period: int = 0
    max_connections: int = _WIRE.max_connections
    max_connections_per_peer: int = _WIRE.max_connections_per_peer
    tls_handshake_timeout: int = int(_WIRE.tls_handshake_timeout)
    connection_idle_timeout: int = int(_WIRE.connection_idle_timeout)
    max_concurrent_streams: int = _WIRE.max_concurrent_streams
    http2_max_frame_size: int = _WIRE.max_frame_size
    http2_stream_window: int = _WIRE.stream_window_bytes
    http2_connection_window: int = _WIRE.connection_window_bytes
    connection_buffer_limit: int = _WIRE.connection_buffer_bytes
    server_buffer_limit: int = _WIRE.server_buffer_bytes
    request_timeout: int = int(_WIRE.request_timeout)
    upload_min_bytes: int = _WIRE.upload_min_bytes
    upload_progress_window: int = int(_WIRE.upload_progress_window)
    upload_grace_period: int = UPLOAD_GRACE_SECONDS
    upload_resume_period: int = UPLOAD_RESUME_SECONDS
    max_paused_uploads_per_user: int = MAX_PAUSED_UPLOADS_PER_USER
    request_id_retention: int = REQUEST_ID_RETENTION_SECONDS
    max_uploads: int = 128
    max_uploads_per_user: int = 32
    max_uploads_per_peer: int = 32
    max_downloads: int = 256
    max_downloads_per_user: int = 32
    max_downloads_per_peer: int = 32
    audit_retention: int = AUDIT_RETENTION_SECONDS
    watch_poll_interval: int = WATCH_POLL_INTERVAL_SECONDS
    max_watchers: int = MAX_WATCHERS
    max_watchers_per_user: int = MAX_WATCHERS_PER_USER
    max_watchers_per_peer: int = MAX_WATCHERS_PER_PEER


def parse_listen_address(text: str) -> ListenAddress:
    """Parses ``HOST:PORT``, with IPv6 hosts in brackets (``[::1]:50051``)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:50051)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{host!r} in {text!r} is not an IPv6 address"
            ) from None
    elif ":" in host:
        raise argparse.ArgumentTypeError(
            f"write the IPv6 address in {text!r} in brackets: [{host}]:PORT"
        )
    if not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"the port in {text!r} must be a number from 0 to 65535")
    return ListenAddress(host, int(port_text))


def _optional_listen_address(text: str) -> ListenAddress | None:
    return parse_listen_address(text) if text.strip() else None


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _event_loop(text: str) -> str:
    loop = text.strip().lower()
    if loop not in EVENT_LOOPS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(EVENT_LOOPS)}")
    return loop


def _database_url(text: str) -> str:
    if text.strip():
        try:
            locations.database_url(text.strip())
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return text.strip()


def _blob_url(text: str) -> str:
    if text.strip():
        try:
            locations.blob_location(text.strip())
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return text.strip()


def _optional_path(text: str) -> Path | None:
    return Path(text).expanduser() if text.strip() else None


def _paths(text: str) -> tuple[Path, ...]:
    return tuple(Path(part.strip()).expanduser() for part in text.split(",") if part.strip())


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> int:
    """Seconds from ``3600``, ``90s``, ``30m``, ``1h`` or ``1d``, whatever their number."""
    value = text.strip().lower()
    unit = _DURATION_UNITS.get(value[-1:], 0)
    number = value[:-1] if unit else value
    if not number.isdigit() or len(number) > 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 3600, 30m or 1h")
    return int(number) * (unit or 1)


def parse_duration(text: str, *, max_days: int = 30) -> int:
    """Seconds from ``3600``, ``90s``, ``30m``, ``1h`` or ``1d``; at least 1 s, at most
    ``max_days`` days."""
    seconds = _seconds(text)
    if not 1 <= seconds <= max_days * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} must be from 1 second to {max_days} days")
    return seconds


def _long_duration(text: str) -> int:
    """Seconds from 1 s to 10 years (3650 days)."""
    return parse_duration(text, max_days=3650)


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from ``1048576``, ``512K``, ``100M``, ``20G`` or ``1T`` (binary units); at least 1."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = value[-1:] if value[-1:] in _SIZE_UNITS else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 500M, 20G or 1T")
    return int(number) * _SIZE_UNITS[unit]


def _sized_within(low: int, high: int, what: str) -> Callable[[str], int]:
    """A size parser (``parse_size``) that accepts ``low`` to ``high`` bytes only."""

    def parse(text: str) -> int:
        size = parse_size(text)
        if not low <= size <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}: from {low} to {high} bytes")
        return size

    return parse


#: RFC 9113: SETTINGS_MAX_FRAME_SIZE is 2^14 to 2^24-1; windows are at most 2^31-1, and the
#: stream window at least the protocol's initial 65 535 bytes.
_frame_size = _sized_within(1 << 14, (1 << 24) - 1, "an HTTP/2 frame size")
_window = _sized_within(65_535, (1 << 31) - 1, "an HTTP/2 flow-control window")


def _short_duration(text: str) -> int:
    """Seconds from 0 to 300."""
    seconds = _seconds(text)
    if seconds > 300:
        raise argparse.ArgumentTypeError(f"{text!r} must be from 0 to 300 seconds")
    return seconds


def _poll_interval(text: str) -> int:
    """Seconds from 1 to 60."""
    seconds = _seconds(text)
    if not 1 <= seconds <= 60:
        raise argparse.ArgumentTypeError(f"{text!r} must be from 1 to 60 seconds")
    return seconds


def _workers(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of server processes from 1 to {MAX_WORKERS}"
        )
    return int(text)


def _bcrypt_cost(text: str) -> int:
    if not text.strip().isdigit() or not 4 <= int(text) <= 31:
        raise argparse.ArgumentTypeError(f"{text!r} is not a bcrypt cost from 4 to 31")
    return int(text)


def _count(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 1000000")
    return int(text)


def _issuer(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the token issuer must not be empty")
    return text.strip()


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(text: str) -> bool:
    """``true``/``false`` and their usual spellings, for boolean environment variables."""
    value = text.strip().lower()
    if value not in _TRUE | _FALSE:
        raise argparse.ArgumentTypeError(f"{text!r} is not true or false")
    return value in _TRUE


@dataclass(frozen=True)
class _Option:
    field: str
    flag: str
    parse: Callable[[str], Any]
    help: str
    metavar: str = ""

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()

    @property
    def is_switch(self) -> bool:
        return self.parse is parse_bool


_OPTIONS = (
    _Option(
        "listen",
        "--listen",
        parse_listen_address,
        "address to serve gRPC on; IPv6 in brackets, port 0 picks a free port",
        "HOST:PORT",
    ),
    _Option(
        "metrics_listen",
        "--metrics-listen",
        _optional_listen_address,
        "address to serve Prometheus metrics on, as plain HTTP at /metrics with no "
        "authentication: keep it on loopback or a private network; port 0 picks a free port; "
        "empty: no metrics endpoint",
        "HOST:PORT",
    ),
    _Option(
        "data_dir",
        "--data-dir",
        Path,
        "directory for the database, blobs, generated keys and certificates",
        "DIR",
    ),
    _Option(
        "database_url",
        "--database-url",
        _database_url,
        "where the metadata lives: sqlite:///PATH or "
        "postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE; empty: SQLite in DATA_DIR",
        "URL",
    ),
    _Option(
        "blob_url",
        "--blob-url",
        _blob_url,
        "where version files live: file:///PATH (or a directory) or s3://BUCKET/PREFIX (endpoint, "
        "region and credentials from the usual AWS_* settings); empty: DATA_DIR/blobs",
        "URL",
    ),
    _Option(
        "insecure",
        "--insecure",
        parse_bool,
        "serve plaintext HTTP/2 without TLS; only for a trusted network or a proxy that does TLS",
    ),
    _Option(
        "tls_cert",
        "--tls-cert",
        _optional_path,
        "PEM certificate chain; without it a self-signed certificate for localhost is created "
        "in DATA_DIR/tls/",
        "FILE",
    ),
    _Option("tls_key", "--tls-key", _optional_path, "PEM private key of --tls-cert", "FILE"),
    _Option(
        "jwt_private_key",
        "--jwt-private-key",
        _optional_path,
        "PEM RSA private key (2048 bits or more) that signs access tokens; without it one is "
        "created in DATA_DIR/jwt/",
        "FILE",
    ),
    _Option(
        "jwt_previous_keys",
        "--jwt-previous-keys",
        _paths,
        "comma-separated PEM RSA keys (public or private) of earlier signing keys, whose tokens "
        "stay valid until they expire",
        "FILE,...",
    ),
    _Option("jwt_issuer", "--jwt-issuer", _issuer, "the iss and aud claim of tokens", "NAME"),
    _Option(
        "token_lifetime",
        "--token-lifetime",
        parse_duration,
        "how long an access token is valid: seconds, or a number with s, m, h or d",
        "DURATION",
    ),
    _Option(
        "token_check_interval",
        "--token-check-interval",
        _short_duration,
        "how long a token found not revoked is trusted before the database is asked again, "
        "0 to 300 seconds; a sign-out takes effect at once on the server that handled it, and "
        "within this interval on other servers sharing the database; 0 asks on every call",
        "DURATION",
    ),
    _Option(
        "access_token_max_lifetime",
        "--access-token-max-lifetime",
        _long_duration,
        "the longest expiry a user may give an access token made for a machine "
        "(CreateAccessToken), up to 3650 days",
        "DURATION",
    ),
    _Option(
        "bcrypt_cost",
        "--bcrypt-cost",
        _bcrypt_cost,
        "bcrypt work factor for new password hashes, 4 to 31; older hashes are rehashed to it "
        "at their next sign-in",
        "N",
    ),
    _Option(
        "sign_in_max_failures_per_account",
        "--sign-in-max-failures-per-account",
        _count,
        "failed sign-ins for one username from one address within the failure window before "
        f"that address is refused (SIGN_IN_THROTTLED) for it; {ACCOUNT_WIDE_FACTOR} times as "
        "many from all addresses together throttle the username everywhere",
        "N",
    ),
    _Option(
        "sign_in_max_failures_per_peer",
        "--sign-in-max-failures-per-peer",
        _count,
        "failed sign-ins from one address (IPv6: one /64) for any usernames within the failure "
        "window before the address is refused (SIGN_IN_THROTTLED)",
        "N",
    ),
    _Option(
        "sign_in_failure_window",
        "--sign-in-failure-window",
        parse_duration,
        "how long a failed sign-in counts toward the limits: seconds, or a number with s, m, h "
        "or d",
        "DURATION",
    ),
    _Option(
        "allow_signup",
        "--allow-signup",
        parse_bool,
        "let anyone create an account with SignUp",
    ),
    _Option(
        "max_version_size",
        "--max-version-size",
        parse_size,
        "largest file a version may have, in bytes or with K, M, G or T (powers of 1024)",
        "SIZE",
    ),
    _Option("log_level", "--log-level", _log_level, f"one of {', '.join(LOG_LEVELS)}", "LEVEL"),
    _Option(
        "event_loop",
        "--event-loop",
        _event_loop,
        "uvloop (libuv, faster TLS and socket I/O) or asyncio (the standard library's)",
        "LOOP",
    ),
    _Option(
        "workers",
        "--workers",
        _workers,
        f"server processes serving the one --listen port, 1 to {MAX_WORKERS}; above 1 a "
        "supervisor prepares the data directory once, starts them, restarts one that crashes "
        "and passes SIGTERM and SIGINT on to them",
        "N",
    ),
    _Option(
        "drain_period",
        "--drain-period",
        _short_duration,
        "after SIGTERM or SIGINT, how long health answers NOT_SERVING while calls are still "
        "served, so that load balancers stop sending new ones, before the server stops "
        "accepting and closes; 0 to 300 seconds, 0 closes at once",
        "DURATION",
    ),
    _Option(
        "max_connections",
        "--max-connections",
        _count,
        "connections served at once, TLS handshakes included; more are closed at once "
        "(lowered to fit the file-descriptor limit)",
        "N",
    ),
    _Option(
        "max_connections_per_peer",
        "--max-connections-per-peer",
        _count,
        "connections one client address may hold at once; more from it are closed at once "
        "(behind a TCP proxy that hides client addresses, raise it to --max-connections)",
        "N",
    ),
    _Option(
        "tls_handshake_timeout",
        "--tls-handshake-timeout",
        parse_duration,
        "time a new connection has to complete its TLS handshake",
        "DURATION",
    ),
    _Option(
        "connection_idle_timeout",
        "--connection-idle-timeout",
        parse_duration,
        "a connection with no call in progress for this long is closed (GOAWAY)",
        "DURATION",
    ),
    _Option(
        "max_concurrent_streams",
        "--max-concurrent-streams",
        _count,
        "calls in progress on one connection; the next one is refused (REFUSED_STREAM) and "
        "clients retry it",
        "N",
    ),
    _Option(
        "http2_max_frame_size",
        "--http2-max-frame-size",
        _frame_size,
        "largest HTTP/2 DATA frame a client may send (SETTINGS_MAX_FRAME_SIZE), 16K to 16M-1; "
        "other frames stay within 16 KiB",
        "SIZE",
    ),
    _Option(
        "http2_stream_window",
        "--http2-stream-window",
        _window,
        "bytes a client may send on one call before the server has read them (HTTP/2 "
        "flow-control window)",
        "SIZE",
    ),
    _Option(
        "http2_connection_window",
        "--http2-connection-window",
        _window,
        "bytes a client may send on one connection before the server has read them: what one "
        "connection's unread uploads hold in memory at most",
        "SIZE",
    ),
    _Option(
        "connection_buffer_limit",
        "--connection-buffer-limit",
        parse_size,
        "bytes of partly received request messages one connection may hold",
        "SIZE",
    ),
    _Option(
        "server_buffer_limit",
        "--server-buffer-limit",
        parse_size,
        "bytes of partly received request messages all connections together may hold",
        "SIZE",
    ),
    _Option(
        "request_timeout",
        "--request-timeout",
        parse_duration,
        "time a call's request message (an upload's header) has to arrive",
        "DURATION",
    ),
    _Option(
        "upload_min_bytes",
        "--upload-min-bytes",
        parse_size,
        "bytes an upload must deliver in every --upload-progress-window, or it is abandoned",
        "SIZE",
    ),
    _Option(
        "upload_progress_window",
        "--upload-progress-window",
        parse_duration,
        "the interval in which an upload must deliver --upload-min-bytes, and a download's "
        "client must accept each response message (1 MiB)",
        "DURATION",
    ),
    _Option(
        "upload_grace_period",
        "--upload-grace-period",
        parse_duration,
        "how long an upload's server process may stay silent before any server sharing the "
        "database treats the upload as abandoned and deletes what it stored",
        "DURATION",
    ),
    _Option(
        "upload_resume_period",
        "--upload-resume-period",
        parse_duration,
        "how long the bytes of an upload made with a request_id whose stream broke are kept "
        "for the client to resume it, before any server sharing the database deletes them",
        "DURATION",
    ),
    _Option(
        "max_paused_uploads_per_user",
        "--max-paused-uploads-per-user",
        _count,
        "broken uploads one user may keep for resuming; pausing one more deletes the user's oldest",
        "N",
    ),
    _Option(
        "request_id_retention",
        "--request-id-retention",
        parse_duration,
        "how long the result of a create, upload or alias move made with a request_id is kept, "
        "so that a retry with the same id returns it instead of acting twice",
        "DURATION",
    ),
    _Option("max_uploads", "--max-uploads", _count, "uploads in progress at once", "N"),
    _Option(
        "max_uploads_per_user",
        "--max-uploads-per-user",
        _count,
        "uploads one user may have in progress at once",
        "N",
    ),
    _Option(
        "max_uploads_per_peer",
        "--max-uploads-per-peer",
        _count,
        "uploads one network address may have in progress at once",
        "N",
    ),
    _Option("max_downloads", "--max-downloads", _count, "downloads in progress at once", "N"),
    _Option(
        "max_downloads_per_user",
        "--max-downloads-per-user",
        _count,
        "downloads one user may have in progress at once",
        "N",
    ),
    _Option(
        "max_downloads_per_peer",
        "--max-downloads-per-peer",
        _count,
        "downloads one network address may have in progress at once",
        "N",
    ),
    _Option(
        "audit_retention",
        "--audit-retention",
        _long_duration,
        "how long audit events (every change, download and sign-in) are kept, and with them "
        "the events a WatchEvents stream can resume from; older ones are pruned",
        "DURATION",
    ),
    _Option(
        "watch_poll_interval",
        "--watch-poll-interval",
        _poll_interval,
        "how often a WatchEvents stream asks the database for new events, 1 to 60 seconds "
        "(events recorded by the same server process reach its streams at once)",
        "DURATION",
    ),
    _Option("max_watchers", "--max-watchers", _count, "WatchEvents streams open at once", "N"),
    _Option(
        "max_watchers_per_user",
        "--max-watchers-per-user",
        _count,
        "WatchEvents streams one user may have open at once",
        "N",
    ),
    _Option(
        "max_watchers_per_peer",
        "--max-watchers-per-peer",
        _count,
        "WatchEvents streams one network address may have open at once",
        "N",
    ),
)


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value) or "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command-line parser, with defaults taken from ``environ`` where it sets them."""
    parser = argparse.ArgumentParser(
        prog="modelcatalog-server",
        description=(
            "Serve the modelcatalog gRPC API. Every option can also be set with the environment "
            "variable named in its help; a flag wins over the variable."
        ),
    )
    defaults = Settings()
    for option in _OPTIONS:
        default = getattr(defaults, option.field)
        help_text = f"{option.help} (env {option.env}; default {_shown(default)})"
        raw = environ.get(option.env)
        if option.is_switch:
            parser.add_argument(
                option.flag,
                dest=option.field,
                action=argparse.BooleanOptionalAction,
                default=raw if raw is not None else default,
                help=help_text,
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.field,
                type=option.parse,
                default=_NOT_GIVEN,
                metavar=option.metavar,
                help=help_text,
            )
    return parser


#: The parsed value of an option not given as a flag: its variable's or its default's instead.
_NOT_GIVEN: Any = object()


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Builds the settings from flags and environment; exits with status 2 on bad input."""
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    namespace = parser.parse_args(argv)
    values = {option.field: getattr(namespace, option.field) for option in _OPTIONS}
    defaults = Settings()
    for option in _OPTIONS:
        value = values[option.field]
        if value is _NOT_GIVEN and option.env not in environ:
            values[option.field] = getattr(defaults, option.field)
        elif value is _NOT_GIVEN or (option.is_switch and isinstance(value, str)):
            try:
                parse = parse_bool if option.is_switch else option.parse
                values[option.field] = parse(environ[option.env])
            except (argparse.ArgumentTypeError, ValueError) as error:
                parser.error(f"{option.env}: {error}")  # named as the user set it
    settings = Settings(**values)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        parser.error("--tls-cert and --tls-key go together: give both or neither")
    if settings.insecure and settings.tls_cert is not None:
        parser.error("--insecure and --tls-cert contradict each other: choose one")
    return settings
