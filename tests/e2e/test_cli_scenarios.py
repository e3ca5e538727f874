"""The four README scenarios through the `modelcatalog` command, as a user would type them."""

from __future__ import annotations

import hashlib
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
def user_cli(server: RunningServer, tmp_path: Path) -> Callable[[str], Cli]:
    """A `modelcatalog` runner per user, each with its own config directory."""
    command = shutil.which("modelcatalog")
    assert command, "the modelcatalog command is not installed in this environment"

    def for_user(username: str) -> Cli:
        environment = {
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path / f"config-{username}"),
            "MODELCATALOG_SERVER": server.address,
            "MODELCATALOG_CA_CERT": str(server.ca_cert),
        }
        environment.pop("MODELCATALOG_TOKEN", None)

        def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [command, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=120,
                env=environment,
                cwd=tmp_path,
            )

        signup = run("signup", username, "--password-stdin", stdin=PASSWORD + "\n")
        assert signup.returncode == 0, signup.stderr
        login = run("login", username, "--password-stdin", stdin=PASSWORD + "\n")
        assert login.returncode == 0, login.stderr
        return run

    return for_user


def created_id(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def model_names(cli: Cli) -> list[str]:
    result = cli("model", "list", "--json")
    assert result.returncode == 0, result.stderr
    return [model["name"] for model in json.loads(result.stdout)]


def test_create_model_without_folder_permission(user_cli: Callable[[str], Cli]) -> None:
    """User 2 creating a model in user 1's folder exits 4 with one line on stderr."""
    user1, user2 = user_cli("user1"), user_cli("user2")
    folder = created_id(user1("folder", "create", "private", "--id-only"))
    denied = user2("model", "create", folder, "intruder")
    assert denied.returncode == 4
    assert len(denied.stderr.strip().splitlines()) == 1
    assert "Traceback" not in denied.stderr


def test_create_model_after_grant_folder_permission(user_cli: Callable[[str], Cli]) -> None:
    """After user 1 grants editor, user 2 creates a model in the folder."""
    user1, user2 = user_cli("user1"), user_cli("user2")
    folder = created_id(user1("folder", "create", "shared", "--id-only"))
    granted = user1("folder", "grant", folder, "user2", "editor")
    assert granted.returncode == 0, granted.stderr
    created_id(user2("model", "create", folder, "welcome", "--id-only"))
    assert model_names(user1) == ["welcome"]


def test_list_only_authorized_models(user_cli: Callable[[str], Cli]) -> None:
    """User 1 lists 2 models; after user 2 shares a folder, 3."""
    user1, user2 = user_cli("user1"), user_cli("user2")
    folder1 = created_id(user1("folder", "create", "one", "--id-only"))
    for name in ("m1", "m2"):
        created_id(user1("model", "create", folder1, name, "--id-only"))
    folder2 = created_id(user2("folder", "create", "two", "--id-only"))
    created_id(user2("model", "create", folder2, "m3", "--id-only"))
    assert model_names(user1) == ["m1", "m2"]
    assert user2("folder", "grant", folder2, "user1", "viewer").returncode == 0
    assert model_names(user1) == ["m1", "m2", "m3"]
    table = user1("model", "list")
    assert table.returncode == 0
    assert "NAME" in table.stdout
    assert "m3" in table.stdout


def test_upload_and_download(user_cli: Callable[[str], Cli], tmp_path: Path) -> None:
    """A file uploaded with `version upload` downloads byte-identical with its digest printed."""
    alice = user_cli("alice")
    folder = created_id(alice("folder", "create", "vision", "--id-only"))
    model = created_id(alice("model", "create", folder, "resnet", "--id-only"))
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    uploaded = alice("version", "upload", model, str(source), "--label", "stage=dev")
    assert uploaded.returncode == 0, uploaded.stderr
    assert "version 1" in uploaded.stdout
    assert digest in uploaded.stdout
    target = tmp_path / "copy.bin"
    downloaded = alice("version", "download", model, "1", "-o", str(target))
    assert downloaded.returncode == 0, downloaded.stderr
    assert digest in downloaded.stdout
    assert target.read_bytes() == source.read_bytes()
    shown = json.loads(alice("version", "show", model, "1", "--json").stdout)
    assert (shown["sha256"], shown["labels"]) == (digest, {"stage": "dev"})


def test_folder_shared_unasked_shows_as_text_and_can_be_left(
    user_cli: Callable[[str], Cli],
) -> None:
    """bob lists mallory's `[/]` folder safely, then leaves it; escapes in text are refused."""
    mallory, bob = user_cli("mallory"), user_cli("bob")
    folder = created_id(
        mallory("folder", "create", "[/]", "--description", "two\nlines", "--id-only")
    )
    created_id(mallory("model", "create", folder, "[bold]resnet[/]", "--id-only"))
    refused = mallory("model", "create", folder, "m", "--description", "\x1b]0;owned\x07")
    assert refused.returncode == 2
    assert "(field description)" in refused.stderr
    assert mallory("folder", "grant", folder, "bob", "viewer").returncode == 0
    for view in (("folder", "list"), ("model", "list"), ("folder", "show", folder)):
        shown = bob(*view)
        assert shown.returncode == 0, shown.stderr
        assert "[/]" in shown.stdout
    assert "two\\x0alines" in bob("folder", "show", folder).stdout
    left = bob("folder", "leave", folder)
    assert left.returncode == 0, left.stderr
    assert json.loads(bob("folder", "list", "--json").stdout) == []
    last_owner = mallory("folder", "leave", folder)
    assert last_owner.returncode == 6
    assert "owner" in last_owner.stderr


def test_delete_a_version_then_the_model_then_the_folder(
    user_cli: Callable[[str], Cli], tmp_path: Path
) -> None:
    """Without a terminal deletions need --yes (exit 2); a deleted version's number is not given
    again; a viewer cannot delete (exit 4); the owner deletes the model, then the empty folder."""
    alice, bob = user_cli("alice"), user_cli("bob")
    folder = created_id(alice("folder", "create", "vision", "--id-only"))
    model = created_id(alice("model", "create", folder, "resnet", "--id-only"))
    source = tmp_path / "weights.bin"
    for n in range(2):
        source.write_bytes(os.urandom(1000 + n))
        assert alice("version", "upload", model, str(source)).returncode == 0
    unconfirmed = alice("version", "delete", model, "2")
    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    deleted = alice("version", "delete", model, "2", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert alice("version", "upload", model, str(source)).returncode == 0
    listed = json.loads(alice("version", "list", model, "--json").stdout)
    assert [v["version"] for v in listed] == [3, 1]
    assert alice("folder", "grant", folder, "bob", "viewer").returncode == 0
    assert bob("model", "delete", model, "--yes").returncode == 4
    assert alice("folder", "delete", folder, "--yes").returncode == 6
    gone = json.loads(alice("model", "delete", model, "--yes", "--json").stdout)
    assert gone == {"model_id": model, "deleted_versions": 2}
    assert alice("folder", "delete", folder, "--yes").returncode == 0
    assert json.loads(bob("folder", "list", "--json").stdout) == []
