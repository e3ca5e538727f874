"""The ``modelcatalog`` command tree (Click), built on the async SDK.

Each command resolves its settings (flags, ``MODELCATALOG_*`` variables, the config file),
opens a client with ``open_client`` (a module-level factory that tests replace) and runs its
SDK calls in one ``asyncio.run``. Expected failures are turned into one-line errors with an
exit code per kind (see ``_errors``) by the root group, so every command, in the shell too,
reports them the same way.

The SDK (grpclib, betterproto, the generated code), asyncio and Rich are imported inside the
commands that use them, never at the top: ``--help``, ``--version`` and usage errors load only
Click and this package (``python/client/tests/test_cli_startup.py`` guards it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import __version__
from . import _output as out
from ._completion import completion
from ._config import (
    DEFAULT_SERVER,
    ENV_CA_CERT,
    ENV_INSECURE,
    ENV_SERVER,
    ENV_TOKEN,
    Overrides,
    Profile,
    Settings,
    check_ca_cert,
    config_path,
    load_profile,
    resolve,
    save_profile,
)
from ._errors import EXIT_CODES_HELP, CliError, ExitCode, from_exception
from ._password import read_password

if TYPE_CHECKING:
    import betterproto

    from .. import AsyncClient, v1

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

ROLES = ("viewer", "editor", "owner")

LOGOUT_TIMEOUT_SECONDS = 10.0
"""How long logout waits for the server to revoke the token before forgetting it anyway."""


ClientFactory = Callable[[Settings], AbstractAsyncContextManager["AsyncClient"]]


@asynccontextmanager
async def _connect(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A real ``AsyncClient`` for the settings, closed when the command is done."""
    from .. import AsyncClient

    client = AsyncClient(
        settings.server,
        ca_cert=settings.ca_cert,
        insecure=settings.insecure,
        token=settings.token,
        timeout=settings.timeout,
    )
    async with client:
        yield client


open_client: ClientFactory = _connect
"""How commands get a client; tests replace it with one over ``grpclib.testing.ChannelFor``."""


@dataclass
class State:
    """What a command run knows beyond its own arguments (Click's ``ctx.obj``)."""

    overrides: Overrides = field(default_factory=Overrides)
    in_shell: bool = False
    settings: Settings | None = None

    def login_command(self) -> str:
        """How to sign in again to the server this command used, for hints."""
        command = "login" if self.in_shell else "modelcatalog login"
        server = self.overrides.server
        return f"{command} --server {server}" if server else command


def _state(ctx: click.Context) -> State:
    return ctx.ensure_object(State)


def _settings(ctx: click.Context, *, keep_token: bool = True) -> Settings:
    """The settings for this command; remembered for the error hints."""
    state = _state(ctx)
    path = config_path()
    settings = resolve(
        state.overrides,
        load_profile(path),
        path,
        use_token=keep_token,
        login=state.login_command(),
    )
    state.settings = settings
    check_ca_cert(settings)
    return settings


def _run(settings: Settings, call: Callable[[AsyncClient], Awaitable[_T]]) -> _T:
    """Open a client, run ``call`` with it in a fresh event loop, and close the client."""
    import asyncio

    async def session() -> _T:
        async with open_client(settings) as client:
            return await call(client)

    return asyncio.run(session())


async def _collect(items: AsyncIterator[_T]) -> list[_T]:
    return [item async for item in items]


# --- Root group -------------------------------------------------------------------------


class _Group(click.Group):
    """A group that lists its commands in the order they are defined, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


class _RootGroup(_Group):
    """The root command: turns expected exceptions of any subcommand into ``CliError``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # Click's own outcomes (--help of a subcommand exits from in here)
        except Exception as error:
            state = ctx.find_object(State)
            settings = state.settings if state else None
            converted = from_exception(
                error,
                server=settings.server if settings else "the server",
                login=state.login_command() if state else "modelcatalog login",
                token_variable=ENV_TOKEN if settings and settings.token_from_env else None,
                settings=settings,
            )
            if converted is None:
                raise
            raise converted from error


