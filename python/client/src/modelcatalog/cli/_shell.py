"""``modelcatalog shell``: the command tree behind a prompt, with readline history.

Each line is split like a POSIX shell would (``shlex``) and run through the same Click
command tree as the console script, so commands, help, errors and exit codes are the same.
On a terminal the prompt has line editing, a history kept in the config folder and Tab
completion of commands, sub-commands, options and choices (Click's own completion, which also
drives the bash/zsh/fish scripts of ``modelcatalog completion``). From a pipe the lines run
in turn without a prompt, and a command reads a password from the pipe only with
``--password-stdin`` (the line after it).
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

from . import _context as context
from . import _output as out
from ._completion import COMPLETE_VAR, PROG_NAME
from ._config import HISTORY_FILE_NAME, config_dir
from ._errors import ExitCode
from ._password import stdin_holds_commands
from ._root import examples

PROMPT = "modelcatalog> "
HISTORY_LENGTH = 1000

_EXIT_WORDS = frozenset({"exit", "quit"})
_HELP_WORDS = frozenset({"help", "?"})
_SHELL_WORDS = ("help", "exit", "quit")
"""What the shell understands besides the commands, offered for a line's first word."""

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


def completions(root: click.Command, line: str) -> list[str]:
    """What Tab may put in place of the last word of ``line`` (the text before the cursor).

    Words are split as when the line runs; the shell's own words and a leading ``help`` or
    ``modelcatalog`` are understood as the loop understands them.
    """
    from click.shell_completion import ShellComplete

    try:
        words = shlex.split(line)
    except ValueError:  # an open quote: nothing sensible to offer
        return []
    incomplete = "" if not words or line[-1:].isspace() else words.pop()
    first_word = not words
    if words[:1] == [PROG_NAME] or (words and words[0] in _HELP_WORDS):
        words = words[1:]
    found = ShellComplete(root, {}, PROG_NAME, COMPLETE_VAR).get_completions(words, incomplete)
    names = [item.value for item in found if item.type == "plain"]
    if not words:  # the shell is not run inside itself
        names = [name for name in names if name != "shell"]
    if first_word:
        names += [word for word in _SHELL_WORDS if word.startswith(incomplete)]
    return names


class _Completion:
    """Binds Tab to ``completions`` over ``root`` while the interactive shell runs."""

    def __init__(self, root: click.Command, readline: ModuleType) -> None:
        self.root = root
        self.readline = readline
        self.matches: list[str] = []

    def complete(self, text: str, state: int) -> str | None:
        """readline's completer: the ``state``-th candidate for the word at the cursor."""
        if state == 0:
            line = self.readline.get_line_buffer()[: self.readline.get_endidx()]
            self.matches = completions(self.root, line)
        return self.matches[state] if state < len(self.matches) else None

    def __enter__(self) -> "_Completion":
        self.previous = (self.readline.get_completer(), self.readline.get_completer_delims())
        self.readline.set_completer(self.complete)
        self.readline.set_completer_delims(" \t\n")  # options and ids keep their - and =
        if "libedit" in (self.readline.__doc__ or ""):  # macOS's readline
            self.readline.parse_and_bind("bind ^I rl_complete")
        else:
            self.readline.parse_and_bind("tab: complete")
        return self

    def __exit__(self, *exc_info: object) -> None:
        completer, delims = self.previous
        self.readline.set_completer(completer)
        self.readline.set_completer_delims(delims)


def run_line(root: click.Command, args: list[str], obj: Any) -> int:
    """Run one command line through the tree and return its exit status."""
    try:
        result = root.main(args=args, prog_name=PROG_NAME, standalone_mode=False, obj=obj)
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
    readline = history.readline
    completion = _Completion(root, readline) if readline else contextlib.nullcontext()
    out.echo(INTRO)
    with history, completion:
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


@click.command(
    epilog=examples(
        "modelcatalog shell",
        "printf 'whoami\\nfolder list\\n' | modelcatalog shell",
    ),
)
@click.pass_context
def shell(ctx: click.Context) -> None:
    """Run commands at an interactive prompt, with history and Tab completion.

    Type a command without `modelcatalog` (e.g. `folder list`), `help [COMMAND]` for help,
    and `exit [N]` or Ctrl-D to leave. The history is kept in the config folder. Reading
    commands from a pipe runs them in turn; the exit status is the last command's.
    """
    status = run_shell(ctx.find_root().command, context.state(ctx).for_shell_line)
    ctx.exit(status)
