"""Aliases from the command line, and models and folders named by their names."""

import json

import pytest
from cli_testing import FOLDER_ID, MODEL_ID, UNKNOWN_ID, CliHarness

from modelcatalog.cli._errors import ExitCode

pytest_plugins = ["cli_fixtures"]


@pytest.fixture
def resnet(harness: CliHarness) -> CliHarness:
    """alice's folder "vision" with model "resnet" and its versions 1 and 2."""
    assert harness.run("folder", "create", "vision").exit_code == 0
    assert harness.run("model", "create", FOLDER_ID, "resnet").exit_code == 0
    for data in (b"first weights", b"second weights"):
        (harness.tmp_path / "w.bin").write_bytes(data)
        assert harness.run("version", "upload", MODEL_ID, "w.bin").exit_code == 0
    return harness


def _error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_set_list_and_delete_an_alias(resnet: CliHarness) -> None:
    """`alias set` points an alias at a version, `alias list` shows it, `alias delete` removes
    it."""
    made = resnet.run("alias", "set", "resnet", "production", "1")
    assert made.exit_code == 0, made.stderr
    assert made.stdout == "production now points at version 1 of model resnet.\n"
    listed = resnet.run("alias", "list", "resnet", "--json")
    assert [(a["name"], a["version"]) for a in json.loads(listed.stdout)] == [("production", 1)]
    assert resnet.run("alias", "delete", MODEL_ID, "production").exit_code == 0
    empty = resnet.run("alias", "list", MODEL_ID)
    assert empty.exit_code == 0
    assert "no aliases" in empty.stderr


def test_expect_moves_the_alias_only_from_where_it_was(resnet: CliHarness) -> None:
    """`--expect N` moves the alias only while it points at N; otherwise exit 6 and the alias
    stays where it was."""
    assert resnet.run("alias", "set", "resnet", "production", "1", "--expect", "0").exit_code == 0
    lost = resnet.run("alias", "set", "resnet", "production", "2", "--expect", "2")
    assert lost.exit_code == ExitCode.CONFLICT
    assert "points at version 1" in _error_line(lost.stderr)
    assert resnet.backend.aliases == {"production": 1}
    moved = resnet.run("alias", "set", "resnet", "production", "2", "--expect", "1")
    assert moved.exit_code == 0, moved.stderr
    assert resnet.backend.aliases == {"production": 2}
    kept = resnet.run("alias", "delete", "resnet", "production", "--expect", "1")
    assert kept.exit_code == ExitCode.CONFLICT
    assert resnet.backend.aliases == {"production": 2}


@pytest.mark.parametrize(
    "args",
    [["resnet@production"], ["resnet", "production"], [MODEL_ID + "@production"]],
)
def test_download_by_alias_gets_the_aliased_bytes(resnet: CliHarness, args: list[str]) -> None:
    """MODEL@ALIAS, or an alias name as VERSION, downloads the version the alias points at."""
    resnet.run("alias", "set", "resnet", "production", "1")
    result = resnet.run("version", "download", *args, "-o", "got.bin")
    assert result.exit_code == 0, result.stderr
    assert (resnet.tmp_path / "got.bin").read_bytes() == b"first weights"
    assert "Downloaded version 1 of model" in result.stdout


def test_show_by_alias_and_an_unknown_alias(resnet: CliHarness) -> None:
    """`version show MODEL@ALIAS` shows the aliased version; an alias that does not exist
    exits 5."""
    resnet.run("alias", "set", "resnet", "staging", "2")
    shown = resnet.run("version", "show", "resnet@staging", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["version"] == 2
    missing = resnet.run("version", "show", "resnet@canary")
    assert missing.exit_code == ExitCode.NOT_FOUND
    assert "no such alias" in _error_line(missing.stderr)


def test_names_resolve_to_the_one_folder_or_model_of_that_name(resnet: CliHarness) -> None:
    """A folder or model named by its name is the one you can see with that name."""
    shown = resnet.run("model", "show", "resnet", "--json")
    assert json.loads(shown.stdout)["id"] == MODEL_ID
    assert json.loads(resnet.run("folder", "show", "vision", "--json").stdout)["id"] == FOLDER_ID
    listed = resnet.run("model", "list", "--folder", "vision", "--json")
    assert [m["name"] for m in json.loads(listed.stdout)] == ["resnet"]


@pytest.mark.parametrize(
    "args",
    [
        ["folder", "show", "nlp"],
        ["model", "show", "bert"],
        ["model", "show", UNKNOWN_ID[:-1]],
        ["version", "list", "bert"],
        ["alias", "set", "bert", "production", "1"],
        ["version", "download", "bert@production"],
    ],
)
def test_a_name_nobody_shows_you_exits_4(resnet: CliHarness, args: list[str]) -> None:
    """A name (or a mistyped id) that no folder or model you can see has exits 4, as an id
    the server does not show you does, and says how to list them."""
    result = resnet.run(*args)
    assert result.exit_code == ExitCode.PERMISSION
    line = _error_line(result.stderr)
    assert f"has the id or name {args[2].split('@')[0]!r}" in line
    assert "list` shows those you can" in line


def test_a_name_two_models_share_lists_their_ids(resnet: CliHarness) -> None:
    """A model name two visible models share exits 2, naming both ids so one can be picked."""
    resnet.run("folder", "create", "nlp")
    other_folder = FOLDER_ID.replace("0001", "0002")
    assert resnet.run("model", "create", other_folder, "resnet").exit_code == 0
    result = resnet.run("version", "list", "resnet")
    assert result.exit_code == ExitCode.USAGE
    line = _error_line(result.stderr)
    assert "2 models you can see are named 'resnet'" in line
    assert MODEL_ID in line
    assert MODEL_ID.replace("0002", "0003") in line


def test_list_filters_and_orders_reach_the_server(resnet: CliHarness) -> None:
    """`model list` and `version list` send --filter and --order-by as given, and a model
    named by its name is looked up with a name filter, not by listing every model."""
    listed = resnet.run("model", "list", "--filter", 'name : "res"', "--order-by", "name desc")
    assert listed.exit_code == 0, listed.stderr
    assert resnet.backend.list_requests[-1] == ("models", 'name : "res"', "name desc")
    versions = resnet.run("version", "list", 'say "hi"', "--filter", "labels.k : *")
    assert versions.exit_code == ExitCode.PERMISSION
    assert resnet.backend.list_requests[-1] == ("models", r'name : "say \"hi\""', "")
    versions = resnet.run("version", "list", "resnet", "--order-by", "version")
    assert versions.exit_code == 0, versions.stderr
    assert resnet.backend.list_requests[-2:] == [
        ("models", 'name : "resnet"', ""),
        ("versions", "", "version"),
    ]
