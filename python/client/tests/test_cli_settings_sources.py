"""Which saved login a server address finds, and errors that name where a bad setting came from."""

import json
import ssl
from pathlib import Path

import pytest
from cli_testing import CliHarness

from modelcatalog import StatusCode, Unavailable
from modelcatalog.cli import _context as context
from modelcatalog.cli._config import DEFAULT_SERVER, Settings, server_identity
from modelcatalog.cli._errors import ExitCode, from_exception

pytest_plugins = ["cli_fixtures"]


@pytest.fixture
def real_client(new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands open the SDK's real client, which checks the address and the CA certificate."""
    new_harness.connect = context.connect


def _error_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("error: "), stderr
    return stderr


@pytest.mark.parametrize(
    "address",
    [
        "localhost:50051",
        "LOCALHOST:50051",
        "localhost.:50051",
        "[::1]:50051",
        "127.0.0.1:050051",
        "[::ffff:127.0.0.1]:50051",
    ],
)
def test_a_login_is_found_under_other_addresses_of_the_same_server(
    new_harness: CliHarness, address: str
) -> None:
    """A login at 127.0.0.1:50051 sends its token when the command names the server otherwise."""
    assert new_harness.login().exit_code == 0
    result = new_harness.run("--server", address, "whoami")
    assert result.exit_code == 0, result.stderr
    assert new_harness.backend.settings[-1].server == address
    assert new_harness.backend.authorization[-1] == "Bearer tok-alice"


def test_a_login_is_not_sent_to_another_server_or_port(new_harness: CliHarness) -> None:
    """Another host or another port of the same host is another server: no token is sent."""
    assert new_harness.login().exit_code == 0
    for address in ("localhost:50052", "models.test:50051", "10.0.0.1:50051"):
        new_harness.run("--server", address, "whoami")
        assert new_harness.backend.authorization[-1] is None, address


def test_a_config_file_of_an_earlier_version_finds_its_login(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file saved by an earlier CLI, keyed by the address as typed, still logs in by identity."""
    new_harness.config_file.parent.mkdir(parents=True)
    saved = {"server": "LocalHost:50051", "ca_cert": None, "insecure": False}
    new_harness.config_file.write_text(
        json.dumps(saved | {"username": "alice", "token": "tok-old"})
    )
    monkeypatch.setenv("MODELCATALOG_SERVER", DEFAULT_SERVER)
    assert new_harness.run("whoami").exit_code == 0
    assert new_harness.backend.authorization[-1] == "Bearer tok-old"


def test_server_identity_normalises_without_asking_dns() -> None:
    """Case, trailing dots, port spelling, IPv6 spelling and loopback aliases are one server."""
    assert server_identity("Models.Example.COM.:443") == server_identity("models.example.com:443")
    assert server_identity("[2001:DB8:0::1]:7") == server_identity("[2001:db8::1]:7")
    assert server_identity("127.0.0.2:1") == server_identity("app.localhost:1") == "localhost:1"
    assert server_identity("localhost") == server_identity(DEFAULT_SERVER)  # the default port
    assert server_identity("a.test:1") != server_identity("b.test:1")
    assert server_identity("a.test:1") != server_identity("a.test:2")
    assert server_identity("10.0.0.1:1") != server_identity("localhost:1")


def test_missing_ca_certificate_from_the_environment_names_the_variable(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MODELCATALOG_CA_CERT naming no file is reported as that variable's fault (exit 2)."""
    missing = new_harness.tmp_path / "missing.crt"
    monkeypatch.setenv("MODELCATALOG_CA_CERT", str(missing))
    result = new_harness.run("whoami")
    assert result.exit_code == ExitCode.USAGE
    line = _error_line(result.stderr)
    assert f"MODELCATALOG_CA_CERT={missing} does not exist" in line
    assert "--ca-cert" not in line
    assert new_harness.backend.settings == []


def test_missing_ca_certificate_from_the_config_file_names_the_file(
    new_harness: CliHarness,
) -> None:
    """A saved CA certificate that was deleted is reported as the config file's entry."""
    new_harness.config_file.parent.mkdir(parents=True)
    new_harness.config_file.write_text(json.dumps({"ca_cert": "/gone/server.crt"}))
    result = new_harness.run("whoami")
    assert result.exit_code == ExitCode.USAGE
    line = _error_line(result.stderr)
    assert f"/gone/server.crt ('ca_cert' in {new_harness.config_file}) does not exist" in line
    assert "log in again with --ca-cert" in line


@pytest.mark.usefixtures("real_client")
@pytest.mark.parametrize("source", ["flag", "environment", "config file"])
def test_ca_certificate_that_is_no_pem_names_its_source(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """A CA certificate file that holds no certificate is blamed on the flag, variable or file."""
    bad = new_harness.tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    args = ["whoami"]
    if source == "flag":
        args += ["--ca-cert", str(bad)]
        origin = "--ca-cert: "
    elif source == "environment":
        monkeypatch.setenv("MODELCATALOG_CA_CERT", str(bad))
        origin = "MODELCATALOG_CA_CERT: "
    else:
        new_harness.config_file.parent.mkdir(parents=True)
        new_harness.config_file.write_text(json.dumps({"ca_cert": str(bad)}))
        origin = f"'ca_cert' in {new_harness.config_file}: "
    result = new_harness.run(*args)
    assert result.exit_code == ExitCode.USAGE
    assert f"error: {origin}cannot load the CA certificate {bad}" in _error_line(result.stderr)


@pytest.mark.usefixtures("real_client")
@pytest.mark.parametrize("source", ["flag", "environment", "config file"])
def test_malformed_server_address_names_its_source(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """An address without a port is blamed on --server, MODELCATALOG_SERVER or the file."""
    args = ["whoami", "--insecure"]
    if source == "flag":
        args += ["--server", "no-port"]
        origin = "--server: "
    elif source == "environment":
        monkeypatch.setenv("MODELCATALOG_SERVER", "no-port")
        origin = "MODELCATALOG_SERVER: "
    else:
        new_harness.config_file.parent.mkdir(parents=True)
        new_harness.config_file.write_text(json.dumps({"server": "no-port"}))
        origin = f"'server' in {new_harness.config_file}: "
    result = new_harness.run(*args)
    assert result.exit_code == ExitCode.USAGE
    assert f"error: {origin}expected a target 'host:port'" in _error_line(result.stderr)


def test_unusable_token_names_the_variable_or_the_file_never_the_token(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token that cannot be sent is blamed on MODELCATALOG_TOKEN or the file, not echoed."""
    monkeypatch.setenv("MODELCATALOG_TOKEN", "tok with spaces")
    from_env = new_harness.run("whoami")
    monkeypatch.delenv("MODELCATALOG_TOKEN")
    new_harness.config_file.parent.mkdir(parents=True)
    new_harness.config_file.write_text(json.dumps({"token": "tök"}))
    from_file = new_harness.run("whoami")
    for result, origin in (
        (from_env, "MODELCATALOG_TOKEN: "),
        (from_file, f"'token' in {new_harness.config_file}: "),
    ):
        assert result.exit_code == ExitCode.USAGE
        line = _error_line(result.stderr)
        assert line.startswith(f"error: {origin}an access token is")
        assert "tok with spaces" not in line
        assert "tök" not in line


def test_bad_insecure_values_name_the_variable_or_the_file(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODELCATALOG_INSECURE=maybe names the variable; a non-boolean in the file names the file."""
    monkeypatch.setenv("MODELCATALOG_INSECURE", "maybe")
    from_env = new_harness.run("whoami")
    monkeypatch.delenv("MODELCATALOG_INSECURE")
    new_harness.config_file.parent.mkdir(parents=True)
    new_harness.config_file.write_text(json.dumps({"insecure": "maybe"}))
    from_file = new_harness.run("whoami")
    assert from_env.exit_code == ExitCode.USAGE
    assert "MODELCATALOG_INSECURE='maybe' is not a boolean" in _error_line(from_env.stderr)
    assert f"{new_harness.config_file}: 'insecure' must be" in _error_line(from_file.stderr)


def _unreachable(*, certificate_untrusted: bool) -> Unavailable:
    error = Unavailable(StatusCode.UNAVAILABLE, "cannot reach the modelcatalog server")
    if certificate_untrusted:
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
        cause.verify_message = "self-signed certificate"
        error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("origin", "fix"),
    [
        ("MODELCATALOG_CA_CERT", "set MODELCATALOG_CA_CERT to the certificate the server uses"),
        ("'ca_cert' in /home/me/config.json", "the certificate in use is 'ca_cert' in"),
        ("--ca-cert", "pass --ca-cert with the certificate the server uses"),
    ],
)
def test_an_untrusted_certificate_names_where_the_ca_certificate_came_from(
    origin: str, fix: str
) -> None:
    """A TLS verification failure tells to change the variable, file entry or flag that gave
    the CA certificate, not always --ca-cert."""
    settings = Settings(
        server="h:1",
        ca_cert="/tmp/other.crt",
        insecure=False,
        token=None,
        username=None,
        config_path=Path("/home/me/config.json"),
        origins={"ca_cert": origin},
    )
    converted = from_exception(
        _unreachable(certificate_untrusted=True), server="h:1", settings=settings
    )
    assert converted is not None
    assert converted.exit_code == ExitCode.CONNECTION
    assert "self-signed certificate" in converted.format_message()
    assert fix in converted.format_message()


def test_an_unreachable_server_names_the_settings_that_chose_it() -> None:
    """Connection refused with the address from MODELCATALOG_SERVER names that variable."""
    settings = Settings(
        server="127.0.0.1:1",
        ca_cert=None,
        insecure=True,
        token=None,
        username=None,
        config_path=Path("/home/me/config.json"),
        origins={"server": "MODELCATALOG_SERVER", "insecure": "MODELCATALOG_INSECURE"},
    )
    converted = from_exception(
        _unreachable(certificate_untrusted=False), server="127.0.0.1:1", settings=settings
    )
    assert converted is not None
    assert converted.exit_code == ExitCode.CONNECTION
    assert "check that the server is running and that MODELCATALOG_SERVER is right" in (
        converted.format_message()
    )
