"""Expected failures become one line on stderr and an exit code per kind of failure.

Nothing the SDK, the config file or the local disk can raise in normal use reaches the user
as a traceback: each is turned into a ``CliError`` whose message says what went wrong and
what to do about it.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import IO, TYPE_CHECKING, Any

import click

from .._text import printable
from ._config import ENV_TOKEN, ConfigError, Settings

if TYPE_CHECKING:
    from .. import ModelCatalogError


class ExitCode(IntEnum):
    """The exit status of ``modelcatalog`` for each kind of failure."""

    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 3
    PERMISSION = 4
    NOT_FOUND = 5
    CONFLICT = 6
    CONNECTION = 7
    DATA_LOSS = 8
    INTERRUPTED = 130
    """Ctrl-C, as shells report a command ended by SIGINT (128 + 2)."""


EXIT_CODES_HELP = """\b
Exit codes:
    0  success
    1  other error (server failure, local config or file error)
    2  invalid input or usage (also a name that several folders or models share)
    3  not logged in, login expired, or wrong username/password
    4  permission denied (or the folder/model does not exist)
    5  not found (user, version or alias)
    6  already exists, or conflicts with the current state (e.g. the alias moved)
    7  cannot reach the server (connection, TLS, timeout)
    8  data loss (checksum mismatch)
  130  interrupted (Ctrl-C)"""


class CliError(click.ClickException):
    """A failure reported as ``error: <what went wrong>; <what to do>`` on one line."""

    def __init__(self, message: str, exit_code: int = ExitCode.ERROR) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the server sent
        self._exit_code = int(exit_code)

    @property
    def exit_code(self) -> int:
        """The process exit status for this kind of failure."""
        return self._exit_code

    @exit_code.setter
    def exit_code(self, value: int) -> None:
        self._exit_code = value

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the one-line message to stderr (or ``file``), its unsafe characters escaped.

        The message often quotes the server's, which may quote other users' text.
        """
        click.echo(printable(f"error: {self.format_message()}"), file=file, err=file is None)


_TOKEN_PROBLEMS = {
    "TOKEN_EXPIRED": "has expired",
    "TOKEN_INVALID": "is not valid for {server}",
    "TOKEN_REVOKED": "was revoked (signed out) or its account no longer exists on {server}",
}
"""How a token from the environment is wrong, for each reason the server refuses it with."""

_LIMIT_HINTS = {
    "VERSION_TOO_LARGE": "ask the server's administrator to raise its --max-version-size",
    "OVERLOADED": "the server is busy; retry in a moment",
}
"""What to do about each ``ResourceExhausted`` reason."""


def _with_hint(message: str, hint: str) -> str:
    """The server's message plus a hint, unless the message already says what to do."""
    return message if ";" in message else f"{message}; {hint}"


