"""Expected failures: one line on stderr, a distinct exit code per kind, never a traceback."""

import asyncio
import errno
import io
import os
import signal
import ssl
from pathlib import Path
from typing import BinaryIO

import click
import pytest
from cli_testing import FOLDER_ID, MODEL_ID, CliHarness, FakeAuth
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import ErrorInfo, RetryInfo
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from rpc_testing import grpc_error

import modelcatalog
from modelcatalog import ModelCatalogError, Unavailable, _files
from modelcatalog.cli._context import connect
from modelcatalog.cli._errors import ExitCode, from_exception

pytest_plugins = ["cli_fixtures"]


def _one_line_error(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("status", "reason", "code"),
    [
        (Status.UNAUTHENTICATED, None, 3),
        (Status.PERMISSION_DENIED, "FOLDER_ACCESS_DENIED", 4),
        (Status.NOT_FOUND, "USER_NOT_FOUND", 5),
        (Status.INVALID_ARGUMENT, "INVALID_FIELD", 2),
        (Status.ALREADY_EXISTS, "FOLDER_NAME_TAKEN", 6),
        (Status.FAILED_PRECONDITION, "LAST_OWNER", 6),
        (Status.ABORTED, "ALIAS_MOVED", 6),
        (Status.UNAVAILABLE, None, 7),
        (Status.UNAVAILABLE, "UPLOAD_IN_PROGRESS", 6),
        (Status.DEADLINE_EXCEEDED, None, 7),
        (Status.DATA_LOSS, "DIGEST_MISMATCH", 8),
        (Status.INTERNAL, None, 1),
        (Status.RESOURCE_EXHAUSTED, "VERSION_TOO_LARGE", 1),
    ],
)
def test_each_error_class_has_its_exit_code_and_one_line(
    harness: CliHarness, status: Status, reason: str | None, code: int
) -> None:
    """A server error of each status exits with its code and prints one line, no traceback."""
    harness.backend.error = grpc_error(status, f"the server says {status.name.lower()}", reason)
    result = harness.run("folder", "show", FOLDER_ID)
    assert result.exit_code == code
    line = _one_line_error(result.stderr)
    assert f"the server says {status.name.lower()}" in line
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("status", "reason", "hint"),
    [
        (Status.FAILED_PRECONDITION, "FOLDER_NOT_EMPTY", "add --force"),
        (Status.FAILED_PRECONDITION, "VERSION_HAS_ALIASES", "add --force"),
        (Status.NOT_FOUND, "ALIAS_NOT_FOUND", "`modelcatalog alias list MODEL`"),
    ],
)
def test_refusals_hint_at_the_command_line_way_out(
    harness: CliHarness, status: Status, reason: str, hint: str
) -> None:
    """A refusal the command line can get past says how, in its own terms (a flag, not the
    API field the server's message names)."""
    harness.backend.error = grpc_error(status, "refused", reason)
    result = harness.run("folder", "show", FOLDER_ID)
    assert hint in _one_line_error(result.stderr)


def test_expired_token_hints_to_log_in_again(harness: CliHarness) -> None:
    """TOKEN_EXPIRED exits 3 with a one-line hint to run `modelcatalog login`."""
    harness.backend.error = grpc_error(
        Status.UNAUTHENTICATED, "the access token has expired; sign in again", "TOKEN_EXPIRED"
    )
    result = harness.run("folder", "list")
    assert result.exit_code == ExitCode.AUTH
    line = _one_line_error(result.stderr)
    assert "expired" in line
    assert "`modelcatalog login`" in line


def test_revoked_token_hints_to_log_in_again(harness: CliHarness) -> None:
    """TOKEN_REVOKED exits 3, says the login was signed out, and names the login command."""
    harness.backend.error = grpc_error(Status.UNAUTHENTICATED, "revoked", "TOKEN_REVOKED")
    result = harness.run("folder", "list")
    assert result.exit_code == ExitCode.AUTH
    line = _one_line_error(result.stderr)
    assert "signed out" in line
    assert "`modelcatalog login`" in line


def test_throttled_login_says_how_long_to_wait(harness: CliHarness) -> None:
    """SIGN_IN_THROTTLED exits 1 with the wait the server's RetryInfo gives, rounded up."""
    harness.backend.error = GRPCError(
        Status.RESOURCE_EXHAUSTED,
        "too many failed sign-ins from your address; retry in 90 s",
        [
            ErrorInfo(domain="modelcatalog.v1", reason="SIGN_IN_THROTTLED"),
            RetryInfo(retry_delay=Duration(seconds=89, nanos=500_000_000)),
        ],
    )
    result = harness.run("login", "alice", "--password-stdin", input="secret-password\n")
    assert result.exit_code == ExitCode.ERROR
    line = _one_line_error(result.stderr)
    assert "too many failed sign-ins" in line
    assert "in 90 s" in line


def test_missing_token_names_the_server_and_the_login_command(harness: CliHarness) -> None:
    """Not logged in to a --server exits 3 and says how to log in to that server."""
    harness.backend.error = grpc_error(Status.UNAUTHENTICATED, "no token", "TOKEN_MISSING")
    result = harness.run("--server", "other.test:1", "whoami")
    assert result.exit_code == 3
    assert "`modelcatalog login --server other.test:1`" in _one_line_error(result.stderr)


