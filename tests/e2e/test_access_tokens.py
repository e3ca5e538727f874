"""Access tokens for machines, through the `modelcatalog` command a CI job would run: a user
creates a token, the job sets MODELCATALOG_TOKEN to it and has no login of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import RunningServer

PASSWORD = "correct horse battery"

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli_as(server: RunningServer, tmp_path: Path) -> Callable[..., Cli]:
    """A `modelcatalog` runner with its own config directory (one machine): signed up and
    logged in as the user ``name``, logged in as the existing user ``login_as``, or (``token=``)
    a job that only has MODELCATALOG_TOKEN."""
    command = shutil.which("modelcatalog")
    assert command, "the modelcatalog command is not installed in this environment"

    def runner(name: str, *, token: str | None = None, login_as: str | None = None) -> Cli:
        environment = {
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path / f"config-{name}"),
            "MODELCATALOG_SERVER": server.address,
            "MODELCATALOG_CA_CERT": str(server.ca_cert),
        }
        environment.pop("MODELCATALOG_TOKEN", None)
        if token is not None:
            environment["MODELCATALOG_TOKEN"] = token

        def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [command, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=120,
                env=environment,
                cwd=tmp_path,
                check=False,
            )

        if token is None:
            steps = ("login",) if login_as else ("signup", "login")
            for step in steps:
                done = run(step, login_as or name, "--password-stdin", stdin=PASSWORD + "\n")
                assert done.returncode == 0, done.stderr
        return run

    return runner


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def folder_with_version(cli: Cli, tmp_path: Path, name: str) -> tuple[str, str]:
    """A new folder with a model holding one uploaded version; (folder id, model id)."""
    folder = output_of(cli("folder", "create", name, "--id-only"))
    model = output_of(cli("model", "create", folder, f"{name}-model", "--id-only"))
    source = tmp_path / f"{name}.bin"
    source.write_bytes(name.encode() * 1000)
    output_of(cli("version", "upload", model, str(source)))
    return folder, model


def test_a_read_only_token_downloads_but_cannot_upload(
    cli_as: Callable[..., Cli], tmp_path: Path
) -> None:
    """A job with a read-only token downloads the version byte for byte; its upload exits 4
    naming the read-only token, and no version is added."""
    alice = cli_as("alice")
    _, model = folder_with_version(alice, tmp_path, "vision")
    secret = output_of(
        alice("token", "create", "ci", "--scope", "read", "--expires", "1d", "--secret-only")
    )
    job = cli_as("job", token=secret)
    target = tmp_path / "downloaded.bin"
    output_of(job("version", "download", model, "1", "-o", str(target)))
    assert target.read_bytes() == (tmp_path / "vision.bin").read_bytes()
    refused = job("version", "upload", model, str(target))
    assert refused.returncode == 4, refused.stderr
    assert "read-only" in refused.stderr
    versions = json.loads(output_of(alice("version", "list", model, "--json")))
    assert [v["version"] for v in versions] == [1]


def test_a_folder_scoped_token_sees_only_that_folder(
    cli_as: Callable[..., Cli], tmp_path: Path
) -> None:
    """A token for the folder vision lists only vision and its model; alice's other model
    answers as if it did not exist (exit 4)."""
    alice = cli_as("alice")
    vision, vision_model = folder_with_version(alice, tmp_path, "vision")
    _, other_model = folder_with_version(alice, tmp_path, "other")
    secret = output_of(
        alice(
            "token", "create", "ci", "--scope", "read", "--folder", "vision",
            "--expires", "30d", "--secret-only",
        )
    )  # fmt: skip
    job = cli_as("job", token=secret)
    folders = json.loads(output_of(job("folder", "list", "--json")))
    assert [f["id"] for f in folders] == [vision]
    models = json.loads(output_of(job("model", "list", "--json")))
    assert [m["id"] for m in models] == [vision_model]
    assert job("model", "show", other_model).returncode == 4
    listed = json.loads(output_of(alice("token", "list", "--json")))
    assert [(t["name"], t["scope"], t["folder_ids"]) for t in listed] == [("ci", "read", [vision])]


def test_revoked_and_deleted_account_tokens_are_refused_on_the_next_call(
    cli_as: Callable[..., Cli],
) -> None:
    """A token that worked exits 3 on the next call after `token revoke`; so does one whose
    owner deleted the account."""
    alice, bob = cli_as("alice"), cli_as("bob")
    for owner in (alice, bob):
        owner("token", "create", "ci", "--scope", "read-write", "--expires", "1h")
    alice_job = cli_as("alice-job", token=_secret(alice, "deploy"))
    bob_job = cli_as("bob-job", token=_secret(bob, "deploy"))
    for job in (alice_job, bob_job):
        output_of(job("folder", "list"))
    output_of(alice("token", "revoke", "deploy"))
    output_of(bob("account", "delete", "--password-stdin", "--yes", stdin=PASSWORD + "\n"))
    for job in (alice_job, bob_job):
        refused = job("folder", "list")
        assert refused.returncode == 3, refused.stderr
    names = [t["name"] for t in json.loads(output_of(alice("token", "list", "--json")))]
    assert names == ["ci"]


def _secret(owner: Cli, name: str) -> str:
    return output_of(
        owner("token", "create", name, "--scope", "read-write", "--expires", "1h", "--secret-only")
    )


def test_password_change_and_logout_everywhere_end_other_logins(
    cli_as: Callable[..., Cli],
) -> None:
    """`account password` keeps this login working and ends the one on another machine; the
    old password no longer logs in. `account logout-everywhere` then ends this login too,
    while an access token keeps working."""
    alice = cli_as("alice")
    laptop = cli_as("laptop", login_as="alice")
    secret = output_of(
        alice("token", "create", "ci", "--scope", "read", "--expires", "1h", "--secret-only")
    )
    job = cli_as("job", token=secret)
    new_password = "a brand new password"
    output_of(
        alice("account", "password", "--password-stdin", stdin=f"{PASSWORD}\n{new_password}\n")
    )
    output_of(alice("whoami"))
    assert laptop("whoami").returncode == 3
    old = laptop("login", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert old.returncode == 3, old.stderr
    output_of(laptop("login", "alice", "--password-stdin", stdin=new_password + "\n"))
    output_of(alice("account", "logout-everywhere"))
    assert laptop("whoami").returncode == 3
    assert alice("whoami").returncode == 3
    output_of(job("folder", "list"))
