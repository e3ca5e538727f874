"""The root command group, the options every command shares, and help epilogs.

Expected failures are turned into one-line errors with an exit code per kind (see ``_errors``)
by the root group, so every command, in the shell too, reports them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any, TypeVar

import click

from .. import __version__
from ._config import DEFAULT_SERVER, ENV_CA_CERT, ENV_INSECURE, ENV_SERVER, ENV_TOKEN
from ._context import State, state
from ._errors import EXIT_CODES_HELP, CliError, ExitCode, from_exception

_F = TypeVar("_F", bound=Callable[..., Any])


class Group(click.Group):
    """A group that lists its commands in the order they are defined, not alphabetically,
    and shows its help (exit status 0) when run without a command."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit()
        return super().parse_args(ctx, args)


def _usage_error(error: click.UsageError) -> CliError:
    """Click's usage error in the CLI's one style: ``error: <what>; usage: <synopsis>``.

    A bad value says what is wrong with it; other usage errors (a missing argument, an
    unknown option) add the command's synopsis, unless the message already says what to do.
    """
    message = " ".join(error.format_message().split()).removesuffix(".")
    if message[:2].istitle():  # "Missing argument" → "missing argument"; "MODEL_ID ..." stays
        message = message[0].lower() + message[1:]
    bad_value = isinstance(error, click.BadParameter) and not isinstance(
        error, click.MissingParameter
    )
    if error.ctx is not None and not bad_value and ";" not in message:
        message += "; usage: " + error.ctx.get_usage().removeprefix("Usage: ")
    return CliError(message, ExitCode.USAGE)


def _aborted_prompt(abort: click.Abort) -> CliError:
    """A prompt Click gave up on, in the CLI's style instead of Click's ``Aborted!``: Ctrl-C
    (exit 130) or the end of the input (exit 2). Click raises ``Abort`` for both, its cause
    kept as the exception's context."""
    if isinstance(abort.__context__, EOFError):
        return CliError("no input: the prompt reached the end of stdin", ExitCode.USAGE)
    return CliError("interrupted", ExitCode.INTERRUPTED)


@dataclass(frozen=True)
class LazyCommand:
    """A command of the root group imported only when it runs, its help is shown or Tab
    completes it (as pip lists its commands), so that ``--help`` and each command load only
    their own module: ``module`` (in this package) defines it as ``attribute``. ``summary``
    is the first sentence of its help, listed by the root's ``--help``
    (``tests/test_cli_commands.py`` checks that they agree)."""

    module: str
    attribute: str
    summary: str

    def load(self) -> click.Command:
        command = getattr(import_module(self.module, __package__), self.attribute)
        assert isinstance(command, click.Command), f"{self} is not a Click command"
        return command


class _RootGroup(Group):
    """The root command: its subcommands are the ``LazyCommand``s in ``lazy_commands`` (it has
    no others: ``add_command`` is not how they are registered); reports Click's usage errors
    and the expected exceptions of any subcommand as one-line ``CliError``s, and Ctrl-C as
    exit status 130."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, LazyCommand] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy_commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_commands.get(cmd_name)
        return lazy.load() if lazy else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's list of commands, each shown by its summary, without importing it."""
        limit = formatter.width - 6 - max(map(len, self.lazy_commands))
        rows = [
            (name, click.Command(name, help=lazy.summary).get_short_help_str(limit))
            for name, lazy in self.lazy_commands.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            raise _usage_error(error) from error

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise _usage_error(error) from error
        except KeyboardInterrupt as interrupt:
            raise CliError("interrupted", ExitCode.INTERRUPTED) from interrupt
        except click.Abort as abort:
            raise _aborted_prompt(abort) from abort
        except (click.ClickException, click.exceptions.Exit):
            raise  # Click's own outcomes (--help of a subcommand exits from in here)
        except Exception as error:
            current = ctx.find_object(State)
            settings = current.settings if current else None
            converted = from_exception(
                error,
                server=settings.server if settings else "the server",
                login=current.login_command() if current else "modelcatalog login",
                token_variable=ENV_TOKEN if settings and settings.token_from_env else None,
                settings=settings,
            )
            if converted is None:
                raise
            raise converted from error


def folder_argument(function: _F) -> _F:
    """A FOLDER argument: a folder's id, or its name (resolved by ``context.folder_id``)."""
    return click.argument("folder", metavar="FOLDER")(function)


def model_argument(function: _F) -> _F:
    """A MODEL argument: a model's id, or its name (resolved by ``context.model_id``)."""
    return click.argument("model", metavar="MODEL")(function)


def _override(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record a connection flag in the shared state; the one closest to the command wins."""
    if value is not None and param.name is not None:
        setattr(state(ctx).overrides, param.name, value)
    return value


_CA_CERT_FILE = click.Path(exists=True, dir_okay=False)
"""The ``--ca-cert`` type, made once: every command has the option, and each ``click.Path``
looks up its translated name in the locale files (about a quarter of a millisecond each)."""


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
            type=_CA_CERT_FILE,
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


def password_stdin_option(function: _F) -> _F:
    """``--password-stdin``: the password from one line of stdin, for scripts."""
    return click.option(
        "--password-stdin", is_flag=True, help="Read the password from one line of stdin."
    )(function)


def id_only_option(function: _F) -> _F:
    """``--id-only``: print just the new id, for scripts that capture it."""
    return click.option(
        "--id-only",
        is_flag=True,
        help="Print only the new id, e.g. ID=$(modelcatalog ... --id-only).",
    )(function)


def exist_ok_option(meaning: str) -> Callable[[_F], _F]:
    """``--exist-ok``: succeed when what the command would create exists already, so a script
    (the README's quickstart) can run twice."""
    return click.option("--exist-ok", is_flag=True, help=meaning)


def if_match_option(kind: str) -> Callable[[_F], _F]:
    """``--if-match ETAG``: change the resource only if nobody changed it since its etag (as
    ``show --json`` prints it) was read; otherwise fail with exit code 6."""
    return click.option(
        "--if-match",
        "if_match",
        metavar="ETAG",
        callback=_not_empty,
        help=f"Change the {kind} only if its etag (from `show --json`) is still ETAG.",
    )


def _not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An empty ``--if-match`` (a script's empty variable) would make the change
    unconditional: refused instead."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            "an empty etag would change the resource unconditionally", ctx, param
        )
    return value


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
    state(ctx)