def _override(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record a connection flag in the shared state; the one closest to the command wins."""
    if value is not None and param.name is not None:
        setattr(_state(ctx).overrides, param.name, value)
    return value


def connection_options(function: _F) -> _F:
    """``--server``, ``--ca-cert`` and ``--insecure/--tls``, on the root and every command."""
    options = [
        click.option(
            "--server",
            metavar="HOST:PORT",
            expose_value=False,
            callback=_override,
            help=f"Server address [env {ENV_SERVER}; saved by login; default {DEFAULT_SERVER}].",
        ),
        click.option(
            "--ca-cert",
            "ca_cert",
            metavar="FILE",
            type=click.Path(exists=True, dir_okay=False),
            expose_value=False,
            callback=_override,
            help=f"CA certificate to verify the server's TLS certificate [env {ENV_CA_CERT};"
            " saved by login].",
        ),
        click.option(
            "--insecure/--tls",
            "insecure",
            default=None,
            expose_value=False,
            callback=_override,
            help=f"Plaintext instead of TLS [env {ENV_INSECURE}; saved by login].",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def json_option(function: _F) -> _F:
    """``--json``: machine-readable output with stable keys."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (snake_case keys) instead of text."
    )(function)


def id_only_option(function: _F) -> _F:
    """``--id-only``: print just the new id, for scripts that capture it."""
    return click.option(
        "--id-only",
        is_flag=True,
        help="Print only the new id, e.g. ID=$(modelcatalog ... --id-only).",
    )(function)


def _report_created(kind: str, created: v1.Folder | v1.Model, as_json: bool, id_only: bool) -> None:
    if as_json:
        out.print_json(created)
    elif id_only:
        out.echo(created.id)
    else:
        out.echo(f"Created {kind} {created.name}: {created.id}")


def _show(found: betterproto.Message, pairs: Iterable[tuple[str, str]], as_json: bool) -> None:
    """Print one resource: its JSON with ``--json``, else its ``pairs`` as aligned lines."""
    if as_json:
        out.print_json(found)
    else:
        out.details(pairs)


def quiet_option(function: _F) -> _F:
    """``--quiet``: no progress bar."""
    return click.option(
        "--quiet",
        "-q",
        is_flag=True,
        help="No progress bar (it is also off when stdout is not a terminal).",
    )(function)


def examples(*lines: str) -> str:
    """A help epilog with examples, kept verbatim by Click (the ``\\b`` marker)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(
    cls=_RootGroup,
    context_settings=CONTEXT_SETTINGS,
    epilog=examples(
        "modelcatalog signup alice",
        "modelcatalog login alice --ca-cert modelcatalog-data/tls/server.crt",
        "modelcatalog folder create vision",
        "modelcatalog version upload MODEL_ID resnet50.onnx --label stage=dev",
    )
    + "\n\n"
    + EXIT_CODES_HELP,
)
@connection_options
@click.version_option(__version__, "--version", prog_name="modelcatalog")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Command line for the modelcatalog model registry.

    Sign in once with `login`: the token, server and CA certificate are saved in
    $XDG_CONFIG_HOME/modelcatalog/config.json (~/.config/modelcatalog/ by default, mode 0600).
    Flags and MODELCATALOG_SERVER, MODELCATALOG_CA_CERT, MODELCATALOG_INSECURE and
    MODELCATALOG_TOKEN override the saved values. Run `modelcatalog shell` for an
    interactive prompt with the same commands.
    """
    _state(ctx)


# --- Accounts ---------------------------------------------------------------------------