def test_rejected_token_from_the_environment_hints_at_the_variable(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejected MODELCATALOG_TOKEN says to update or unset it, since login would not help."""
    monkeypatch.setenv("MODELCATALOG_TOKEN", "stale")
    harness.backend.error = grpc_error(Status.UNAUTHENTICATED, "bad token", "TOKEN_INVALID")
    result = harness.run("whoami")
    assert result.exit_code == ExitCode.AUTH
    assert _one_line_error(result.stderr) == (
        "error: the access token in MODELCATALOG_TOKEN is not valid for 127.0.0.1:50051;"
        " update or unset MODELCATALOG_TOKEN"
    )


def test_version_too_large_has_a_hint(harness: CliHarness) -> None:
    """VERSION_TOO_LARGE says what can be done about it instead of naming an error class."""
    harness.backend.error = grpc_error(
        Status.RESOURCE_EXHAUSTED,
        "the file is larger than this server's maximum version size of 10 bytes",
        "VERSION_TOO_LARGE",
    )
    (harness.tmp_path / "big.bin").write_bytes(b"w" * 100)
    result = harness.run("version", "upload", MODEL_ID, "big.bin")
    assert result.exit_code == ExitCode.ERROR
    line = _one_line_error(result.stderr)
    assert line.endswith("; ask the server's administrator to raise its --max-version-size")
    assert "ResourceExhausted" not in line


def test_wrong_password_is_an_auth_error(harness: CliHarness) -> None:
    """login with a wrong password exits 3, says so, and leaves the saved token alone."""
    before = harness.config_file.read_text()
    result = harness.run("login", "alice", "--password-stdin", input="wrong-password\n")
    assert result.exit_code == 3
    assert _one_line_error(result.stderr) == "error: wrong username or password"
    assert harness.config_file.read_text() == before


@pytest.mark.parametrize(
    ("reason", "exit_code", "says"),
    [
        ("TOKEN_READ_ONLY", ExitCode.PERMISSION, "--scope read-write`"),
        ("TOKEN_SCOPE_INSUFFICIENT", ExitCode.PERMISSION, "unset MODELCATALOG_TOKEN and run"),
        ("INVALID_CREDENTIALS", ExitCode.AUTH, "error: the password is wrong"),
    ],
)
def test_access_token_refusals_say_what_to_use_instead(
    harness: CliHarness, reason: str, exit_code: ExitCode, says: str
) -> None:
    """A refusal of an access token's scope says which token or login would do; a wrong
    password of an account change says so, as an authentication error."""
    harness.backend.error = grpc_error(Status.PERMISSION_DENIED, "refused", reason)
    result = harness.run("folder", "create", "vision")
    assert result.exit_code == exit_code
    assert says in _one_line_error(result.stderr)


def test_multi_line_server_message_is_joined_into_one_line(harness: CliHarness) -> None:
    """Newlines in a server message never make the error longer than one line."""
    harness.backend.error = grpc_error(Status.INTERNAL, "first\nsecond\n")
    result = harness.run("whoami")
    assert _one_line_error(result.stderr).startswith("error: first second")


ROOT_USAGE = "[OPTIONS] COMMAND [ARGS]..."


@pytest.mark.parametrize(
    ("args", "what", "usage"),
    [
        (["nope"], "error: no such command 'nope'", ROOT_USAGE),
        (["--bogus"], "error: no such option", ROOT_USAGE),
        (
            ["folder", "show"],
            "error: missing argument 'FOLDER'",
            "folder show [OPTIONS] FOLDER",
        ),
        (["folder", "list", "--jsn"], "error: no such option", "folder list [OPTIONS]"),
        (["version", "show", MODEL_ID, "0"], "error: invalid value for 'VERSION'", None),
        (
            ["version", "download", "resnet"],
            "error: missing VERSION: give MODEL VERSION or MODEL@ALIAS",
            "version download [OPTIONS] MODEL [VERSION]",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line_in_the_cli_style(
    harness: CliHarness, args: list[str], what: str, usage: str | None
) -> None:
    """Click's usage errors exit 2 with one `error: ...` line, not Click's `Error:` block; the
    command's synopsis ends it unless the error is about a value."""
    result = harness.run(*args)
    assert result.exit_code == ExitCode.USAGE
    line = _one_line_error(result.stderr)
    assert line.startswith(what)
    if usage is None:
        assert "usage:" not in line
    else:
        assert line.endswith(f"; usage: modelcatalog {usage}")
    assert result.stdout == ""


def test_ids_are_accepted_in_any_uuid_spelling(harness: CliHarness) -> None:
    """An id in capitals or without hyphens is the same id, sent in the canonical form."""
    harness.run("folder", "create", "vision")
    shouted = harness.run("folder", "show", FOLDER_ID.upper().replace("-", ""))
    assert shouted.exit_code == 0, shouted.stderr
    assert FOLDER_ID in shouted.stdout


def test_real_client_refuses_a_bad_target_without_traceback(new_harness: CliHarness) -> None:
    """With the real client factory, a malformed --server exits 2 with one line."""
    new_harness.connect = connect
    result = new_harness.run("--server", "no-port", "--insecure", "whoami")
    assert result.exit_code == 2
    assert "expected a target 'host:port'" in _one_line_error(result.stderr)


def test_ca_cert_that_is_not_a_certificate_is_named(new_harness: CliHarness) -> None:
    """With the real client factory, a --ca-cert file that is not PEM exits 2 naming it."""
    new_harness.connect = connect
    (new_harness.tmp_path / "ca.pem").write_text("not a certificate\n")
    result = new_harness.run("--ca-cert", "ca.pem", "whoami")
    assert result.exit_code == ExitCode.USAGE
    assert "cannot load the CA certificate ca.pem" in _one_line_error(result.stderr)


def test_tls_verification_failure_suggests_ca_cert() -> None:
    """An Unavailable caused by certificate verification points at --ca-cert (exit 7)."""
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    error = Unavailable(modelcatalog.StatusCode.UNAVAILABLE, "cannot verify")
    error.__cause__ = cause
    converted = from_exception(error, server="h:1")
    assert converted is not None
    assert converted.exit_code == ExitCode.CONNECTION
    assert "self-signed certificate" in converted.format_message()
    assert "--ca-cert" in converted.format_message()


def test_local_file_errors_exit_1_naming_the_file(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError on a local file exits 1 with the path and the system's reason."""
    missing = harness.run("version", "download", MODEL_ID, "1", "-o", "no-such-folder/out.bin")
    assert missing.exit_code == 1
    assert _one_line_error(missing.stderr) == (
        "error: no-such-folder/out.bin.part: No such file or directory; check the path"
    )

    def refuse(path: str | os.PathLike[str], mode: str) -> BinaryIO:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    # A real permission error needs a non-root user, so the SDK's file opener refuses instead.
    monkeypatch.setattr(_files, "_open_binary", refuse)
    result = harness.run("version", "download", MODEL_ID, "1", "-o", "out.bin")
    assert result.exit_code == 1
    assert _one_line_error(result.stderr) == (
        "error: out.bin.part: Permission denied; check the permissions"
    )


class BadDisk(io.BytesIO):
    """A file whose reads after its first block fail with EIO, like a disk going bad."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(Path(path).read_bytes())
        self._name = os.fspath(path)
        self.reads = 0

    @property
    def name(self) -> str:
        return self._name

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return super().read(size)


def test_read_error_during_upload_exits_1_naming_the_file(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error while an upload reads its file exits 1 naming it, not 7 (no connection)."""
    (harness.tmp_path / "model.bin").write_bytes(b"w" * 100)

    def open_bad_disk(path: str | os.PathLike[str], mode: str) -> BinaryIO:
        return BadDisk(path)

    monkeypatch.setattr(_files, "_open_binary", open_bad_disk)
    result = harness.run("version", "upload", MODEL_ID, "model.bin")
    assert result.exit_code == ExitCode.ERROR
    assert _one_line_error(result.stderr) == "error: model.bin: Input/output error"
    assert harness.backend.versions == []


def test_every_sdk_error_class_is_converted() -> None:
    """from_exception turns every ModelCatalogError subclass into a CliError, never None."""
    classes = [
        getattr(modelcatalog, name)
        for name in modelcatalog.__all__
        if isinstance(getattr(modelcatalog, name), type)
        and issubclass(getattr(modelcatalog, name), ModelCatalogError)
    ]
    for error_class in classes:
        converted = from_exception(error_class(Status.UNKNOWN, "boom"))
        assert converted is not None
        assert converted.exit_code != 0


def test_unexpected_exceptions_are_not_hidden() -> None:
    """A programming error (not an expected failure) is not turned into a CliError."""
    assert from_exception(KeyError("bug")) is None


def test_ctrl_c_in_any_command_exits_130_with_one_line(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a command waits for the server exits 130 with `error: interrupted`."""

    async def stuck(self: FakeAuth, request: object) -> None:
        signal.raise_signal(signal.SIGINT)
        await asyncio.Event().wait()  # the server never answers; Ctrl-C ends the wait

    monkeypatch.setattr(FakeAuth, "get_current_user", stuck)
    result = harness.run("whoami")
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted\n"


def _prompt_interrupted_by_ctrl_c(*args: object, **kwargs: object) -> str:
    """``click.prompt`` when the person presses Ctrl-C: Click turns it into ``Abort``."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise click.Abort from None


def test_ctrl_c_at_a_prompt_exits_130_without_click_aborted(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C at the username prompt exits 130 with `error: interrupted`, not `Aborted!`."""
    monkeypatch.setattr(click, "prompt", _prompt_interrupted_by_ctrl_c)
    result = new_harness.run("login")
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted\n"


def test_end_of_input_at_a_prompt_is_one_usage_error(new_harness: CliHarness) -> None:
    """A prompt that meets the end of stdin exits 2 with one line, not `Aborted!`."""
    result = new_harness.run("login", input="")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == "error: no input: the prompt reached the end of stdin\n"
