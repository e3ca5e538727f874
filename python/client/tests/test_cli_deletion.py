"""`version delete`, `model delete`, `folder delete`: confirmation, --force, --json, exit codes."""

import json

import pytest
from cli_testing import FOLDER_ID, MODEL_ID, CliHarness, FakeModels

from modelcatalog.cli import _confirm

pytest_plugins = ["cli_fixtures"]


@pytest.fixture
def stocked(harness: CliHarness) -> CliHarness:
    """alice's folder with one model of two versions, version 1 aliased as production."""
    assert harness.run("folder", "create", "vision").exit_code == 0
    assert harness.run("model", "create", FOLDER_ID, "resnet").exit_code == 0
    models = FakeModels(harness.backend)
    for data in (b"one", b"two"):
        models.store(data, model_id=MODEL_ID)
    harness.backend.aliases["production"] = 1
    return harness


@pytest.fixture
def at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdin counts as a terminal, so deletions ask (the answer comes from the test's input)."""
    monkeypatch.setattr(_confirm, "stdin_is_terminal", lambda: True)


@pytest.mark.parametrize(
    "command",
    [
        ["version", "delete", MODEL_ID, "2"],
        ["model", "delete", MODEL_ID],
        ["folder", "delete", FOLDER_ID, "--force"],
    ],
)
def test_without_a_terminal_a_deletion_needs_yes(stocked: CliHarness, command: list[str]) -> None:
    """Without --yes and without a terminal to ask at: exit 2, one line naming --yes, and no
    RPC is sent."""
    sent = len(stocked.backend.authorization)
    result = stocked.run(*command)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "add --yes" in result.stderr
    assert len(stocked.backend.authorization) == sent
    assert len(stocked.backend.versions) == 2


def test_at_a_terminal_the_deletion_asks_and_no_keeps_everything(
    stocked: CliHarness, at_a_terminal: None
) -> None:
    """The question names what goes; "n" (or just Enter) deletes nothing, exit 1; "y" deletes."""
    declined = stocked.run("model", "delete", MODEL_ID, input="\n")
    assert declined.exit_code == 1
    assert f"Delete model {MODEL_ID} with all its versions and aliases?" in declined.stderr
    assert "nothing was deleted" in declined.stderr
    assert len(stocked.backend.models) == 1
    agreed = stocked.run("model", "delete", MODEL_ID, input="y\n")
    assert agreed.exit_code == 0, agreed.stderr
    assert f"Deleted model {MODEL_ID} with 2 version(s)." in agreed.stdout
    assert stocked.backend.models == []
    assert stocked.backend.versions == []


def test_version_delete_refuses_an_aliased_version_unless_forced(stocked: CliHarness) -> None:
    """An aliased version exits 6 with the server's reason; --force deletes it and says which
    aliases went with it; --json prints the ids and the deleted aliases."""
    refused = stocked.run("version", "delete", MODEL_ID, "1", "--yes")
    assert refused.exit_code == 6
    assert "production" in refused.stderr
    assert [v.version for v in stocked.backend.versions] == [1, 2]
    forced = stocked.run("version", "delete", MODEL_ID, "1", "--force", "--yes", "--json")
    assert forced.exit_code == 0, forced.stderr
    assert json.loads(forced.stdout) == {
        "model_id": MODEL_ID,
        "version": 1,
        "deleted_aliases": ["production"],
    }
    assert [v.version for v in stocked.backend.versions] == [2]
    plain = stocked.run("version", "delete", MODEL_ID, "2", "-y")
    assert plain.stdout == f"Deleted version 2 of model {MODEL_ID}.\n"
    missing = stocked.run("version", "delete", MODEL_ID, "2", "-y")
    assert missing.exit_code == 5


def test_folder_delete_needs_force_while_it_holds_models(stocked: CliHarness) -> None:
    """A folder with models exits 6 (FOLDER_NOT_EMPTY) and stays; --force deletes it with its
    models and versions and reports the counts."""
    refused = stocked.run("folder", "delete", FOLDER_ID, "--yes")
    assert refused.exit_code == 6
    assert "holds 1 model(s)" in refused.stderr
    assert len(stocked.backend.folders) == 1
    forced = stocked.run("folder", "delete", FOLDER_ID, "--force", "--yes")
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout == f"Deleted folder {FOLDER_ID} with 1 model(s) and 2 version(s).\n"
    assert (stocked.backend.folders, stocked.backend.models) == ([], [])
    again = stocked.run("folder", "delete", FOLDER_ID, "--yes", "--json")
    assert again.exit_code == 4


def test_model_delete_json(stocked: CliHarness) -> None:
    """--json prints the model id and how many versions went with it."""
    result = stocked.run("model", "delete", MODEL_ID, "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"model_id": MODEL_ID, "deleted_versions": 2}
