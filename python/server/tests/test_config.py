"""Settings come from flags, then MODELCATALOG_* variables, then defaults; bad values stop."""

from pathlib import Path

import pytest

from modelcatalog_server.app import storage_locations, uses_data_dir
from modelcatalog_server.config import ListenAddress, Settings, parse_listen_address, parse_settings


def test_defaults_listen_on_loopback_only() -> None:
    """With no flag and no variable the server listens on 127.0.0.1:50051, loopback only."""
    assert parse_settings([], {}) == Settings()
    assert Settings().listen == ListenAddress("127.0.0.1", 50051)


def test_environment_variable_sets_an_option() -> None:
    """MODELCATALOG_LISTEN and MODELCATALOG_LOG_LEVEL are read when no flag is given."""
    settings = parse_settings(
        [], {"MODELCATALOG_LISTEN": "0.0.0.0:7000", "MODELCATALOG_LOG_LEVEL": "DEBUG"}
    )
    assert settings.listen == ListenAddress("0.0.0.0", 7000)
    assert settings.log_level == "debug"


def test_flag_wins_over_environment_variable() -> None:
    """A flag overrides the variable for the same option."""
    settings = parse_settings(["--listen", "127.0.0.1:0"], {"MODELCATALOG_LISTEN": "0.0.0.0:7000"})
    assert settings.listen == ListenAddress("127.0.0.1", 0)


@pytest.mark.parametrize(
    ("text", "address", "shown"),
    [
        ("[::1]:50051", ListenAddress("::1", 50051), "[::1]:50051"),
        ("localhost:0", ListenAddress("localhost", 0), "localhost:0"),
        (" 10.0.0.1:65535 ", ListenAddress("10.0.0.1", 65535), "10.0.0.1:65535"),
    ],
)
def test_listen_address_forms(text: str, address: ListenAddress, shown: str) -> None:
    """IPv4, host names and bracketed IPv6 parse, and print back in the same form."""
    assert parse_listen_address(text) == address
    assert str(address) == shown


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "50051"], "is not HOST:PORT"),
        (["--listen", "::1:50051"], "in brackets"),
        (["--listen", "[nothost]:1"], "is not an IPv6 address"),
        (["--listen", "127.0.0.1:70000"], "from 0 to 65535"),
        (["--listen", "127.0.0.1:http"], "from 0 to 65535"),
        (["--log-level", "loud"], "is not one of debug, info, warning, error"),
        (["--database-url", "mysql://db/catalog"], "unsupported database 'mysql'"),
        (["--database-url", "postgresql+psycopg://h/db"], "through asyncpg"),
        (["--database-url", "postgresql+asyncpg://h"], "needs a database name"),
        (["--database-url", "sqlite://"], "needs a file path"),
        (["--database-url", "not a url"], "is not a database URL"),
        (["--blob-url", "s3:///prefix"], "names no valid bucket"),
        (["--blob-url", "s3://bucket/a/../b"], "not a plain name"),
        (["--blob-url", "ftp://host/blobs"], "unsupported blob store"),
        (["--upload-grace-period", "0"], "from 1 second to 30 days"),
        (["--workers", "0"], "is not a number of server processes from 1 to 64"),
        (["--workers", "65"], "is not a number of server processes from 1 to 64"),
        (["--workers", "two"], "is not a number of server processes from 1 to 64"),
        (["--drain-period", "301"], "must be from 0 to 300 seconds"),
        (["--watch-poll-interval", "0"], "must be from 1 to 60 seconds"),
        (["--watch-poll-interval", "61s"], "must be from 1 to 60 seconds"),
        (["--metrics-listen", "9100"], "is not HOST:PORT"),
    ],
)
def test_bad_values_exit_with_a_message_naming_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value exits with status 2 and says which option is wrong and why."""
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(argv, {})
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {argv[0]}" in error
    assert message in error


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MODELCATALOG_LISTEN", "nowhere", "is not HOST:PORT"),
        ("MODELCATALOG_BCRYPT_COST", "99", "bcrypt"),
        ("MODELCATALOG_INSECURE", "maybe", "maybe"),
    ],
)
def test_bad_environment_value_is_rejected_naming_the_variable(
    variable: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed variable stops the start as a malformed flag would, and the message names
    the variable the user set, not the flag they did not use."""
    with pytest.raises(SystemExit) as exit_info:
        parse_settings([], {variable: value})
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"{variable}: " in error
    assert message in error
    assert "argument --" not in error