def from_sdk_error(
    error: ModelCatalogError,
    *,
    server: str = "the server",
    login: str = "modelcatalog login",
    token_variable: str | None = None,
    settings: Settings | None = None,
) -> CliError:
    """The message and exit code for an SDK error, with a hint chosen by its reason.

    ``login`` is the command that signs in to ``server`` again, for the hints of auth errors;
    ``token_variable`` names the environment variable the token came from, if it did, since
    logging in again does not replace that token. With the command's ``settings``, hints about
    the server address or CA certificate name the flag, variable or file entry to change.
    """
    import ssl

    from .. import (
        Aborted,
        AlreadyExists,
        DataLoss,
        DeadlineExceeded,
        FailedPrecondition,
        InvalidArgument,
        NotFound,
        OutOfRange,
        PermissionDenied,
        ResourceExhausted,
        ServerError,
        Unauthenticated,
        Unavailable,
    )

    message = error.message
    reason = error.reason
    match error:
        case Unauthenticated() if token_variable and reason in _TOKEN_PROBLEMS:
            why = _TOKEN_PROBLEMS[reason].format(server=server)
            return CliError(
                f"the access token in {token_variable} {why}; update or unset {token_variable}",
                ExitCode.AUTH,
            )
        case Unauthenticated():
            if reason == "TOKEN_EXPIRED":
                text = f"your login has expired; run `{login}` to sign in again"
            elif reason == "TOKEN_MISSING":
                text = f"not logged in to {server}; run `{login}` first"
            elif reason == "TOKEN_INVALID":
                text = f"the access token is not valid for {server}; run `{login}` again"
            elif reason == "TOKEN_REVOKED":
                text = (
                    f"your login was signed out, or the account no longer exists on {server};"
                    f" run `{login}` to sign in again"
                )
            elif reason == "INVALID_CREDENTIALS":
                text = "wrong username or password"
            else:
                text = _with_hint(message, f"run `{login}`")
            return CliError(text, ExitCode.AUTH)
        case PermissionDenied() if reason == "INVALID_CREDENTIALS":
            return CliError("the password is wrong", ExitCode.AUTH)
        case PermissionDenied():
            if reason == "SIGNUP_DISABLED":
                hint = "ask the server's administrator for an account"
            elif reason == "TOKEN_READ_ONLY":
                hint = "use a token made with `modelcatalog token create NAME --scope read-write`"
            elif reason == "TOKEN_SCOPE_INSUFFICIENT":
                hint = (
                    f"this needs a login with your password: unset {ENV_TOKEN} and run"
                    f" `{login}` (or use a token for all folders)"
                )
            else:
                hint = "check the id, or ask an owner of the folder for access"
            return CliError(_with_hint(message, hint), ExitCode.PERMISSION)
        case NotFound():
            if reason == "USER_NOT_FOUND":
                hint = "check the username"
            elif reason == "VERSION_NOT_FOUND":
                hint = "`modelcatalog version list MODEL_ID` shows the versions"
            elif reason == "ALIAS_NOT_FOUND":
                hint = "`modelcatalog alias list MODEL` shows the model's aliases"
            else:
                hint = "check the id"
            return CliError(_with_hint(message, hint), ExitCode.NOT_FOUND)
        case AlreadyExists():
            return CliError(_with_hint(message, "choose another name"), ExitCode.CONFLICT)
        case FailedPrecondition():
            if reason == "LAST_OWNER":
                hint = "make another user owner first"
            elif reason in {"FOLDER_NOT_EMPTY", "VERSION_HAS_ALIASES"}:
                hint = "add --force to delete them with it"
            elif reason == "ACCOUNT_OWNS_FOLDERS":
                hint = (
                    "make another member owner (`modelcatalog folder grant FOLDER USER owner`)"
                    " or delete those folders first"
                )
            else:
                hint = "change the state it depends on and retry"
            return CliError(_with_hint(message, hint), ExitCode.CONFLICT)
        case Aborted():
            hint = "another client changed it meanwhile; look at it again, then retry"
            return CliError(_with_hint(message, hint), ExitCode.CONFLICT)
        case InvalidArgument() | OutOfRange():
            where = f" (field {error.field})" if error.field else ""
            return CliError(f"invalid input{where}: {message}", ExitCode.USAGE)
        case Unavailable() if isinstance(error.__cause__, ssl.SSLCertVerificationError):
            why = error.__cause__.verify_message or "not trusted"
            return CliError(
                f"cannot verify the TLS certificate of {server} ({why});"
                f" {_ca_cert_fix(settings, login)}",
                ExitCode.CONNECTION,
            )
        case Unavailable() if reason == "UPLOAD_IN_PROGRESS":
            hint = "run the same command again in a moment to resume the upload"
            return CliError(_with_hint(message, hint), ExitCode.CONFLICT)
        case Unavailable():
            hint = f"check that the server is running and that {_named_settings(settings)} right"
            return CliError(_with_hint(message, hint), ExitCode.CONNECTION)
        case DeadlineExceeded():
            return CliError(_with_hint(message, "retry, or check the network"), ExitCode.CONNECTION)
        case DataLoss():
            hint = "the bytes were damaged on the way; retry"
            return CliError(_with_hint(message, hint), ExitCode.DATA_LOSS)
        case ResourceExhausted() if reason == "SIGN_IN_THROTTLED":
            wait = f"in {math.ceil(error.retry_after)} s" if error.retry_after else "later"
            return CliError(
                f"too many failed sign-ins; wait and retry {wait}, with the right password",
                ExitCode.ERROR,
            )
        case ResourceExhausted():
            hint = _LIMIT_HINTS.get(reason or "", "a limit of the server was reached; retry later")
            return CliError(_with_hint(message, hint), ExitCode.ERROR)
        case ServerError():
            hint = "this is a problem of the server (or a server too old for this client)"
            return CliError(_with_hint(message, hint), ExitCode.ERROR)
        case _:
            return CliError(f"{message} ({type(error).__name__})", ExitCode.ERROR)