@cli.command(
    epilog=examples(
        "modelcatalog signup alice",
        "printf '%s\\n' \"$PASSWORD\" | modelcatalog signup alice --password-stdin",
    )
)
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin.")
@connection_options
@json_option
@click.pass_context
def signup(ctx: click.Context, username: str, password_stdin: bool, as_json: bool) -> None:
    """Create an account (it does not log in).

    Usernames have 3-64 characters: lowercase letters, digits, '.', '_' and '-'. Passwords
    have 8 characters to 72 bytes. Without --password-stdin the password is asked twice,
    hidden, at a terminal; when stdin is not a terminal its first line is the password.
    """
    settings = _settings(ctx, keep_token=False)
    password = read_password(password_stdin, confirm=True)
    user = _run(settings, lambda client: client.sign_up(username, password))
    if as_json:
        out.print_json(user)
        return
    out.echo(f"Created account {user.username} on {settings.server}.")
    out.echo(f"Next: {_state(ctx).login_command()} {user.username}", err=True)


@cli.command(
    epilog=examples(
        "modelcatalog login alice --ca-cert modelcatalog-data/tls/server.crt",
        "modelcatalog login alice --server models.example.com:443",
        "printf '%s\\n' \"$PASSWORD\" | modelcatalog login alice --password-stdin",
    )
)
@click.argument("username", required=False)
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of stdin.")
@connection_options
@json_option
@click.pass_context
def login(ctx: click.Context, username: str | None, password_stdin: bool, as_json: bool) -> None:
    """Sign in and save the token for later commands.

    The token is saved with the server address and the CA certificate path (made absolute)
    in the config file, written atomically with mode 0600. Without USERNAME it is asked
    for; without --password-stdin the password is asked for, hidden, at a terminal; when stdin
    is not a terminal its first line is the password.
    """
    settings = _settings(ctx, keep_token=False)
    if username is None:
        if password_stdin:
            raise click.UsageError("give USERNAME when the password comes from stdin")
        username = click.prompt("Username", default=settings.username)
    password = read_password(password_stdin, confirm=False)
    response = _run(settings, lambda client: client.sign_in(username, password))
    profile = Profile(
        server=settings.server,
        ca_cert=os.path.abspath(settings.ca_cert) if settings.ca_cert else None,
        insecure=settings.insecure,
        username=response.user.username or username,
        token=response.access_token,
    )
    save_profile(settings.config_path, profile)
    if as_json:
        out.print_json(response.user)
    else:
        expires = out.timestamp(response.expire_time) if response.expire_time else ""
        until = f"; the token is valid until {expires}" if expires else ""
        out.echo(f"Logged in to {settings.server} as {profile.username}{until}.")
        out.echo(f"Saved to {settings.config_path}.", err=True)
    if os.environ.get(ENV_TOKEN):
        out.echo(f"note: {ENV_TOKEN} is set and overrides the saved token", err=True)


@cli.command(epilog=examples("modelcatalog logout"))
def logout() -> None:
    """Sign out: revoke the saved token on the server and forget it.

    The token is forgotten even when the server cannot be reached; it then stays valid until
    it expires, and logout says so. The saved server address and CA certificate stay.
    """
    from .. import ModelCatalogError, Unauthenticated

    path = config_path()
    profile = load_profile(path)
    if profile.token is None:
        out.echo("Not logged in.")
        return
    saved = resolve(Overrides(), profile, path, environ={})
    settings = replace(saved, timeout=LOGOUT_TIMEOUT_SECONDS)
    try:
        _run(settings, lambda client: client.sign_out())
        outcome = "the server revoked the token"
    except Unauthenticated:
        outcome = "the token had already expired or been revoked"
    except (ModelCatalogError, OSError, ValueError) as error:
        outcome = ""
        out.echo(
            f"warning: could not revoke the token on {settings.server} ({error}); it stays"
            " valid until it expires",
            err=True,
        )
    save_profile(path, replace(profile, token=None, username=None))
    done = f"; {outcome}" if outcome else ""
    out.echo(f"Logged out of {settings.server}{done}; removed the token from {path}.")