def test_a_flag_wins_over_a_bad_environment_value() -> None:
    """The variable is not read when its flag is given."""
    settings = parse_settings(["--bcrypt-cost", "10"], {"MODELCATALOG_BCRYPT_COST": "99"})
    assert settings.bcrypt_cost == 10


def test_help_names_every_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    """--help documents each option together with its variable and default."""
    with pytest.raises(SystemExit):
        parse_settings(["--help"], {})
    text = " ".join(capsys.readouterr().out.split())
    assert "MODELCATALOG_LISTEN; default 127.0.0.1:50051" in text
    assert "MODELCATALOG_LOG_LEVEL; default info" in text


def test_storage_defaults_to_the_data_directory_and_takes_urls() -> None:
    """Without URLs, SQLite and blobs live in the data directory, which the server then locks;
    with both URLs elsewhere, it does not."""
    embedded = parse_settings(["--data-dir", "/srv/mc"], {})
    database, blobs = storage_locations(embedded)
    assert (database, blobs.directory) == (
        "sqlite:////srv/mc/catalog.sqlite3",
        Path("/srv/mc/blobs"),
    )
    assert uses_data_dir(embedded)
    shared = parse_settings(
        ["--blob-url", "file:///mnt/models"],
        {"MODELCATALOG_DATABASE_URL": "postgresql://catalog@db.internal/catalog"},
    )
    database, blobs = storage_locations(shared)
    assert database == "postgresql://catalog@db.internal/catalog"
    assert blobs.directory == Path("/mnt/models")
    assert not uses_data_dir(shared)


def test_security_defaults() -> None:
    """TLS on, bcrypt cost 12, sign-in throttled after 10 failures per username and address or
    50 per address in 15 minutes, one-hour tokens and the data directory in the working
    directory."""
    settings = parse_settings([], {})
    assert settings.insecure is False
    assert settings.bcrypt_cost == 12
    assert settings.sign_in_max_failures_per_account == 10
    assert settings.sign_in_max_failures_per_peer == 50
    assert settings.sign_in_failure_window == 900
    assert settings.token_lifetime == 3600
    assert settings.token_check_interval == 5
    assert str(settings.data_dir) == "modelcatalog-data"


def test_one_process_that_closes_at_once_by_default() -> None:
    """Without --workers the server is one process, and a signal closes it without a drain."""
    settings = parse_settings([], {})
    assert settings.workers == 1
    assert settings.drain_period == 0


def test_no_metrics_endpoint_by_default() -> None:
    """Without --metrics-listen nothing but the gRPC port is opened."""
    assert parse_settings([], {}).metrics_listen is None


def test_transfer_defaults() -> None:
    """HTTP/2 DATA frames of up to 2 MiB, bounded 4 MiB flow-control windows, uvloop."""
    settings = parse_settings([], {})
    assert settings.http2_max_frame_size == 2 << 20
    assert settings.http2_stream_window == 4 << 20
    assert settings.http2_connection_window == 4 << 20
    assert settings.event_loop == "uvloop"


