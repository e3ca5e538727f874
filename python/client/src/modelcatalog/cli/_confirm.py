"""Asking before a deletion: a yes/no prompt at a terminal, ``--yes`` everywhere else.

A deletion cannot be undone, so without ``--yes`` a command that deletes asks first when a
person can answer (stdin is a terminal) and refuses with a usage error (exit 2) when nobody can
(a script, a pipe, ``modelcatalog shell`` reading its commands from stdin), instead of deleting
unasked or waiting for an answer that never comes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ._errors import CliError, ExitCode

_F = TypeVar("_F", bound=Callable[..., Any])


def yes_option(function: _F) -> _F:
    """``--yes``/``-y``: delete without asking, as scripts must."""
    return click.option(
        "--yes",
        "-y",
        "yes",
        is_flag=True,
        help="Do not ask for confirmation (required when stdin is not a terminal).",
    )(function)


def confirm_deletion(question: str, *, yes: bool) -> None:
    """Returns when the deletion may go ahead: ``yes``, or the user agreed to ``question``.

    Raises ``CliError``: exit 2 when there is no terminal to ask at, 1 when the user declined.
    """
    if yes:
        return
    if not stdin_is_terminal():
        raise CliError(
            "this deletes data for good and stdin is not a terminal to ask at; add --yes to"
            " confirm it",
            ExitCode.USAGE,
        )
    if not click.confirm(f"{question} This cannot be undone.", default=False, err=True):
        raise CliError("not confirmed; nothing was deleted", ExitCode.ERROR)


def stdin_is_terminal() -> bool:
    isatty = getattr(sys.stdin, "isatty", None)
    return bool(isatty and isatty())