@cli.command(epilog=examples("modelcatalog whoami", "modelcatalog whoami --json"))
@connection_options
@json_option
@click.pass_context
def whoami(ctx: click.Context, as_json: bool) -> None:
    """Show the account the token belongs to."""
    settings = _settings(ctx)
    user = _run(settings, lambda client: client.get_current_user())
    pairs = [
        ("username", user.username),
        ("id", user.id),
        ("created", out.timestamp(user.create_time)),
        ("server", settings.server),
    ]
    _show(user, pairs, as_json)


# --- Folders ----------------------------------------------------------------------------


@cli.group(
    cls=_Group, context_settings=CONTEXT_SETTINGS, epilog=examples("modelcatalog folder list")
)
def folder() -> None:
    """Create, list, share and leave folders."""


def _folder_pairs(item: v1.Folder) -> list[tuple[str, str]]:
    return [
        ("id", item.id),
        ("name", item.name),
        ("description", item.description),
        ("your role", out.enum_name(item.caller_role)),
        ("creator", item.creator_username),
        ("created", out.timestamp(item.create_time)),
    ]


@folder.command(
    "create",
    epilog=examples(
        "modelcatalog folder create vision",
        'modelcatalog folder create nlp --description "Language models"',
        "FOLDER=$(modelcatalog folder create vision --id-only)",
    ),
)
@click.argument("name")
@click.option("--description", default="", help="Free text, at most 4096 characters.")
@connection_options
@json_option
@id_only_option
@click.pass_context
def folder_create(
    ctx: click.Context, name: str, description: str, as_json: bool, id_only: bool
) -> None:
    """Create a folder; you become its owner. Prints its id."""
    created = _run(_settings(ctx), lambda client: client.create_folder(name, description))
    _report_created("folder", created, as_json, id_only)


@folder.command(
    "list", epilog=examples("modelcatalog folder list", "modelcatalog folder list --json")
)
@connection_options
@json_option
@click.pass_context
def folder_list(ctx: click.Context, as_json: bool) -> None:
    """List the folders you have a role in, oldest first."""
    folders = _run(_settings(ctx), lambda client: _collect(client.list_folders()))
    if as_json:
        out.print_json(folders)
        return
    out.table(
        ["ID", "NAME", "ROLE", "CREATOR", "CREATED"],
        (
            [
                f.id,
                f.name,
                out.enum_name(f.caller_role),
                f.creator_username,
                out.timestamp(f.create_time),
            ]
            for f in folders
        ),
        empty="no folders; create one with `modelcatalog folder create NAME`",
    )


@folder.command("show", epilog=examples("modelcatalog folder show FOLDER_ID"))
@click.argument("folder_id")
@connection_options
@json_option
@click.pass_context
def folder_show(ctx: click.Context, folder_id: str, as_json: bool) -> None:
    """Show one folder."""
    found = _run(_settings(ctx), lambda client: client.get_folder(folder_id))
    _show(found, _folder_pairs(found), as_json)


@folder.command(
    "grant",
    epilog=examples(
        "modelcatalog folder grant FOLDER_ID bob viewer",
        "modelcatalog folder grant FOLDER_ID carol owner",
    ),
)
@click.argument("folder_id")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES, case_sensitive=False))
@connection_options
@json_option
@click.pass_context
def folder_grant(
    ctx: click.Context, folder_id: str, username: str, role: str, as_json: bool
) -> None:
    """Give USERNAME a ROLE in a folder; owners only.

    It replaces any role they had.

    viewer: get, list, download. editor: also create models and upload versions. owner:
    also grant and revoke.
    """
    member = _run(
        _settings(ctx),
        lambda client: client.grant_folder_access(folder_id, username, role.lower()),
    )
    if as_json:
        out.print_json(member)
    else:
        out.echo(f"{member.username} is now {out.enum_name(member.role)} of folder {folder_id}.")