@pytest.mark.parametrize(
    ("environ", "field", "value"),
    [
        ({"MODELCATALOG_ALLOW_SIGNUP": "off"}, "allow_signup", False),
        ({"MODELCATALOG_INSECURE": "TRUE"}, "insecure", True),
        ({"MODELCATALOG_TOKEN_LIFETIME": "15m"}, "token_lifetime", 900),
        ({"MODELCATALOG_TOKEN_LIFETIME": "2d"}, "token_lifetime", 172800),
        ({"MODELCATALOG_TOKEN_CHECK_INTERVAL": "0"}, "token_check_interval", 0),
        ({"MODELCATALOG_TOKEN_CHECK_INTERVAL": "1m"}, "token_check_interval", 60),
        ({"MODELCATALOG_BCRYPT_COST": "4"}, "bcrypt_cost", 4),
        (
            {"MODELCATALOG_SIGN_IN_MAX_FAILURES_PER_ACCOUNT": "5"},
            "sign_in_max_failures_per_account",
            5,
        ),
        (
            {"MODELCATALOG_SIGN_IN_MAX_FAILURES_PER_PEER": "200"},
            "sign_in_max_failures_per_peer",
            200,
        ),
        ({"MODELCATALOG_SIGN_IN_FAILURE_WINDOW": "1h"}, "sign_in_failure_window", 3600),
        ({"MODELCATALOG_HTTP2_MAX_FRAME_SIZE": "16K"}, "http2_max_frame_size", 16384),
        ({"MODELCATALOG_HTTP2_STREAM_WINDOW": "1M"}, "http2_stream_window", 1 << 20),
        ({"MODELCATALOG_HTTP2_CONNECTION_WINDOW": "8M"}, "http2_connection_window", 8 << 20),
        ({"MODELCATALOG_EVENT_LOOP": "AsyncIO"}, "event_loop", "asyncio"),
        ({"MODELCATALOG_WORKERS": "64"}, "workers", 64),
        ({"MODELCATALOG_DRAIN_PERIOD": "0"}, "drain_period", 0),
        ({"MODELCATALOG_DRAIN_PERIOD": "5m"}, "drain_period", 300),
        ({"MODELCATALOG_METRICS_LISTEN": ""}, "metrics_listen", None),
        (
            {"MODELCATALOG_METRICS_LISTEN": "[::1]:9100"},
            "metrics_listen",
            ListenAddress("::1", 9100),
        ),
    ],
)
def test_typed_environment_values(environ: dict[str, str], field: str, value: object) -> None:
    """Booleans, durations and numbers parse from their usual spellings."""
    assert getattr(parse_settings([], environ), field) == value


def test_switch_flags_win_over_environment() -> None:
    """--no-allow-signup turns sign-up off even when the variable turns it on."""
    settings = parse_settings(["--no-allow-signup"], {"MODELCATALOG_ALLOW_SIGNUP": "true"})
    assert settings.allow_signup is False


def test_previous_keys_are_a_comma_separated_list() -> None:
    """Several previous verification keys can be given at once."""
    settings = parse_settings(["--jwt-previous-keys", "old.pem, older.pem"], {})
    assert [str(path) for path in settings.jwt_previous_keys] == ["old.pem", "older.pem"]


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--bcrypt-cost", "3"], {}, "from 4 to 31"),
        (["--sign-in-max-failures-per-account", "0"], {}, "from 1 to 1000000"),
        (["--sign-in-max-failures-per-peer", "many"], {}, "from 1 to 1000000"),
        (["--sign-in-failure-window", "0"], {}, "from 1 second to 30 days"),
        (["--token-lifetime", "0"], {}, "from 1 second to 30 days"),
        (["--token-lifetime", "1w"], {}, "is not a duration"),
        (["--token-check-interval", "6m"], {}, "from 0 to 300 seconds"),
        (["--token-check-interval", "-1"], {}, "is not a duration"),
        (["--tls-cert", "a.pem"], {}, "--tls-cert and --tls-key go together"),
        (["--insecure", "--tls-cert", "a", "--tls-key", "b"], {}, "contradict"),
        ([], {"MODELCATALOG_INSECURE": "maybe"}, "MODELCATALOG_INSECURE: 'maybe' is not true"),
        (["--http2-max-frame-size", "16383"], {}, "from 16384 to 16777215 bytes"),
        (["--http2-max-frame-size", "16M"], {}, "from 16384 to 16777215 bytes"),
        (["--http2-stream-window", "65534"], {}, "from 65535 to 2147483647 bytes"),
        (["--http2-connection-window", "2G"], {}, "from 65535 to 2147483647 bytes"),
        (["--event-loop", "trio"], {}, "is not one of uvloop, asyncio"),
    ],
)
def test_inconsistent_or_out_of_range_settings_stop_the_start(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Out-of-range numbers and contradicting options exit with status 2 and say why."""
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(argv, environ)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
