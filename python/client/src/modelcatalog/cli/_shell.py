"""``modelcatalog shell``: the command tree behind a prompt, with readline history.

Each line is split like a POSIX shell would (``shlex``) and run through the same Click
command tree as the console script, so commands, help, errors and exit codes are the same.
On a terminal the prompt has line editing and a history kept in the config folder; from a
pipe the lines run in turn without a prompt, and a command reads a password from the pipe only
with ``--password-stdin`` (the line after it).
"""

import contextlib
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from . import _output as out
from ._config import HISTORY_FILE_NAME, config_dir
from ._errors import ExitCode
from ._password import stdin_holds_commands

PROMPT = "modelcatalog> "
HISTORY_LENGTH = 1000

_EXIT_WORDS = frozenset({"exit", "quit"})
_HELP_WORDS = frozenset({"help", "?"})

INTRO = "modelcatalog shell: type `help` for the commands, `exit` or Ctrl-D to leave."


def _readline() -> ModuleType | None:
    """The stdlib ``readline`` module, where the platform has one."""
    try:
        import readline
    except ImportError:  # pragma: no cover - e.g. Windows without pyreadline
        return None
    return readline


class _History:
    """Loads the history file on entry and writes it back (mode 0600) on exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.readline = _readline()

    def __enter__(self) -> "_History":
        if self.readline is not None:
            self.readline.set_history_length(HISTORY_LENGTH)
            with contextlib.suppress(OSError):
                self.readline.read_history_file(self.path)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.readline is None:
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.readline.write_history_file(self.path)
            os.chmod(self.path, 0o600)
        except OSError as error:
            out.echo(f"warning: cannot save the shell history to {self.path}: {error}", err=True)


def run_line(root: click.Command, args: list[str], obj: Any) -> int:
    """Run one command line through the tree and return its exit status."""
    try:
        result = root.main(args=args, prog_name="modelcatalog", standalone_mode=False, obj=obj)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        out.echo("Aborted!", err=True)
        return ExitCode.ERROR
    # With standalone_mode=False, Click returns the status of ctx.exit() (e.g. after --help).
    return result if isinstance(result, int) else ExitCode.OK


def _words(line: str) -> list[str] | None:
    """The words of a line, or ``None`` (after saying why) when quotes do not match."""
    try:
        return shlex.split(line, comments=True)
    except ValueError as error:
        out.echo(f"error: cannot split the line: {error}", err=True)
        return None


def run_shell(
    root: click.Command,
    new_obj: Callable[[], Any],
    *,
    interactive: bool | None = None,
    history_path: Path | None = None,
) -> int:
    """Read commands until ``exit`` or end of input; the status is the last command's.

    ``new_obj`` makes the Click ``obj`` for each line, so flags given on one line do not
    carry over to the next.
    """
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        with stdin_holds_commands():
            return _loop(root, new_obj, read=_read_piped)
    history = _History(history_path or config_dir() / HISTORY_FILE_NAME)
    out.echo(INTRO)
    with history:
        return _loop(root, new_obj, read=_read_interactive)


def _read_interactive() -> str | None:
    """One line from the prompt (readline editing and history); ``None`` at Ctrl-D."""
    while True:
        try:
            return input(PROMPT)
        except EOFError:
            out.echo("")
            return None
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as in bash
            out.echo("")


def _read_piped() -> str | None:
    """One line of stdin; ``None`` at its end."""
    line = sys.stdin.readline()
    return line if line else None


def _loop(
    root: click.Command, new_obj: Callable[[], Any], *, read: Callable[[], str | None]
) -> int:
    status = int(ExitCode.OK)
    while (line := read()) is not None:
        words = _words(line)
        if words is None:
            status = ExitCode.USAGE
            continue
        if not words:
            continue
        if words[0] in _EXIT_WORDS:
            if len(words) > 1:
                if not words[1].isdecimal():
                    out.echo(f"error: {words[0]} takes a number, got {words[1]!r}", err=True)
                    status = ExitCode.USAGE
                    continue
                status = int(words[1]) % 256
            break
        if words[0] in _HELP_WORDS:
            words = [*words[1:], "--help"]
        elif words[0] == "shell":
            out.echo("error: already in the shell", err=True)
            status = ExitCode.USAGE
            continue
        elif words[0] == "modelcatalog":  # forgive the habit of typing the program name
            words = words[1:]
        status = run_line(root, words, new_obj())
    return status
