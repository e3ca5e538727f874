"""Tab completion: in `modelcatalog shell`, and the bash/zsh/fish scripts Click generates."""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_testing import CliHarness

from modelcatalog.cli import _app, _shell, cli
from modelcatalog.cli._context import State
from modelcatalog.cli._shell import completions

COMMANDS = [
    "signup",
    "login",
    "logout",
    "whoami",
    "account",
    "token",
    "folder",
    "model",
    "version",
    "alias",
    "access",
    "audit",
    "watch",
    "completion",
]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", [*COMMANDS, "help", "exit", "quit"]),
        ("fo", ["folder"]),
        ("e", ["exit"]),
        (
            "folder ",
            ["create", "list", "show", "update", "grant", "revoke", "leave", "access", "delete"],
        ),
        ("folder gr", ["grant"]),
        ("folder grant F bob ", ["viewer", "editor", "owner"]),
        ("folder grant F bob o", ["owner"]),
        ("login --se", ["--server"]),
        ("version download M 1 --res", ["--resume"]),
        ("help ver", ["version"]),
        ("modelcatalog mo", ["model"]),
        ("completion ", ["bash", "zsh", "fish"]),
        ('folder show "open', []),
    ],
)
def test_completions_follow_the_command_tree(line: str, expected: list[str]) -> None:
    """Tab offers the commands, sub-commands, options and choices that fit the line so far."""
    assert completions(cli, line) == expected


def test_completions_offer_options_of_the_command_and_the_connection() -> None:
    """`folder list --` offers the command's own options and the connection flags."""
    offered = completions(cli, "folder list --")
    assert {"--json", "--server", "--ca-cert", "--insecure", "--tls", "--help"} <= set(offered)
    assert "--id-only" not in offered


def test_readline_completer_answers_by_state() -> None:
    """readline's callback returns the candidates for the buffer up to the cursor, then None."""
    buffer = "folder gr and more"
    fake_readline = SimpleNamespace(get_line_buffer=lambda: buffer, get_endidx=lambda: 9)
    completer = _shell._Completion(cli, fake_readline)  # type: ignore[arg-type]
    assert completer.complete("gr", 0) == "grant"
    assert completer.complete("gr", 1) is None


def test_interactive_shell_binds_tab_and_restores_the_completer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """While the interactive shell prompts, Tab completes commands; afterwards it is unbound."""
    CliHarness(monkeypatch, tmp_path)
    readline = _shell._readline()
    assert readline is not None
    readline.set_completer(None)
    seen: list[Callable[[str, int], str | None] | None] = []

    def fake_input(prompt: str) -> str:
        seen.append(readline.get_completer())
        return "exit"

    monkeypatch.setattr("builtins.input", fake_input)
    status = _shell.run_shell(
        _app.cli,
        lambda: State(in_shell=True),
        interactive=True,
        history_path=tmp_path / "history",
    )
    assert status == 0
    active = seen[0]
    assert active is not None
    assert active("", 0) == "signup"  # the buffer is empty outside a real prompt
    assert readline.get_completer() is None


def _run_program(environ: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "modelcatalog.cli", *args],
        env=os.environ | environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_complete_variable_prints_a_bash_script_that_asks_for_the_commands() -> None:
    """`_MODELCATALOG_COMPLETE=bash_source modelcatalog` prints the script `completion bash`
    prints, and the completion request the script makes names the matching commands."""
    script = _run_program({"_MODELCATALOG_COMPLETE": "bash_source"})
    assert "complete -o nosort -F _modelcatalog_completion modelcatalog" in script
    assert _run_program({}, "completion", "bash") == script
    answer = _run_program(
        {
            "_MODELCATALOG_COMPLETE": "bash_complete",
            "COMP_WORDS": "modelcatalog folder gr",
            "COMP_CWORD": "2",
        }
    )
    assert answer.split() == ["plain,grant"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_commands_with_the_generated_script() -> None:
    """In bash, the script from `modelcatalog completion bash` completes `folder gr` to grant."""
    program_dir = str(Path(sys.executable).parent)
    assert shutil.which("modelcatalog", path=program_dir)
    session = (
        'eval "$(modelcatalog completion bash)"\n'
        "COMP_WORDS=(modelcatalog folder gr); COMP_CWORD=2\n"
        '_modelcatalog_completion modelcatalog; echo "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", session],
        env=os.environ | {"PATH": f"{program_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["grant"], done.stderr


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_completion_prints_zsh_and_fish_scripts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shell: str
) -> None:
    """`completion zsh` and `completion fish` print Click's scripts for the program."""
    result = CliHarness(monkeypatch, tmp_path).run("completion", shell)
    assert result.exit_code == 0
    assert "_MODELCATALOG_COMPLETE" in result.stdout
    assert f"{shell}_complete" in result.stdout
