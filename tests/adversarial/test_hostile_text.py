"""Text one user writes and another user's terminal prints.

Row of issue 8: a folder named ``[/]`` shared, unasked, with a victim whose ``modelcatalog``
commands then crashed (Rich markup) or printed raw terminal escapes (OSC 52 writes the
clipboard, OSC 0 the window title). Names go through the API as any user could send them;
descriptions and labels with escapes are written straight into the database, as rows stored
before the server refused control characters would be.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from modelcatalog import InvalidArgument

from ..server_process import RunningServer
from ._attack import PASSWORD, sdk_client, signed_up

#: OSC 52 (set the clipboard), OSC 0 (set the window title), erase the screen, and an 8-bit CSI.
ESCAPES = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x07\x1b[2J\x9b31m"
HOSTILE_DESCRIPTION = f"harmless{ESCAPES}[bold red]markup[/]"
CONTROL_CHARACTERS = ("\x1b", "\x07", "\x9b")
#: Markup in names: an unbalanced closing tag made Rich raise; an opening one restyles the rest.
FOLDER_NAME = "[/]"
MODEL_NAME = "[bold]m[/bold] [/]"
FILE_NAME = "[red]weights.bin"


def _logged_in_cli(server: RunningServer, home: Path) -> str:
    """The ``modelcatalog`` command, once the victim has logged in with it (config in home)."""
    command = shutil.which("modelcatalog")
    assert command, "the modelcatalog command is not installed in this environment"
    login = _run([command, "login", "victim", "--password-stdin"], server, home, PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    return command


def _run(
    args: list[str], server: RunningServer, home: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home),
        "MODELCATALOG_SERVER": server.address,
        "MODELCATALOG_CA_CERT": str(server.ca_cert),
    }
    environment.pop("MODELCATALOG_TOKEN", None)
    return subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=home,
    )


async def test_hostile_names_shared_with_a_victim_print_as_text(
    server: RunningServer, tmp_path: Path
) -> None:
    """The victim's folder list, model list, model show and version list print other users'
    names as text (``[/]`` included) and their escapes escaped, and exit 0."""
    mallory = await signed_up(server, "mallory")
    await signed_up(server, "victim")
    async with sdk_client(server, mallory) as client:
        folder = await client.create_folder(FOLDER_NAME)
        model = await client.create_model(folder.id, MODEL_NAME)
        await client.upload(model.id, io.BytesIO(b"weights"), file_name=FILE_NAME)
        await client.grant_folder_access(folder.id, "victim", "viewer")
    with sqlite3.connect(server.data_dir / "catalog.sqlite3", timeout=10) as database:
        database.execute("UPDATE folders SET description = ?", (HOSTILE_DESCRIPTION,))
        database.execute("UPDATE models SET description = ?", (HOSTILE_DESCRIPTION,))
        database.execute(
            "UPDATE model_versions SET description = ?, labels = ?",
            (HOSTILE_DESCRIPTION, json.dumps({"stage": ESCAPES})),
        )
    database.close()
    home = tmp_path / "victim-home"
    home.mkdir()
    cli = _logged_in_cli(server, home)
    commands = {
        "folder list": [cli, "folder", "list"],
        "folder show": [cli, "folder", "show", folder.id],
        "model list": [cli, "model", "list"],
        "model show": [cli, "model", "show", model.id],
        "version list": [cli, "version", "list", model.id],
        "version show": [cli, "version", "show", model.id, "1"],
    }
    printed = {name: _run(args, server, home) for name, args in commands.items()}
    for name, result in printed.items():
        print(f"{name}: exit {result.returncode}\n{result.stdout}{result.stderr}")
    for name, result in printed.items():
        assert result.returncode == 0, (name, result.stderr)
        assert "Traceback" not in result.stderr, name
        for character in CONTROL_CHARACTERS:
            assert character not in result.stdout + result.stderr, (name, character)
    for name in ("folder list", "folder show", "model list", "model show"):
        assert FOLDER_NAME in printed[name].stdout, name
    for name in ("version list", "version show"):
        assert FILE_NAME in printed[name].stdout, name
    for name in ("folder show", "model show", "version show"):
        assert "harmless" in printed[name].stdout, name
        assert "markup[/]" in printed[name].stdout, name


@pytest.mark.parametrize("field", ["folder description", "model description", "label value"])
async def test_server_refuses_control_characters_in_descriptions_and_labels(
    server: RunningServer, field: str
) -> None:
    """Descriptions and label values with control characters are refused INVALID_ARGUMENT,
    naming the field, so no new row can carry terminal escapes."""
    token = await signed_up(server, "writer")
    async with sdk_client(server, token) as client:
        folder = await client.create_folder("plain")
        model = await client.create_model(folder.id, "plain")
        attempts: dict[str, Callable[[], Awaitable[object]]] = {
            "folder description": lambda: client.create_folder(
                "hostile", description=HOSTILE_DESCRIPTION
            ),
            "model description": lambda: client.create_model(
                folder.id, "hostile", description=HOSTILE_DESCRIPTION
            ),
            "label value": lambda: client.upload(
                model.id, io.BytesIO(b"weights"), file_name="w.bin", labels={"stage": ESCAPES}
            ),
        }
        with pytest.raises(InvalidArgument) as refused:
            await attempts[field]()
    print(f"{field}: {refused.value.reason} field={refused.value.field}: {refused.value.message}")
    assert refused.value.field
