"""`modelcatalog shell`: the same command tree behind a prompt, from a pipe or a terminal."""

import stat

import pytest
from cli_testing import FOLDER_ID, UNKNOWN_ID, CliHarness
from grpclib.const import Status
from rpc_testing import grpc_error

from modelcatalog.cli import _shell, cli

pytest_plugins = ["cli_fixtures"]


def test_piped_commands_run_in_turn_and_exit_0(harness: CliHarness) -> None:
    """Commands piped to the shell run in order through the same tree, and the shell exits 0."""
    script = "folder create vision\n\n# a comment\nfolder list\nwhoami --json\n"
    result = harness.run("shell", input=script)
    assert result.exit_code == 0, result.stderr
    assert f"Created folder vision: {FOLDER_ID}" in result.stdout
    assert "NAME" in result.stdout
    assert '"username": "alice"' in result.stdout
    assert harness.backend.authorization[1:] == ["Bearer tok-alice"] * 3


def test_errors_do_not_stop_the_shell_and_set_its_status(harness: CliHarness) -> None:
    """A failing command prints its one-line error, later lines still run, status is the last."""
    harness.backend.folders.clear()
    result = harness.run(
        "shell", input=f"folder show {UNKNOWN_ID}\nwhoami\nfolder show {UNKNOWN_ID}\n"
    )
    assert result.exit_code == 4
    assert result.stderr.count("error: ") == 2
    assert "alice" in result.stdout
    assert "Traceback" not in result.output


def test_help_exit_and_bad_lines(harness: CliHarness) -> None:
    """help shows the commands, bad quoting and `shell` are refused, `exit` stops reading."""
    script = 'help\nhelp folder\nfolder show "open\nshell\nexit\nwhoami\n'
    result = harness.run("shell", input=script)
    assert result.exit_code == 2  # exit keeps the status of the last command, like sh
    assert "Exit codes:" in result.stdout
    assert "grant" in result.stdout
    assert "No closing quotation" in result.stderr
    assert "already in the shell" in result.stderr
    assert harness.backend.authorization == [None]  # only the login: nothing after exit ran


def test_exit_with_a_status(harness: CliHarness) -> None:
    """`exit N` ends the shell with status N."""
    assert harness.run("shell", input="exit 3\n").exit_code == 3
    assert harness.run("shell", input=f"folder show {UNKNOWN_ID}\nexit 0\n").exit_code == 0


def test_flags_on_one_line_do_not_leak_into_the_next(harness: CliHarness) -> None:
    """--server given on one line applies to that line only; the shell's own flags to all."""
    result = harness.run(
        "--server", "base.test:1", "shell", input="whoami --server line.test:2\nwhoami\n"
    )
    assert result.exit_code == 0
    assert [s.server for s in harness.backend.settings[-2:]] == ["line.test:2", "base.test:1"]


def test_auth_hints_inside_the_shell_name_the_shell_command(harness: CliHarness) -> None:
    """Inside the shell, the hint to log in again names `login`, not `modelcatalog login`."""
    harness.backend.error = grpc_error(Status.UNAUTHENTICATED, "expired", "TOKEN_EXPIRED")
    result = harness.run("shell", input="whoami\n")
    assert result.exit_code == 3
    assert "run `login` to sign in again" in result.stderr


def test_interactive_mode_keeps_history_with_mode_0600(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal the shell prompts, then saves the lines it read to a 0600 history file."""
    lines = iter(["whoami", "exit"])
    prompts: list[str] = []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        return next(lines)

    monkeypatch.setattr("builtins.input", fake_input)
    readline = _shell._readline()
    assert readline is not None
    readline.clear_history()
    readline.add_history("whoami")
    history = harness.tmp_path / "history"
    status = _shell.run_shell(
        cli, lambda: harness.state(in_shell=True), interactive=True, history_path=history
    )
    assert status == 0
    assert prompts == [_shell.PROMPT, _shell.PROMPT]
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    assert "whoami" in history.read_text()
    assert "alice" in capsys.readouterr().out


def test_ctrl_d_leaves_the_interactive_shell(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End of input at the prompt (Ctrl-D) ends the shell with status 0."""

    def eof(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    history = harness.tmp_path / "history"
    status = _shell.run_shell(
        cli, lambda: harness.state(in_shell=True), interactive=True, history_path=history
    )
    assert status == 0
