"""Where the CLI keeps its login, and how flags, environment and that file combine.

The file is ``$XDG_CONFIG_HOME/modelcatalog/config.json`` (``~/.config/modelcatalog/`` when the
variable is unset or not absolute). It holds one profile: the server, how to trust it (a CA
certificate path or plaintext) and, after ``login``, the access token and username. It is
written atomically (a temporary file in the same folder, then a rename) with mode 0600, in a
folder of mode 0700, because the token is a credential.

Precedence, highest first: command-line flag, ``MODELCATALOG_*`` variable, the file, the
default. ``Settings`` remembers where each value came from, so an error about a bad value
names the flag, variable or file that gave it. The saved CA certificate and token belong to
the saved server: they are used only when the effective server is that server (compared by
``server_identity``, so ``localhost:50051`` finds a login made at ``127.0.0.1:50051``), so a
token is never sent to another one. A token saved over TLS is never sent over plaintext either.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_SERVER = "127.0.0.1:50051"
"""The address ``modelcatalog-server`` listens on by default."""

CONFIG_FILE_NAME = "config.json"
HISTORY_FILE_NAME = "history"

ENV_SERVER = "MODELCATALOG_SERVER"
ENV_CA_CERT = "MODELCATALOG_CA_CERT"
ENV_INSECURE = "MODELCATALOG_INSECURE"
ENV_TOKEN = "MODELCATALOG_TOKEN"  # noqa: S105 - a variable name, not a secret

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """The config file or a ``MODELCATALOG_*`` variable cannot be used; the message says why.

    ``usage`` marks a value the user gave that is wrong (exit status 2), as opposed to a file
    that cannot be read or used (1).
    """

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of the config file and the shell history, following the XDG base dirs."""
    # pathlib and json are imported where they are used, so that help and usage errors, which
    # need neither, start faster (pathlib alone pulls in urllib and ipaddress).
    from pathlib import Path

    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "modelcatalog"


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The config file."""
    return config_dir(environ) / CONFIG_FILE_NAME


@dataclass
class Profile:
    """What ``login`` remembers: the server, how to trust it, and the token it issued."""

    server: str | None = None
    ca_cert: str | None = None
    insecure: bool = False
    username: str | None = None
    token: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The file's content, with stable keys."""
        return {
            "server": self.server,
            "ca_cert": self.ca_cert,
            "insecure": self.insecure,
            "username": self.username,
            "token": self.token,
        }


def _optional_str(data: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"{path}: '{key}' must be a string; fix it or run `modelcatalog login`")


def load_profile(path: Path) -> Profile:
    """Read the config file; a missing file is an empty profile."""
    import json

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Profile()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path} is not valid JSON ({error.msg}, line {error.lineno}); fix or delete it"
        ) from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object; fix or delete it")
    insecure = data.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"{path}: 'insecure' must be true or false; fix it")
    return Profile(
        server=_optional_str(data, "server", path),
        ca_cert=_optional_str(data, "ca_cert", path),
        insecure=insecure,
        username=_optional_str(data, "username", path),
        token=_optional_str(data, "token", path),
    )


def save_profile(path: Path, profile: Profile) -> None:
    """Write the config file atomically with mode 0600 (its folder gets mode 0700)."""
    # Imported here, not at the top, so that commands that only read the file start faster:
    # tempfile pulls in random, shutil and the compressors; _files grpclib and the contract.
    import json
    import tempfile

    from .._files import fsync_dir

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = json.dumps(profile.to_json(), indent=2) + "\n"
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; say so explicitly
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_dir(path.parent)


def server_identity(address: str) -> str:
    """The server an address names, for deciding whether a saved login belongs to it.

    Host names count without case or a trailing dot, IP addresses in their canonical form,
    ports by number, and every address of this machine (``localhost``, ``*.localhost``,
    127.0.0.0/8, ``::1``, the unspecified ``0.0.0.0`` and ``::``) is one ``localhost``. No DNS
    is asked (it would cost every command a lookup), so two names of one remote server count
    as two servers. An address without a port gets the default one, like an invalid address
    it is refused later, when connecting.
    """
    import ipaddress

    host, colon, port = address.strip().rpartition(":")
    if not colon or not port.isdecimal():
        host, port = address.strip(), DEFAULT_SERVER.rpartition(":")[2]
    host = host.removeprefix("[").removesuffix("]").rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost")
    else:
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        ip = mapped or ip
        local = ip.is_loopback or ip.is_unspecified
        host = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    return f"{'localhost' if local else host}:{int(port)}"


def _env_bool(environ: Mapping[str, str], name: str) -> bool | None:
    value = environ.get(name)
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(
        f"{name}={value!r} is not a boolean; use 1/0, true/false or yes/no", usage=True
    )