def _ca_cert_fix(settings: Settings | None, login: str) -> str:
    """How to give the certificate the server uses, where the one in use came from."""
    certificate = "the certificate the server uses (<server data dir>/tls/server.crt)"
    origin = settings.origin("ca_cert") if settings else None
    if origin is None or origin.startswith("--"):
        return f"pass --ca-cert with {certificate}; login saves it"
    if origin.startswith("MODELCATALOG_"):
        return f"set {origin} to {certificate}, or unset it"
    return f"the certificate in use is {origin}; run `{login} --ca-cert FILE` with {certificate}"


def _named_settings(settings: Settings | None) -> str:
    """The server address and CA certificate settings, by the names they were given under."""
    if settings is None:
        return "--server and --ca-cert are"
    server = settings.origin("server") or f"the default server {settings.server}"
    if settings.insecure:
        return f"{server} is"
    return f"{server} and {settings.origin('ca_cert') or '--ca-cert'} are"


def from_exception(
    error: Exception,
    *,
    server: str = "the server",
    login: str = "modelcatalog login",
    token_variable: str | None = None,
    settings: Settings | None = None,
) -> CliError | None:
    """The ``CliError`` for an expected exception, or ``None`` for a bug (to show in full).

    With the command's ``settings``, a bad server address, CA certificate or token that the
    SDK refuses is reported with the flag, variable or config file entry it came from.
    """
    from .. import ModelCatalogError  # on failure only: it loads grpclib and protobuf

    if isinstance(error, CliError):
        return error
    if isinstance(error, ModelCatalogError):
        return from_sdk_error(
            error, server=server, login=login, token_variable=token_variable, settings=settings
        )
    if isinstance(error, ConfigError):
        return CliError(str(error), ExitCode.USAGE if error.usage else ExitCode.ERROR)
    if isinstance(error, ValueError):
        origin = _origin_of_refused_setting(error, settings) if settings else None
        return CliError(f"{origin or 'invalid input'}: {error}", ExitCode.USAGE)
    if isinstance(error, BrokenPipeError):
        return None  # Click handles a closed stdout itself
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        if isinstance(error, FileNotFoundError):
            hint = "; check the path"
        elif isinstance(error, PermissionError):
            hint = "; check the permissions"
        else:
            hint = ""
        return CliError(f"{where}{error.strerror or error}{hint}", ExitCode.ERROR)
    return None


def _origin_of_refused_setting(error: ValueError, settings: Settings) -> str | None:
    """Where the setting came from that the SDK refused when opening the client, if one was.

    The SDK refuses a CA certificate it cannot load (raised from the ``ssl.SSLError``), a
    malformed address (its message quotes the address) and a token that cannot be a header.
    """
    import ssl

    text = str(error)
    if isinstance(error.__cause__, ssl.SSLError) and settings.ca_cert is not None:
        return settings.origin("ca_cert")
    if repr(settings.server) in text:
        return settings.origin("server") or f"the default server {settings.server}"
    if settings.token is not None and "access token" in text:
        return settings.origin("token")
    return None
