"""`modelcatalog access explain`: a user's role in a folder or a model's folder, and why."""

import json

import pytest
from cli_testing import FOLDER_ID, MODEL_ID, CliHarness

from modelcatalog import v1
from modelcatalog.cli._errors import ExitCode

pytest_plugins = ["cli_fixtures"]


@pytest.fixture
def shared(harness: CliHarness) -> CliHarness:
    """alice's folder "vision" with model "resnet", bob an editor in it."""
    assert harness.run("folder", "create", "vision").exit_code == 0
    assert harness.run("model", "create", FOLDER_ID, "resnet").exit_code == 0
    assert harness.run("folder", "grant", "vision", "bob", "editor").exit_code == 0
    return harness


def test_explaining_a_members_access_to_a_folder_prints_the_servers_answer(
    shared: CliHarness,
) -> None:
    """The folder named by name, the user as an argument: one line, the server's words."""
    result = shared.run("access", "explain", "--folder", "vision", "bob")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "bob is editor, by alice.\n"
    assert shared.backend.explained == [
        v1.ExplainAccessRequest(folder_id=FOLDER_ID, username="bob")
    ]


def test_a_models_access_is_asked_by_model_and_answered_in_json(shared: CliHarness) -> None:
    """--model sends the model's id (looked up by name); --json prints the whole answer."""
    result = shared.run("access", "explain", "--model", "resnet", "bob", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["username"], answer["role"], answer["grant"]["granted_by_username"]) == (
        "bob",
        "editor",
        "alice",
    )
    assert shared.backend.explained == [v1.ExplainAccessRequest(model_id=MODEL_ID, username="bob")]


@pytest.mark.parametrize(
    "arguments", [(), ("--folder", "vision", "--model", "resnet")], ids=["neither", "both"]
)
def test_exactly_one_of_folder_and_model_is_named(
    shared: CliHarness, arguments: tuple[str, ...]
) -> None:
    """Neither or both of --folder and --model is a usage error, and nothing is asked."""
    result = shared.run("access", "explain", *arguments)
    assert result.exit_code == ExitCode.USAGE
    assert "--folder" in result.stderr
    assert shared.backend.explained == []