@dataclass(frozen=True)
class Settings:
    """How to reach the server for one command, after flags, environment and file."""

    server: str
    ca_cert: str | None
    insecure: bool
    token: str | None = field(repr=False)
    username: str | None
    config_path: Path
    timeout: float | None = 30.0
    token_from_env: bool = False
    """Whether ``token`` is ``MODELCATALOG_TOKEN``'s, which logging in again cannot replace."""
    origins: Mapping[str, str] = field(default_factory=dict)
    """Where each setting came from, by field name: ``"--ca-cert"``, ``"MODELCATALOG_CA_CERT"``,
    ``"'ca_cert' in /home/me/.config/modelcatalog/config.json"``; absent for defaults."""

    def origin(self, name: str) -> str | None:
        """The flag, variable or file entry that gave setting ``name``; ``None`` if defaulted."""
        return self.origins.get(name)


def check_ca_cert(settings: Settings) -> None:
    """Refuse a CA certificate path that is no file, naming where the path came from."""
    path = settings.ca_cert
    if path is None or os.path.isfile(path):
        return
    origin = settings.origin("ca_cert") or "--ca-cert"
    where = "the server's certificate (<server data dir>/tls/server.crt)"
    if origin.startswith("--"):
        problem, fix = f"{origin} {path} does not exist", f"pass {where}"
    elif origin.startswith("MODELCATALOG_"):
        problem, fix = f"{origin}={path} does not exist", f"set it to {where}, or unset it"
    else:
        problem = f"the CA certificate {path} ({origin}) does not exist"
        fix = f"log in again with --ca-cert and {where}"
    raise ConfigError(f"{problem}; {fix}", usage=True)


@dataclass
class Overrides:
    """The connection flags given on the command line; ``None`` where not given."""

    server: str | None = None
    ca_cert: str | None = None
    insecure: bool | None = None

    def merged(self, other: Overrides) -> Overrides:
        """These flags, with ``other``'s (given later, closer to the command) winning."""
        return Overrides(
            server=other.server if other.server is not None else self.server,
            ca_cert=other.ca_cert if other.ca_cert is not None else self.ca_cert,
            insecure=other.insecure if other.insecure is not None else self.insecure,
        )


def resolve(
    overrides: Overrides,
    profile: Profile,
    path: Path,
    environ: Mapping[str, str] | None = None,
    *,
    use_token: bool = True,
    login: str = "modelcatalog login",
) -> Settings:
    """Combine flags, environment and the saved profile into the settings for one command.

    With ``use_token`` false (``login``, ``signup``) no token is picked. A token saved over
    TLS is refused over plaintext with a ``ConfigError`` whose hint names ``login``.
    """
    environ = os.environ if environ is None else environ
    origins: dict[str, str] = {}
    saved_in = f"in {path}"

    def take(name: str, *sources: tuple[str, Any]) -> Any:
        """The first given value of ``sources`` (origin, value), its origin remembered."""
        for origin, value in sources:
            if value is not None:
                origins[name] = origin
                return value
        return None

    saved_server = profile.server or DEFAULT_SERVER
    server: str = (
        take(
            "server",
            ("--server", overrides.server),
            (ENV_SERVER, environ.get(ENV_SERVER) or None),
            (f"'server' {saved_in}", profile.server),
        )
        or saved_server
    )
    same_server = server_identity(server) == server_identity(saved_server)

    # Plaintext or TLS is one choice: the most specific source that makes it wins. The CA
    # certificate is then the most specific one given, the saved one for the saved server.
    env_ca = environ.get(ENV_CA_CERT) or None
    env_insecure = _env_bool(environ, ENV_INSECURE)
    insecure_flag = "--tls" if overrides.insecure is False else "--insecure"
    insecure: bool = take(
        "insecure",
        (insecure_flag, overrides.insecure),
        ("--ca-cert", False if overrides.ca_cert is not None else None),
        (ENV_INSECURE, env_insecure),
        (ENV_CA_CERT, False if env_ca is not None else None),
        (f"'insecure' {saved_in}", profile.insecure if same_server else None),
    )
    insecure = bool(insecure)
    ca_cert: str | None = None
    if not insecure:
        ca_cert = take(
            "ca_cert",
            ("--ca-cert", overrides.ca_cert),
            (ENV_CA_CERT, env_ca),
            (f"'ca_cert' {saved_in}", profile.ca_cert if same_server else None),
        )
    if origins.get("insecure") == ENV_INSECURE:
        plaintext_by, undo = f"{ENV_INSECURE}={environ[ENV_INSECURE]}", f"unset {ENV_INSECURE}"
    else:
        plaintext_by, undo = "--insecure", "drop --insecure"

    env_token = (environ.get(ENV_TOKEN) or None) if use_token else None
    saved_token = profile.token if use_token and same_server else None
    if env_token is not None:
        token: str | None = take("token", (ENV_TOKEN, env_token.strip()))
    elif saved_token and insecure and not profile.insecure:
        raise ConfigError(
            f"the saved login for {server} was made over TLS and its token is never sent over"
            f" plaintext ({plaintext_by}); {undo}, or log in over plaintext deliberately with"
            f" `{login} --insecure`"
        )
    else:
        token = take("token", (f"'token' {saved_in}", saved_token))
    return Settings(
        server=server,
        ca_cert=ca_cert,
        insecure=insecure,
        token=token,
        username=profile.username if same_server else None,
        config_path=path,
        token_from_env=env_token is not None,
        origins=origins,
    )
