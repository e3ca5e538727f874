"""`folder update`, `model update` and `version update`: masks from the options given, etags
with --if-match, label edits on top of the current labels, exit codes."""

import json

import pytest
from cli_testing import FOLDER_ID, MODEL_ID, CliHarness

from modelcatalog import v1
from modelcatalog.cli._errors import ExitCode

pytest_plugins = ["cli_fixtures"]


def test_folder_update_changes_only_the_options_given(harness: CliHarness) -> None:
    """--name renames and keeps the description; the text output names the new etag."""
    harness.run("folder", "create", "vision", "--description", "images")
    result = harness.run("folder", "update", FOLDER_ID, "--name", "sight")
    assert result.exit_code == 0, result.stderr
    folder = harness.backend.folders[0]
    assert (folder.name, folder.description) == ("sight", "images")
    assert result.stdout.strip() == f"Updated folder sight: {FOLDER_ID} (etag {folder.etag})"
    shown = harness.run("folder", "show", FOLDER_ID)
    assert f"etag         {folder.etag}" in shown.stdout


def test_model_update_with_a_stale_etag_exits_6(harness: CliHarness) -> None:
    """--if-match with the current etag changes the model; with an older one it exits 6 and
    changes nothing."""
    harness.run("model", "create", FOLDER_ID, "resnet")
    first = json.loads(harness.run("model", "show", MODEL_ID, "--json").stdout)["etag"]
    changed = harness.run(
        "model", "update", MODEL_ID, "--description", "cnn", "--if-match", first, "--json"
    )
    assert changed.exit_code == 0, changed.stderr
    model = json.loads(changed.stdout)
    assert (model["description"], model["name"]) == ("cnn", "resnet")
    assert model["etag"] != first
    stale = harness.run("model", "update", MODEL_ID, "--name", "vit", "--if-match", first)
    assert stale.exit_code == 6
    assert "changed" in stale.stderr
    assert harness.backend.models[0].name == "resnet"


def test_an_update_without_a_change_is_a_usage_error(harness: CliHarness) -> None:
    """Each update command without anything to change exits 2 before any RPC."""
    sent = len(harness.backend.authorization)
    for args in (
        ("folder", "update", FOLDER_ID),
        ("model", "update", MODEL_ID, "--if-match", "e"),
        ("version", "update", MODEL_ID, "1"),
    ):
        result = harness.run(*args)
        assert result.exit_code == 2, args
        assert "give --" in result.stderr
    assert len(harness.backend.authorization) == sent


def test_version_labels_are_edited_on_top_of_the_current_ones(harness: CliHarness) -> None:
    """--label adds or changes, --remove-label removes, the rest stay; the update is made
    conditional on the etag the command read."""
    before = _version({"stage": "dev", "arch": "cnn", "old": "x"})
    harness.backend.versions.append(before)
    result = harness.run(
        "version",
        "update",
        MODEL_ID,
        "1",
        "--label",
        "stage=prod",
        "--label",
        "team=ml",
        "--remove-label",
        "old",
        "--description",
        "epoch 40",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    version = json.loads(result.stdout)
    assert version["labels"] == {"stage": "prod", "arch": "cnn", "team": "ml"}
    assert version["description"] == "epoch 40"
    assert version["etag"] != before.etag
    cleared = harness.run("version", "update", MODEL_ID, "1", "--clear-labels")
    assert cleared.exit_code == 0, cleared.stderr
    assert "Updated version 1 of model" in cleared.stdout
    assert harness.backend.versions[0].labels == {}
    assert harness.backend.versions[0].description == "epoch 40"


def test_version_update_with_a_stale_etag_exits_6(harness: CliHarness) -> None:
    """--if-match wins over the etag the command read: a stale one exits 6."""
    harness.backend.versions.append(_version({}))
    result = harness.run(
        "version", "update", MODEL_ID, "1", "--label", "a=b", "--if-match", "stale"
    )
    assert result.exit_code == 6
    assert harness.backend.versions[0].labels == {}


def _version(labels: dict[str, str]) -> v1.ModelVersion:
    return v1.ModelVersion(model_id=MODEL_ID, version=1, labels=labels, etag="e1")


@pytest.mark.parametrize(
    "command", [("folder", "update", FOLDER_ID), ("model", "update", MODEL_ID)]
)
def test_an_empty_if_match_is_refused_not_ignored(
    harness: CliHarness, command: tuple[str, ...]
) -> None:
    """`--if-match ""` (a script's empty variable) exits 2 and sends nothing, instead of
    making the change unconditional."""
    sent = len(harness.backend.authorization)
    result = harness.run(*command, "--description", "x", "--if-match", "")
    assert result.exit_code == ExitCode.USAGE
    assert "an empty etag would change the resource unconditionally" in result.stderr
    assert len(harness.backend.authorization) == sent
