"""The ``modelcatalog`` command tree (Click), assembled from one module per command group.

The root group and shared options are in ``_root``, the run's state and client in
``_context``; the commands are in ``_accounts``, ``_tokens``, ``_folders``, ``_models``,
``_versions``, ``_aliases``, ``_access``, ``_audit`` (``audit`` and ``watch``), ``_shell``
and ``_completion``. The root imports a command's module only when that command is used
(``LazyCommand``), so ``--help`` loads none of them and each command only its own.

The SDK (grpclib, betterproto, the generated code), asyncio and Rich are imported inside the
commands that use them, never at the top: ``--help``, ``--version`` and usage errors load only
Click and this package (``python/client/tests/test_cli_startup.py`` guards it).
"""

from collections.abc import Iterable

from ._context import State
from ._root import LazyCommand, cli

__all__ = ["cli", "main"]

cli.lazy_commands.update(
    {
        "signup": LazyCommand("._accounts", "signup", "Create an account (it does not log in)."),
        "login": LazyCommand(
            "._accounts", "login", "Sign in and save the token for later commands."
        ),
        "logout": LazyCommand(
            "._accounts",
            "logout",
            "Sign out: revoke the saved token on the server and forget it.",
        ),
        "whoami": LazyCommand(
            "._accounts",
            "whoami",
            "Show the account the token belongs to, and the server it is for.",
        ),
        "account": LazyCommand(
            "._accounts",
            "account",
            "Change your password, sign out everywhere, or delete your account.",
        ),
        "token": LazyCommand(
            "._tokens",
            "token",
            "Create, list and revoke access tokens for machines (CI jobs, deploy jobs).",
        ),
        "folder": LazyCommand(
            "._folders", "folder", "Create, list, edit, share, leave and delete folders."
        ),
        "model": LazyCommand("._models", "model", "Create, list, show, edit and delete models."),
        "version": LazyCommand(
            "._versions",
            "version",
            "Upload, download, list, show, edit and delete model versions.",
        ),
        "alias": LazyCommand(
            "._aliases",
            "alias",
            "Name versions of a model (production, staging, ...) and move the names.",
        ),
        "access": LazyCommand("._access", "access", "Explain who has access to what, and why."),
        "audit": LazyCommand(
            "._audit",
            "audit",
            "Read the audit trail: every change, download and sign-in, who made it and how it"
            " ended.",
        ),
        "watch": LazyCommand(
            "._audit",
            "watch",
            "Print changes in your folders as they happen, one line per event, until Ctrl-C.",
        ),
        "shell": LazyCommand(
            "._shell",
            "shell",
            "Run commands at an interactive prompt, with history and Tab completion.",
        ),
        "completion": LazyCommand(
            "._completion", "completion", "Print the Tab completion script for bash, zsh or fish."
        ),
    }
)


def main(argv: Iterable[str] | None = None, obj: State | None = None) -> None:
    """The console script: run the command line and exit with its status.

    ``obj`` is the run's state, e.g. with another client factory; a default one otherwise.
    """
    cli.main(args=None if argv is None else list(argv), prog_name="modelcatalog", obj=obj)