@folder.command("revoke", epilog=examples("modelcatalog folder revoke FOLDER_ID bob"))
@click.argument("folder_id")
@click.argument("username")
@connection_options
@click.pass_context
def folder_revoke(ctx: click.Context, folder_id: str, username: str) -> None:
    """Remove USERNAME's role in a folder; owners only (anyone may remove their own).

    It succeeds if they had none. The folder's last owner cannot be removed.
    """
    _run(_settings(ctx), lambda client: client.revoke_folder_access(folder_id, username))
    out.echo(f"{username} has no role in folder {folder_id} any more.")


@folder.command("leave", epilog=examples("modelcatalog folder leave FOLDER_ID"))
@click.argument("folder_id")
@connection_options
@click.pass_context
def folder_leave(ctx: click.Context, folder_id: str) -> None:
    """Give up your own role in a folder, e.g. one shared with you that you do not want.

    Any role may leave; the folder then no longer appears in your lists. Its last owner
    cannot leave: make another user owner first.
    """
    _run(_settings(ctx), lambda client: client.leave_folder(folder_id))
    out.echo(f"You left folder {folder_id}.")


@folder.command("access", epilog=examples("modelcatalog folder access FOLDER_ID"))
@click.argument("folder_id")
@connection_options
@json_option
@click.pass_context
def folder_access(ctx: click.Context, folder_id: str, as_json: bool) -> None:
    """List who has which role in a folder."""
    members = _run(_settings(ctx), lambda client: _collect(client.list_folder_access(folder_id)))
    if as_json:
        out.print_json(members)
        return
    out.table(
        ["USERNAME", "ROLE", "USER ID", "SINCE"],
        (
            [m.username, out.enum_name(m.role), m.user_id, out.timestamp(m.update_time)]
            for m in members
        ),
        empty="nobody has access",
    )


# --- Models -----------------------------------------------------------------------------


@cli.group(
    cls=_Group, context_settings=CONTEXT_SETTINGS, epilog=examples("modelcatalog model list")
)
def model() -> None:
    """Create, list and show models."""


@model.command(
    "create",
    epilog=examples(
        "modelcatalog model create FOLDER_ID resnet50",
        "MODEL=$(modelcatalog model create $FOLDER resnet50 --id-only)",
        'modelcatalog model create FOLDER_ID bert --description "Fine-tuned BERT"',
    ),
)
@click.argument("folder_id")
@click.argument("name")
@click.option("--description", default="", help="Free text, at most 4096 characters.")
@connection_options
@json_option
@id_only_option
@click.pass_context
def model_create(
    ctx: click.Context,
    folder_id: str,
    name: str,
    description: str,
    as_json: bool,
    id_only: bool,
) -> None:
    """Create a model in a folder where you are editor or owner. Prints its id."""
    created = _run(_settings(ctx), lambda client: client.create_model(folder_id, name, description))
    _report_created("model", created, as_json, id_only)


@model.command(
    "list",
    epilog=examples("modelcatalog model list", "modelcatalog model list --folder FOLDER_ID --json"),
)
@click.option("--folder", "folder_id", metavar="FOLDER_ID", help="Only the models of this folder.")
@connection_options
@json_option
@click.pass_context
def model_list(ctx: click.Context, folder_id: str | None, as_json: bool) -> None:
    """List the models you may see, oldest first."""
    models = _run(_settings(ctx), lambda client: _collect(client.list_models(folder_id)))
    if as_json:
        out.print_json(models)
        return
    out.table(
        ["ID", "NAME", "FOLDER", "LATEST", "CREATOR", "CREATED"],
        (
            [
                m.id,
                m.name,
                m.folder_id,
                str(m.latest_version or "-"),
                m.creator_username,
                out.timestamp(m.create_time),
            ]
            for m in models
        ),
        empty="no models",
    )


