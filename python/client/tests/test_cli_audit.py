"""`modelcatalog audit list` and `modelcatalog watch`: tables, JSON, filters, exit codes."""

import json

from cli_testing import CREATED, FOLDER_ID, MODEL_ID, CliHarness

from modelcatalog import v1

pytest_plugins = ["cli_fixtures"]

ALIAS_SET = v1.CatalogEventKind.from_string("ALIAS_SET")
VERSION_CREATED = v1.CatalogEventKind.from_string("VERSION_CREATED")


def _download_event() -> v1.AuditEvent:
    return v1.AuditEvent(
        id=7,
        time=CREATED,
        actor_user_id="u-bob",
        actor_username="bob",
        token_id="t1",
        action="DownloadModelVersion",
        resource=f"models/{MODEL_ID}/versions/3",
        folder_id=FOLDER_ID,
        peer="10.0.0.5",
        outcome="OK",
        details={"version": "3", "offset": "0"},
    )


def test_audit_list_shows_who_did_what_and_sends_the_filters(harness: CliHarness) -> None:
    """A table row per event with actor, action, resource, outcome and peer; filters reach
    the server."""
    harness.backend.audit_events = [_download_event()]
    result = harness.run(
        "audit", "list", "--folder", FOLDER_ID, "--actor", "bob", "--since", "2025-01-01"
    )
    assert result.exit_code == 0, result.stderr
    for text in ("bob", "DownloadModelVersion", f"models/{MODEL_ID}/versions/3", "OK", "10.0.0.5"):
        assert text in result.stdout
    request = harness.backend.audit_requests[-1]
    assert (request.folder_id, request.actor) == (FOLDER_ID, "bob")
    assert request.start_time.year == 2025


def test_audit_list_json_has_snake_case_keys(harness: CliHarness) -> None:
    """--json prints the events as a list of objects with the contract's field names."""
    harness.backend.audit_events = [_download_event()]
    result = harness.run("audit", "list", "--json")
    assert result.exit_code == 0, result.stderr
    [event] = json.loads(result.stdout)
    assert (event["action"], event["actor_username"], event["details"]["version"]) == (
        "DownloadModelVersion",
        "bob",
        "3",
    )


def test_watch_prints_a_line_per_event_then_exits_with_the_refusal(harness: CliHarness) -> None:
    """Each event is one line (JSON object with --json) as it comes; a refused stream exits 4."""
    harness.backend.feed = [
        v1.CatalogEvent(id=1, kind=VERSION_CREATED, model_id=MODEL_ID, version=2),
        v1.CatalogEvent(id=2, kind=ALIAS_SET, model_id=MODEL_ID, version=2, alias="production"),
    ]
    text = harness.run("watch", "--folder", FOLDER_ID)
    assert text.exit_code == 4
    lines = text.stdout.splitlines()
    assert lines[0].startswith("1 ")
    assert "version_created" in lines[0]
    assert "alias=production" in lines[1]
    assert "version=2" in lines[1]
    as_json = harness.run("watch", "--json")
    assert [json.loads(line)["kind"] for line in as_json.stdout.splitlines()] == [
        "version_created",
        "alias_set",
    ]
