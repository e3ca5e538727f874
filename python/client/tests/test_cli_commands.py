"""Accounts, folders and models from the command line: text tables, JSON, prompts, help."""

import json

import click
import pytest
from cli_testing import CREATED, FOLDER_ID, MODEL_ID, UNKNOWN_ID, CliHarness

from modelcatalog import v1
from modelcatalog.cli import cli

pytest_plugins = ["cli_fixtures"]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


def test_command_tree_is_complete() -> None:
    """The issues' commands all exist, in groups account, token, folder, model, version, alias,
    access and audit."""
    assert set(_commands(cli)) == {
        ("signup",),
        ("login",),
        ("logout",),
        ("whoami",),
        ("account",),
        *[("account", name) for name in ("password", "logout-everywhere", "delete")],
        ("token",),
        *[("token", name) for name in ("create", "list", "revoke")],
        ("folder",),
        *[
            ("folder", name)
            for name in (
                "create",
                "list",
                "show",
                "update",
                "grant",
                "revoke",
                "leave",
                "access",
                "delete",
            )
        ],
        ("model",),
        *[("model", name) for name in ("create", "list", "show", "update", "delete")],
        ("version",),
        *[("version", name) for name in ("upload", "download", "list", "show", "update", "delete")],
        ("alias",),
        *[("alias", name) for name in ("set", "delete", "list")],
        ("access",),
        ("access", "explain"),
        ("audit",),
        ("audit", "list"),
        ("watch",),
        ("shell",),
        ("completion",),
    }


def test_root_help_lists_each_command_with_the_first_sentence_of_its_help() -> None:
    """The root's ``--help`` lists its commands without importing them, from the summaries
    in ``_app``: each must read as the command's own help begins."""
    context = click.Context(cli)
    for name, lazy in cli.lazy_commands.items():
        command = cli.get_command(context, name)
        assert command is not None
        assert command.get_short_help_str(limit=1000) == lazy.summary, name