@model.command("show", epilog=examples("modelcatalog model show MODEL_ID"))
@click.argument("model_id")
@connection_options
@json_option
@click.pass_context
def model_show(ctx: click.Context, model_id: str, as_json: bool) -> None:
    """Show one model."""
    found = _run(_settings(ctx), lambda client: client.get_model(model_id))
    pairs = [
        ("id", found.id),
        ("name", found.name),
        ("folder", found.folder_id),
        ("description", found.description),
        ("latest version", str(found.latest_version or "none")),
        ("creator", found.creator_username),
        ("created", out.timestamp(found.create_time)),
    ]
    _show(found, pairs, as_json)


# --- Versions ---------------------------------------------------------------------------


@cli.group(
    cls=_Group,
    context_settings=CONTEXT_SETTINGS,
    epilog=examples("modelcatalog version list MODEL_ID"),
)
def version() -> None:
    """Upload, download, list and show model versions."""


def _version_pairs(item: v1.ModelVersion) -> list[tuple[str, str]]:
    labels = ", ".join(f"{key}={value}" for key, value in sorted(item.labels.items()))
    return [
        ("model", item.model_id),
        ("version", str(item.version)),
        ("file name", item.file_name),
        ("content type", item.content_type),
        ("size", f"{out.human_size(item.size_bytes)} ({item.size_bytes} bytes)"),
        ("sha256", item.sha256),
        ("description", item.description),
        ("labels", labels),
        ("creator", item.creator_username),
        ("created", out.timestamp(item.create_time)),
    ]


