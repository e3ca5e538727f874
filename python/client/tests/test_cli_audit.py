"""`modelcatalog audit list` and `modelcatalog watch`: tables, JSON, filters, exit codes."""

import json
from dataclasses import replace

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


def test_audit_list_names_the_access_token_and_takes_the_times_it_prints(
    harness: CliHarness,
) -> None:
    """The TOKEN column names the access token an event came with; --since accepts an ISO
    time ending in Z, as the CLI prints them."""
    harness.backend.audit_events = [replace(_download_event(), token_name="deploy")]
    result = harness.run("audit", "list", "--since", "2026-11-29T09:41:00.250000Z")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["TIME", "ACTOR", "TOKEN"]
    assert any("deploy" in row.split() for row in rows), result.stdout
    start = harness.backend.audit_requests[-1].start_time
    assert (start.hour, start.minute, start.microsecond) == (9, 41, 250000)
    assert harness.run("audit", "list", "--since", "2026-11-29 09:41:00Z").exit_code == 0


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
