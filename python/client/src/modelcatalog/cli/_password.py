"""Reading a password: a hidden prompt at a terminal, else one line of stdin, without a prompt.

Python's ``getpass`` warns (``GetPassWarning: Can not control echo on the terminal``) and reads
stdin anyway when there is no terminal, so a password piped in is read here directly instead.
In ``modelcatalog shell`` reading its commands from a pipe, stdin holds the next commands, so
a password is read from it only when the command says so (``--password-stdin``).
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import click

from ._errors import CliError, ExitCode

_commands_on_stdin: ContextVar[bool] = ContextVar("commands_on_stdin", default=False)


@contextmanager
def stdin_holds_commands() -> Iterator[None]:
    """While active, a command that would read a password from stdin without being told fails."""
    token = _commands_on_stdin.set(True)
    try:
        yield
    finally:
        _commands_on_stdin.reset(token)


def read_password(from_stdin: bool, *, confirm: bool, prompt: str = "Password") -> str:
    """The password: one line of stdin with ``from_stdin`` or when stdin is not a terminal,
    else a hidden ``prompt`` (asked twice with ``confirm``)."""
    if from_stdin:
        return _read_line("--password-stdin read no password; pipe it in, one line")
    if _is_terminal():
        password: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        return password
    if _commands_on_stdin.get():
        raise CliError(
            "no password: the shell reads its commands from stdin; add --password-stdin and put"
            " the password on the next line, or run the command at a terminal",
            ExitCode.USAGE,
        )
    return _read_line(
        "no password: stdin is not a terminal and was empty; pipe the password in, one line"
    )


def _is_terminal() -> bool:
    isatty = getattr(sys.stdin, "isatty", None)
    return bool(isatty and isatty())


def _read_line(empty_message: str) -> str:
    """One line of stdin without its line ending; an empty one is refused."""
    password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise CliError(empty_message, ExitCode.USAGE)
    return password