def _parse_labels(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", ctx, param)
        labels[key] = text
    return labels


def _show_progress(quiet: bool, as_json: bool) -> bool:
    return not quiet and not as_json and out.stdout_is_terminal()


@version.command(
    "upload",
    epilog=examples(
        "modelcatalog version upload MODEL_ID resnet50.onnx",
        "modelcatalog version upload MODEL_ID ckpt.tar.gz --label stage=dev --label arch=vit",
        'modelcatalog version upload MODEL_ID model.onnx --description "epoch 40" -q',
    ),
)
@click.argument("model_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--description", default="", help="Free text, at most 4096 characters.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_labels,
    help="A label; repeat for several.",
)
@click.option(
    "--content-type", metavar="TYPE", help="Media type, e.g. application/onnx (default: the SDK's)."
)
@quiet_option
@connection_options
@json_option
@click.pass_context
def version_upload(
    ctx: click.Context,
    model_id: str,
    file: Path,
    description: str,
    labels: dict[str, str],
    content_type: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Upload FILE as the next version of a model; prints the version number and SHA-256."""
    settings = _settings(ctx)
    total = file.stat().st_size

    async def upload(client: AsyncClient) -> v1.ModelVersion:
        enabled = _show_progress(quiet, as_json)
        with out.transfer_progress(f"upload {file.name}", enabled=enabled, total=total) as bar:
            return await client.upload(
                model_id,
                file,
                content_type=content_type,
                description=description,
                labels=labels,
                progress=bar,
            )

    uploaded = _run(settings, upload)
    if as_json:
        out.print_json(uploaded)
        return
    out.echo(
        f"Uploaded {file.name} as version {uploaded.version} of model {uploaded.model_id}"
        f" ({out.human_size(uploaded.size_bytes)}), sha256 {uploaded.sha256}"
    )


@version.command(
    "download",
    epilog=examples(
        "modelcatalog version download MODEL_ID 3",
        "modelcatalog version download MODEL_ID 3 -o weights/resnet50.onnx",
        "modelcatalog version download MODEL_ID 3 --no-resume --quiet",
    ),
)
@click.argument("model_id")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@click.option(
    "-o",
    "--output",
    "destination",
    type=click.Path(path_type=Path),
    help="File (replaced if it exists) or existing folder to write to (default: the uploaded"
    " file name, here).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    help="Continue a partial DEST.part from an earlier attempt (default) or start over.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing file that has the uploaded file name (without -o or with -o FOLDER).",
)
@quiet_option
@connection_options
@json_option
@click.pass_context
def version_download(
    ctx: click.Context,
    model_id: str,
    number: int,
    destination: Path | None,
    resume: bool,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Download a version; resumes a partial download and verifies its SHA-256.

    The uploaded file name is used without its folders; one starting with "." is saved as
    MODEL_ID-vVERSION instead. A file of that name is not replaced without --force.
    """
    from .._files import download_name

    settings = _settings(ctx)
    # Unless given a file path, the SDK names the file after the version and keeps existing ones.
    named = destination is None or destination.is_dir()
    where = Path(os.curdir) if destination is None else destination

    async def download(client: AsyncClient) -> tuple[Path, v1.ModelVersion]:
        label = f"download version {number}" if named else f"download {where.name}"
        with out.transfer_progress(label, enabled=_show_progress(quiet, as_json)) as bar:
            result = await client.download(
                model_id, number, where, resume=resume, overwrite=force, progress=bar
            )
        if not named:
            return where, result
        name = download_name(result.file_name, model_id, number)
        return (Path(name) if destination is None else where / name), result

    try:
        target, downloaded = _run(settings, download)
    except FileExistsError as error:
        raise CliError(
            f"{os.path.normpath(error.filename)} exists already; pass --force to replace it,"
            " or -o to save the download elsewhere",
            ExitCode.CONFLICT,
        ) from error
    if as_json:
        out.print_json({"path": str(target), "version": out.jsonable(downloaded)})
        return
    out.echo(
        f"Downloaded version {downloaded.version} of model {downloaded.model_id} to {target}"
        f" ({out.human_size(downloaded.size_bytes)}), sha256 {downloaded.sha256} verified"
    )


@version.command(
    "list",
    epilog=examples(
        "modelcatalog version list MODEL_ID", "modelcatalog version list MODEL_ID --json"
    ),
)
@click.argument("model_id")
@connection_options
@json_option
@click.pass_context
def version_list(ctx: click.Context, model_id: str, as_json: bool) -> None:
    """List the versions of a model, newest first."""
    versions = _run(_settings(ctx), lambda client: _collect(client.list_model_versions(model_id)))
    if as_json:
        out.print_json(versions)
        return
    out.table(
        ["VERSION", "FILE", "SIZE", "SHA256", "CREATOR", "CREATED"],
        (
            [
                str(v.version),
                v.file_name,
                out.human_size(v.size_bytes),
                v.sha256[:12],
                v.creator_username,
                out.timestamp(v.create_time),
            ]
            for v in versions
        ),
        empty="no versions; upload one with `modelcatalog version upload MODEL_ID FILE`",
    )


@version.command("show", epilog=examples("modelcatalog version show MODEL_ID 3"))
@click.argument("model_id")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@connection_options
@json_option
@click.pass_context
def version_show(ctx: click.Context, model_id: str, number: int, as_json: bool) -> None:
    """Show one version: file, size, SHA-256, labels."""
    found = _run(_settings(ctx), lambda client: client.get_model_version(model_id, number))
    _show(found, _version_pairs(found), as_json)


# --- Shell ------------------------------------------------------------------------------


@cli.command(
    epilog=examples(
        "modelcatalog shell",
        "printf 'whoami\\nfolder list\\n' | modelcatalog shell",
    )
)
@click.pass_context
def shell(ctx: click.Context) -> None:
    """Run commands at an interactive prompt, with history.

    Type a command without `modelcatalog` (e.g. `folder list`), `help [COMMAND]` for help,
    and `exit [N]` or Ctrl-D to leave. The history is kept in the config folder. Reading
    commands from a pipe runs them in turn; the exit status is the last command's.
    """
    from ._shell import run_shell

    base = _state(ctx).overrides
    status = run_shell(cli, lambda: State(overrides=base.merged(Overrides()), in_shell=True))
    ctx.exit(status)


cli.add_command(completion)


def main(argv: Iterable[str] | None = None) -> None:
    """The console script: run the command line and exit with its status."""
    cli.main(args=None if argv is None else list(argv), prog_name="modelcatalog")