@pytest.mark.parametrize("path", _commands(cli))
def test_every_command_has_help_with_an_example(harness: CliHarness, path: tuple[str, ...]) -> None:
    """`--help` of every command exits 0 and shows an example invocation."""
    result = harness.run(*path, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert f"modelcatalog {path[0]}" in result.stdout


@pytest.mark.parametrize("group", [[], ["folder"], ["model"], ["version"], ["alias"]])
def test_a_group_without_a_command_prints_its_help_and_exits_0(
    harness: CliHarness, group: list[str]
) -> None:
    """`modelcatalog` (or `modelcatalog folder`) alone shows the help on stdout, status 0."""
    result = harness.run(*group)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: {' '.join(['modelcatalog', *group])} [OPTIONS]")
    assert "Commands:" in result.stdout
    assert result.stderr == ""


def test_root_help_documents_the_exit_codes(harness: CliHarness) -> None:
    """`modelcatalog --help` lists every exit code in its epilog."""
    result = harness.run("--help")
    assert result.exit_code == 0
    for line in ("2  invalid input", "3  not logged in", "7  cannot reach", "8  data loss"):
        assert line in result.stdout


def test_signup_prompts_for_the_password_twice(harness: CliHarness) -> None:
    """Without --password-stdin, signup asks for a hidden password and its confirmation."""
    result = harness.run("signup", "bob", input="long-password\nlong-password\n")
    assert result.exit_code == 0, result.stderr
    assert "Created account bob" in result.stdout
    assert "long-password" not in result.output
    assert harness.backend.passwords["bob"] == "long-password"


def test_login_prompts_for_username_and_password(harness: CliHarness) -> None:
    """login without arguments asks for the username and the hidden password."""
    harness.backend.passwords["carol"] = "carols-password"
    result = harness.run("login", input="carol\ncarols-password\n")
    assert result.exit_code == 0, result.stderr
    assert "as carol" in result.stdout
    assert json.loads(harness.config_file.read_text())["token"] == "tok-carol"


def test_password_stdin_reads_exactly_one_line(harness: CliHarness) -> None:
    """--password-stdin takes the first line without its newline; an empty one is refused."""
    ok = harness.run("signup", "dave", "--password-stdin", input="with space \nnext\n")
    empty = harness.run("signup", "erin", "--password-stdin", input="")
    assert ok.exit_code == 0
    assert harness.backend.passwords["dave"] == "with space "
    assert empty.exit_code == 2
    assert "--password-stdin" in empty.stderr


def test_folder_list_is_a_table_with_headers(harness: CliHarness) -> None:
    """folder list prints a header row and one row per folder with id, name and role."""
    harness.run("folder", "create", "vision", "--description", "CV")
    result = harness.run("folder", "list")
    assert result.exit_code == 0, result.stderr
    header, *rows = [line for line in result.stdout.splitlines() if line.strip("─ ")]
    assert header.split() == ["ID", "NAME", "ROLE", "CREATOR", "CREATED"]
    assert rows[0].split() == [FOLDER_ID, "vision", "owner", "alice", "2025-01-31", "09:30:00Z"]


def test_empty_list_says_so_on_stderr(harness: CliHarness) -> None:
    """An empty list prints a hint on stderr and nothing on stdout."""
    result = harness.run("folder", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no folders" in result.stderr


def test_read_commands_print_json_with_stable_keys(harness: CliHarness) -> None:
    """--json on each read command parses, with snake_case keys and every field present."""
    harness.run("folder", "create", "vision")
    harness.run("folder", "grant", FOLDER_ID, "bob", "viewer")
    harness.run("model", "create", FOLDER_ID, "resnet50")
    harness.backend.versions.append(
        v1.ModelVersion(model_id=MODEL_ID, version=1, size_bytes=3, create_time=CREATED)
    )
    outputs = {
        args: json.loads(harness.run(*args, "--json").stdout)
        for args in [
            ("whoami",),
            ("folder", "list"),
            ("folder", "show", FOLDER_ID),
            ("folder", "access", FOLDER_ID),
            ("model", "list"),
            ("model", "show", MODEL_ID),
            ("version", "list", MODEL_ID),
            ("version", "show", MODEL_ID, "1"),
        ]
    }
    assert outputs[("whoami",)] == {
        "id": "id-alice",
        "username": "alice",
        "create_time": "2025-01-31T09:30:00Z",
        "server": "127.0.0.1:50051",
    }
    assert outputs[("folder", "list")] == [outputs[("folder", "show", FOLDER_ID)]]
    assert outputs[("folder", "show", FOLDER_ID)]["caller_role"] == "owner"
    assert outputs[("folder", "access", FOLDER_ID)][0]["role"] == "viewer"
    assert outputs[("model", "list")][0]["latest_version"] == 0
    assert outputs[("model", "show", MODEL_ID)]["folder_id"] == FOLDER_ID
    version = outputs[("version", "show", MODEL_ID, "1")]
    assert outputs[("version", "list", MODEL_ID)] == [version]
    assert version["size_bytes"] == 3
    assert version["labels"] == {}
    assert version["description"] == ""


def test_grant_and_revoke_change_access(harness: CliHarness) -> None:
    """grant accepts viewer/editor/owner (any case) and revoke removes the member."""
    harness.run("folder", "create", "vision")
    granted = harness.run("folder", "grant", FOLDER_ID, "bob", "EDITOR")
    listed = harness.run("folder", "access", FOLDER_ID)
    revoked = harness.run("folder", "revoke", FOLDER_ID, "bob")
    assert granted.exit_code == 0, granted.stderr
    assert "bob is now editor" in granted.stdout
    assert listed.stdout.splitlines()[0].split() == ["USERNAME", "ROLE", "USER", "ID", "SINCE"]
    assert "editor" in listed.stdout
    assert revoked.exit_code == 0
    assert harness.backend.members == []


def test_leave_revokes_your_own_role_unless_you_are_the_last_owner(harness: CliHarness) -> None:
    """folder leave removes the caller's own role; as the only owner it exits 6 with a hint."""
    harness.run("folder", "create", "vision")
    harness.run("folder", "grant", FOLDER_ID, "alice", "viewer")
    harness.run("folder", "grant", FOLDER_ID, "bob", "owner")
    left = harness.run("folder", "leave", FOLDER_ID)
    assert left.exit_code == 0, left.stderr
    assert f"You left folder {FOLDER_ID}." in left.stdout
    assert [m.username for m in harness.backend.members] == ["bob"]
    harness.run("folder", "grant", FOLDER_ID, "alice", "owner")
    harness.run("folder", "revoke", FOLDER_ID, "bob")
    refused = harness.run("folder", "leave", FOLDER_ID)
    assert refused.exit_code == 6
    assert "make another user owner first" in refused.stderr
    assert [m.username for m in harness.backend.members] == ["alice"]


def test_grant_refuses_an_unknown_role(harness: CliHarness) -> None:
    """A role other than viewer/editor/owner is a usage error (exit 2) before any RPC."""
    sent = len(harness.backend.authorization)
    result = harness.run("folder", "grant", FOLDER_ID, "bob", "admin")
    assert result.exit_code == 2
    assert "admin" in result.stderr
    assert len(harness.backend.authorization) == sent


def test_model_commands(harness: CliHarness) -> None:
    """model create prints the id; model list filters by --folder; show prints the fields."""
    created = harness.run("model", "create", FOLDER_ID, "resnet50", "--description", "RN")
    all_models = harness.run("model", "list")
    in_other = harness.run("model", "list", "--folder", UNKNOWN_ID)
    shown = harness.run("model", "show", MODEL_ID)
    assert created.stdout.strip() == f"Created model resnet50: {MODEL_ID}"
    assert all_models.stdout.splitlines()[0].split()[:3] == ["ID", "NAME", "FOLDER"]
    assert MODEL_ID in all_models.stdout
    assert (in_other.exit_code, in_other.stdout) == (0, "")
    assert "latest version  none" in shown.stdout


def test_model_list_names_the_folders_fetching_them_once(harness: CliHarness) -> None:
    """The FOLDER column shows the folder's name (its id stays in --json); one folder listing
    serves every row."""
    harness.run("folder", "create", "vision")
    harness.run("folder", "create", "speech")
    for name in ("resnet50", "vit", "bert"):
        harness.run("model", "create", FOLDER_ID, name)
    sent = len(harness.backend.authorization)
    table = harness.run("model", "list")
    assert len(harness.backend.authorization) - sent == 2  # ListModels and ListFolders
    rows = [line.split() for line in table.stdout.splitlines()[2:]]
    assert [row[1:3] for row in rows] == [
        ["resnet50", "vision"],
        ["vit", "vision"],
        ["bert", "vision"],
    ]
    assert FOLDER_ID not in table.stdout
    listed = json.loads(harness.run("model", "list", "--json").stdout)
    assert [m["folder_id"] for m in listed] == [FOLDER_ID] * 3


def test_ids_stay_whole_in_an_80_column_table(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns each model's id stays on one line, to be copied; other columns fold."""
    monkeypatch.setenv("COLUMNS", "80")
    harness.run("folder", "create", "vision-models-for-the-production-cameras")
    harness.run("model", "create", FOLDER_ID, "resnet50-finetuned-on-the-night-images")
    table = harness.run("model", "list").stdout
    assert MODEL_ID in table, table
    assert all(len(line) <= 80 for line in table.splitlines()), table


def test_whoami_names_the_server(harness: CliHarness) -> None:
    """whoami shows the server the login is for, in text and in --json."""
    text = harness.run("whoami", "--server", "models.test:443")
    data = json.loads(harness.run("whoami", "--json", "--server", "models.test:443").stdout)
    assert "server    models.test:443" in text.stdout
    assert data["server"] == "models.test:443"


def test_create_with_id_only_prints_just_the_id(harness: CliHarness) -> None:
    """--id-only prints the bare new id, so scripts can capture it with $(...)."""
    folder = harness.run("folder", "create", "vision", "--id-only")
    model = harness.run("model", "create", FOLDER_ID, "resnet50", "--id-only")
    assert (folder.exit_code, folder.stdout) == (0, f"{FOLDER_ID}\n")
    assert (model.exit_code, model.stdout) == (0, f"{MODEL_ID}\n")


def test_signup_exist_ok_succeeds_when_the_password_signs_in(harness: CliHarness) -> None:
    """signup --exist-ok of a taken username succeeds if the password signs in, else exits 6."""
    again = harness.run(
        "signup", "alice", "--password-stdin", "--exist-ok", input="secret-password\n"
    )
    as_json = harness.run(
        "signup", "alice", "--password-stdin", "--exist-ok", "--json", input="secret-password\n"
    )
    wrong = harness.run("signup", "alice", "--password-stdin", "--exist-ok", input="guessed-it\n")
    plain = harness.run("signup", "alice", "--password-stdin", input="secret-password\n")
    assert again.exit_code == 0, again.stderr
    assert again.stdout == "The account alice exists already on 127.0.0.1:50051.\n"
    assert json.loads(as_json.stdout)["username"] == "alice"
    assert wrong.exit_code == plain.exit_code == 6
    assert wrong.stderr == (
        "error: the username 'alice' is taken and this password does not sign in to it; choose"
        " another username, or give that account's password\n"
    )
    assert harness.backend.passwords["alice"] == "secret-password"


def test_create_exist_ok_returns_the_existing_folder_and_model(harness: CliHarness) -> None:
    """folder/model create --exist-ok print the one that exists (same id); without it, exit 6."""
    folder = harness.run("folder", "create", "vision", "--id-only", "--exist-ok")
    folder_again = harness.run("folder", "create", "vision", "--id-only", "--exist-ok")
    folder_text = harness.run("folder", "create", "vision", "--exist-ok")
    model = harness.run("model", "create", FOLDER_ID, "resnet", "--id-only", "--exist-ok")
    model_again = harness.run("model", "create", FOLDER_ID, "resnet", "--json", "--exist-ok")
    taken = harness.run("model", "create", FOLDER_ID, "resnet")
    assert folder.stdout == folder_again.stdout == f"{FOLDER_ID}\n"
    assert folder_text.stdout == f"The folder vision exists already: {FOLDER_ID}\n"
    assert json.loads(model_again.stdout)["id"] == model.stdout.strip() == MODEL_ID
    assert taken.exit_code == 6
    assert [f.name for f in harness.backend.folders] == ["vision"]
    assert [m.name for m in harness.backend.models] == ["resnet"]


def test_folder_exist_ok_ignores_a_shared_folder_of_that_name(harness: CliHarness) -> None:
    """--exist-ok returns only a folder the caller created, not one someone shared with them."""
    harness.backend.folders.append(
        v1.Folder(id=UNKNOWN_ID, name="vision", creator_username="mallory", create_time=CREATED)
    )
    mine = harness.run("folder", "create", "vision", "--id-only", "--exist-ok")
    again = harness.run("folder", "create", "vision", "--id-only", "--exist-ok")
    assert mine.stdout == again.stdout
    assert mine.stdout.strip() != UNKNOWN_ID
