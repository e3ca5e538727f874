"""Passwords: piped in without Python's getpass warning, never taken from the shell's commands."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_testing import CliHarness

from modelcatalog.cli._errors import ExitCode

pytest_plugins = ["cli_fixtures"]


@pytest.mark.parametrize("flag", [[], ["--password-stdin"]])
def test_piped_password_prints_no_getpass_warning(tmp_path: Path, flag: list[str]) -> None:
    """`echo pw | modelcatalog login alice` (with or without --password-stdin), run without a
    terminal, reads the password silently: the only output is the one-line connection error."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELCATALOG_")}
    environ["XDG_CONFIG_HOME"] = str(tmp_path)
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        server = f"127.0.0.1:{bound_not_listening.getsockname()[1]}"
        command = ["login", "alice", *flag, "--server", server, "--insecure"]
        done = subprocess.run(
            [sys.executable, "-m", "modelcatalog.cli", *command],
            input="secret-password\n",
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            start_new_session=True,  # no controlling terminal, so getpass could not open /dev/tty
        )
    assert done.returncode == ExitCode.CONNECTION, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert done.stderr.count("\n") == 1, done.stderr


def test_signup_from_a_pipe_reads_one_line_without_confirmation(new_harness: CliHarness) -> None:
    """Without a terminal, signup takes the first line of stdin as the password, asked once."""
    result = new_harness.run("signup", "bob", input="secret-password\n")
    assert result.exit_code == 0, result.output
    assert new_harness.backend.passwords == {"bob": "secret-password"}
    assert "Password" not in result.output


def test_empty_stdin_is_one_line_saying_no_password(new_harness: CliHarness) -> None:
    """No line on stdin (and no terminal) fails with one line, before any RPC."""
    for flag in ([], ["--password-stdin"]):
        result = new_harness.run("login", "alice", *flag, input="")
        assert result.exit_code == ExitCode.USAGE
        assert result.stderr.startswith("error: ")
        assert result.stderr.count("\n") == 1
        assert "no password" in result.stderr
    assert new_harness.backend.settings == []


def test_piped_shell_refuses_to_read_a_password_from_its_commands(new_harness: CliHarness) -> None:
    """`printf 'login alice\\n...' | modelcatalog shell` fails that line clearly, takes no later
    line as the password, does not abort, and runs the next lines."""
    new_harness.backend.passwords["alice"] = "secret-password"
    result = new_harness.run("shell", input="login alice\nsignup bob\nfolder list\n")
    assert result.exit_code == 0, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert all(line.startswith("error: no password:") for line in errors)
    assert "--password-stdin" in errors[0]
    assert "Aborted" not in result.output
    assert "no folders" in result.stderr  # the shell went on with the next line
    assert new_harness.backend.passwords == {"alice": "secret-password"}
    assert len(new_harness.backend.settings) == 1  # only `folder list` opened a client


def test_piped_shell_reads_the_password_after_password_stdin(new_harness: CliHarness) -> None:
    """In a piped shell, `login alice --password-stdin` takes the next line as the password."""
    new_harness.backend.passwords["alice"] = "secret-password"
    result = new_harness.run(
        "shell", input="login alice --password-stdin\nsecret-password\nwhoami\n"
    )
    assert result.exit_code == 0, result.output
    assert "Logged in" in result.stdout
    assert new_harness.backend.authorization[-1] == "Bearer tok-alice"
