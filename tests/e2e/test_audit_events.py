"""The audit trail and the event stream against real server processes, through the SDK and the
CLI: downloads are audited, a watch sees uploads, and a reconnected watch loses nothing."""

from __future__ import annotations

import asyncio
import io
import json
import os
import select
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from modelcatalog import v1

from .conftest import RunningServer
from .test_cross_process import as_user, pair, signed_in

__all__ = ["pair"]  # the two-process fixture, used here by name

#: How long a test waits for an event before it fails.
EVENT_DEADLINE_SECONDS = 20.0
PASSWORD = "correct horse battery"


async def next_event(events: AsyncIterator[v1.CatalogEvent]) -> v1.CatalogEvent:
    async with asyncio.timeout(EVENT_DEADLINE_SECONDS):
        return await anext(events)


async def test_a_download_appears_in_the_folders_audit_list(
    server: RunningServer, tmp_path: Path
) -> None:
    """A viewer's download is listed to the folder's owner, with who, which version, from where."""
    async with await signed_in(server, "alice") as alice, await signed_in(server, "bob") as bob:
        folder = await alice.create_folder("vision")
        model = await alice.create_model(folder.id, "resnet")
        await alice.upload(model.id, io.BytesIO(b"weights"), file_name="w.bin")
        await alice.grant_folder_access(folder.id, "bob", "viewer")
        await bob.download(model.id, 1, tmp_path / "copy.bin")
        events = [
            e async for e in alice.list_audit_events(folder.id, action="DownloadModelVersion")
        ]
    assert len(events) == 1
    downloaded = events[0]
    assert (downloaded.actor_username, downloaded.outcome) == ("bob", "OK")
    assert downloaded.resource == f"models/{model.id}/versions/1"
    assert downloaded.peer == "127.0.0.1"
    assert downloaded.token_id


async def test_a_download_with_an_access_token_is_listed_with_the_tokens_name(
    server: RunningServer, tmp_path: Path
) -> None:
    """A deploy job's download with a read-only access token names the token in the trail."""
    async with await signed_in(server, "alice") as alice:
        folder = await alice.create_folder("vision")
        model = await alice.create_model(folder.id, "resnet")
        await alice.upload(model.id, io.BytesIO(b"weights"), file_name="w.bin")
        made = await alice.create_access_token("deploy", 3600, read_only=True)
        async with await as_user(server, made.secret) as deploy:
            await deploy.download(model.id, 1, tmp_path / "copy.bin")
        events = [
            e async for e in alice.list_audit_events(folder.id, action="DownloadModelVersion")
        ]
    assert [(e.actor_username, e.token_name, e.token_id) for e in events] == [
        ("alice", "deploy", made.access_token.id)
    ]


async def test_a_watch_opened_before_an_upload_delivers_the_new_version(
    server: RunningServer,
) -> None:
    """A stream whose first message (it is open) came before an upload delivers the version."""
    async with await signed_in(server, "alice") as alice:
        folder = await alice.create_folder("vision")
        model = await alice.create_model(folder.id, "resnet")
        channel = server.channel()
        try:
            stub = v1.AuditServiceStub(channel, metadata={"authorization": f"Bearer {alice.token}"})
            stream = stub.watch_events(v1.WatchEventsRequest(folder_id=folder.id))
            async with asyncio.timeout(EVENT_DEADLINE_SECONDS):
                opened = await anext(stream)
                await alice.upload(model.id, io.BytesIO(b"weights"), file_name="w.bin")
                delivered = await anext(stream)
            await stream.aclose()  # type: ignore[attr-defined]
        finally:
            channel.close()
    assert not opened.event.id
    event = delivered.event
    assert (event.kind, event.model_id, event.version) == (
        v1.CatalogEventKind.VERSION_CREATED,
        model.id,
        1,
    )
    assert delivered.after_event_id == event.id > opened.after_event_id


async def test_a_reconnected_watch_misses_nothing_across_processes(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """Events made through either process while a watch is closed arrive, once each, when it
    reconnects to the other process with its last event id."""
    first, second = pair
    async with await signed_in(first, "alice") as on_first:
        folder = await on_first.create_folder("vision")
        model = await on_first.create_model(folder.id, "resnet")
        await on_first.upload(model.id, io.BytesIO(b"one"), file_name="w.bin")
        await on_first.set_model_alias(model.id, "production", 1)
        async with await as_user(second, on_first.token) as on_second:
            seen = [
                e.id async for e in _every(on_first.watch_events(folder.id, after_event_id=0), 2)
            ]
            await on_second.upload(model.id, io.BytesIO(b"two"), file_name="w.bin")
            await on_first.set_model_alias(model.id, "production", 2)
            await on_second.delete_model_alias(model.id, "production")
            resumed = [
                e
                async for e in _every(on_second.watch_events(folder.id, after_event_id=seen[-1]), 3)
            ]
    assert [e.kind for e in resumed] == [
        v1.CatalogEventKind.VERSION_CREATED,
        v1.CatalogEventKind.ALIAS_SET,
        v1.CatalogEventKind.ALIAS_DELETED,
    ]
    ids = seen + [e.id for e in resumed]
    assert ids == list(range(ids[0], ids[0] + 5))


async def _every(
    events: AsyncIterator[v1.CatalogEvent], count: int
) -> AsyncIterator[v1.CatalogEvent]:
    """The first ``count`` events of a watch, then the watch closed."""
    try:
        for _ in range(count):
            yield await next_event(events)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def test_the_cli_watch_prints_an_alias_move(server: RunningServer, tmp_path: Path) -> None:
    """`modelcatalog watch --folder F --alias production --json` prints the move of that alias."""
    command = shutil.which("modelcatalog")
    assert command
    environment = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "MODELCATALOG_SERVER": server.address,
        "MODELCATALOG_CA_CERT": str(server.ca_cert),
    }

    def run(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [command, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("signup", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    run("login", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    folder_id = run("folder", "create", "vision", "--id-only").strip()
    model_id = run("model", "create", folder_id, "resnet", "--id-only").strip()
    (tmp_path / "w.bin").write_bytes(b"weights")
    run("version", "upload", model_id, str(tmp_path / "w.bin"))
    run("alias", "set", model_id, "staging", "1")
    newest = json.loads(run("audit", "list", "--folder", "vision", "--json"))[0]
    assert (newest["action"], newest["actor_username"]) == ("SetModelAlias", "alice")
    run("alias", "set", model_id, "production", "1")
    # From the first event on (--after 0): the staging move is skipped, the production one shown.
    with subprocess.Popen(
        [command, "watch", "--folder", "vision", "--alias", "production", "--after", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    ) as watcher:
        assert watcher.stdout is not None
        ready, _, _ = select.select([watcher.stdout], [], [], EVENT_DEADLINE_SECONDS)
        line = watcher.stdout.readline() if ready else ""
        watcher.terminate()
    event = json.loads(line)
    assert (event["kind"], event["alias"], event["version"]) == ("alias_set", "production", 1)
