"""The ``modelcatalog`` command tree (Click), assembled from one module per command group.

The root group and shared options are in ``_root``, the run's state and client in
``_context``; the commands are in ``_accounts``, ``_tokens``, ``_folders``, ``_models``,
``_versions``, ``_aliases``, ``_access`` and ``_audit`` (``audit`` and ``watch``);
``shell`` is here because it runs the assembled tree.

The SDK (grpclib, betterproto, the generated code), asyncio and Rich are imported inside the
commands that use them, never at the top: ``--help``, ``--version`` and usage errors load only
Click and this package (``python/client/tests/test_cli_startup.py`` guards it).
"""

from collections.abc import Iterable

import click

from . import _context as context
from ._access import access
from ._accounts import account, login, logout, signup, whoami
from ._aliases import alias
from ._audit import audit, watch
from ._completion import completion
from ._context import State
from ._folders import folder
from ._models import model
from ._root import cli, examples
from ._tokens import token
from ._versions import version

__all__ = ["cli", "main"]

for _command in (
    signup,
    login,
    logout,
    whoami,
    account,
    token,
    folder,
    model,
    version,
    alias,
    access,
    audit,
    watch,
):
    cli.add_command(_command)


@cli.command(
    epilog=examples(
        "modelcatalog shell",
        "printf 'whoami\\nfolder list\\n' | modelcatalog shell",
    )
)
@click.pass_context
def shell(ctx: click.Context) -> None:
    """Run commands at an interactive prompt, with history and Tab completion.

    Type a command without `modelcatalog` (e.g. `folder list`), `help [COMMAND]` for help,
    and `exit [N]` or Ctrl-D to leave. The history is kept in the config folder. Reading
    commands from a pipe runs them in turn; the exit status is the last command's.
    """
    from ._shell import run_shell

    status = run_shell(cli, context.state(ctx).for_shell_line)
    ctx.exit(status)


cli.add_command(completion)


def main(argv: Iterable[str] | None = None, obj: State | None = None) -> None:
    """The console script: run the command line and exit with its status.

    ``obj`` is the run's state, e.g. with another client factory; a default one otherwise.
    """
    cli.main(args=None if argv is None else list(argv), prog_name="modelcatalog", obj=obj)
