"""The audit trail (ListAuditEvents) and the event stream (WatchEvents)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_testing import EDITOR, VIEWER, Api, Caller, channel_for, expect_error, sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from test_versions import download, model_of, upload

from modelcatalog import v1
from modelcatalog_server.app import build_application, storage_locations
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.audit_trail import AuditTrail
from modelcatalog_server.domain.paging import PageTokens
from modelcatalog_server.storage.metadata import MetadataStore

#: How long a test waits for a streamed event before it fails.
EVENT_DEADLINE_SECONDS = 10.0


async def folder_events(caller: Caller, folder_id: str, **filters: object) -> list[v1.AuditEvent]:
    """Every event of the folder the filters select, newest first, following the pages."""
    found: list[v1.AuditEvent] = []
    token = ""
    while True:
        request = v1.ListAuditEventsRequest(folder_id=folder_id, page_token=token, **filters)  # type: ignore[arg-type]
        page = await caller.audit.list_audit_events(request)
        found += page.events
        if not page.next_page_token:
            return found
        token = page.next_page_token


async def own_events(caller: Caller) -> list[v1.AuditEvent]:
    return (await caller.audit.list_audit_events(v1.ListAuditEventsRequest())).events


def actions(events: list[v1.AuditEvent]) -> list[tuple[str, str, str]]:
    """(action, actor, outcome) of each event, oldest first."""
    return [(e.action, e.actor_username, e.outcome) for e in reversed(events)]


async def test_changes_and_downloads_are_listed_to_the_folders_owners(api: Api) -> None:
    """Every change and download in a folder is listed, with its actor and outcome."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    model = await model_of(alice)
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "bob", VIEWER)
    )
    await upload(alice, model.id, b"weights")
    await alice.models.set_model_alias(v1.SetModelAliasRequest(model.id, "production", 1))
    await download(bob, model.id, 1)
    events = await folder_events(alice, model.folder_id)
    assert actions(events) == [
        ("CreateFolder", "alice", "OK"),
        ("CreateModel", "alice", "OK"),
        ("GrantFolderAccess", "alice", "OK"),
        ("UploadModelVersion", "alice", "OK"),
        ("SetModelAlias", "alice", "OK"),
        ("DownloadModelVersion", "bob", "OK"),
    ]
    downloaded = events[0]
    assert downloaded.resource == f"models/{model.id}/versions/1"
    assert downloaded.details == {"version": "1", "offset": "0"}
    assert downloaded.actor_user_id == bob.user.id
    assert downloaded.token_id


async def test_a_refusal_is_recorded_with_its_reason(api: Api) -> None:
    """A viewer's refused change shows in the folder's trail with the reason it got."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    model = await model_of(alice)
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "bob", VIEWER)
    )
    await expect_error(
        bob.models.delete_model(v1.DeleteModelRequest(model.id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    refused = (await folder_events(alice, model.folder_id, action="DeleteModel"))[0]
    assert (refused.actor_username, refused.outcome) == ("bob", "FOLDER_ACCESS_DENIED")
    assert refused.resource == f"models/{model.id}"


async def test_only_owners_list_a_folders_events(api: Api) -> None:
    """An editor of a folder, and a stranger, are refused its trail alike."""
    alice, bob, carol = (
        await api.caller("alice"),
        await api.caller("bob"),
        await api.caller("carol"),
    )
    model = await model_of(alice)
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "bob", EDITOR)
    )
    for caller in (bob, carol):
        await expect_error(
            caller.audit.list_audit_events(v1.ListAuditEventsRequest(folder_id=model.folder_id)),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )


async def test_sign_ins_are_listed_to_the_accounts_owner(api: Api) -> None:
    """Successful and failed sign-ins to an account show in its owner's own trail."""
    alice = await api.caller("alice")
    await expect_error(
        api.auth.sign_in(v1.SignInRequest("alice", "wrong password")),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    mine = actions(await own_events(alice))
    assert mine == [
        ("SignUp", "alice", "OK"),
        ("SignIn", "alice", "OK"),
        ("SignIn", "", "INVALID_CREDENTIALS"),
    ]
    stranger = await api.caller("mallory")
    assert ("SignIn", "", "INVALID_CREDENTIALS") not in actions(await own_events(stranger))


async def test_filters_and_pages(api: Api) -> None:
    """Filters by action, actor and resource select exactly; pages neither repeat nor skip."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    model = await model_of(alice)
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "bob", EDITOR)
    )
    for _ in range(3):
        await upload(bob, model.id, b"weights")
    every = await folder_events(alice, model.folder_id, page_size=2)
    assert len({e.id for e in every}) == len(every) == 6
    uploads = await folder_events(alice, model.folder_id, action="UploadModelVersion")
    assert [e.details["version"] for e in uploads] == ["3", "2", "1"]
    assert await folder_events(alice, model.folder_id, actor="bob") == uploads
    second = f"models/{model.id}/versions/2"
    assert [e.resource for e in await folder_events(alice, model.folder_id, resource=second)] == [
        second
    ]
    await expect_error(
        alice.audit.list_audit_events(
            v1.ListAuditEventsRequest(folder_id=model.folder_id, action="x" * 65)
        ),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="action",
    )


async def prune(settings: Settings) -> int:
    """Prunes the trail as a server process does, with a retention of one day."""
    database, _ = storage_locations(settings)
    store = await MetadataStore.open(database)
    try:
        return await AuditTrail(store, PageTokens(b"secret"), retention_seconds=86_400).prune()
    finally:
        await store.close()


async def test_events_past_the_retention_period_are_pruned(settings: Settings, api: Api) -> None:
    """Pruning deletes the events older than the retention period and keeps the rest."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await sql(settings, "UPDATE audit_events SET occurred_us = 0 WHERE action = 'CreateFolder'")
    assert await prune(settings) == 1
    assert [e.action for e in await folder_events(alice, model.folder_id)] == ["CreateModel"]


# WatchEvents


@dataclass
class Watch:
    """An open WatchEvents stream and what it has received."""

    stream: AsyncIterator[v1.WatchEventsResponse]
    after: int

    async def next_event(self) -> v1.CatalogEvent:
        """The next message that carries an event (heartbeats are skipped)."""
        async with asyncio.timeout(EVENT_DEADLINE_SECONDS):
            async for message in self.stream:
                self.after = message.after_event_id
                if message.event.id:
                    return message.event
        raise AssertionError("the stream ended")


@asynccontextmanager
async def watching(caller: Caller, **request: object) -> AsyncIterator[Watch]:
    """A WatchEvents stream, open (its first message received) while the block runs."""
    stream = caller.audit.watch_events(v1.WatchEventsRequest(**request))  # type: ignore[arg-type]
    first = await anext(stream)
    assert not first.event.id
    try:
        yield Watch(stream, first.after_event_id)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def test_a_watch_delivers_a_new_version(api: Api) -> None:
    """A stream opened before an upload delivers the new version."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    async with watching(alice, folder_id=model.folder_id) as watch:
        await upload(alice, model.id, b"weights")
        event = await watch.next_event()
    assert (event.kind, event.model_id, event.version) == (
        v1.CatalogEventKind.VERSION_CREATED,
        model.id,
        1,
    )
    assert (event.folder_id, event.actor_username) == (model.folder_id, "alice")


async def test_a_resumed_watch_misses_nothing_and_repeats_nothing(api: Api) -> None:
    """Reconnecting with the last event id delivers exactly the events made meanwhile."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"one")
    async with watching(alice) as watch:
        await alice.models.set_model_alias(v1.SetModelAliasRequest(model.id, "production", 1))
        first = await watch.next_event()
        last = watch.after
    await upload(alice, model.id, b"two")
    await alice.models.set_model_alias(v1.SetModelAliasRequest(model.id, "production", 2))
    async with watching(alice, after_event_id=last) as watch:
        missed = [await watch.next_event(), await watch.next_event()]
        await alice.models.delete_model_alias(v1.DeleteModelAliasRequest(model.id, "production"))
        after = await watch.next_event()
    kinds = [e.kind for e in (first, *missed, after)]
    assert kinds == [
        v1.CatalogEventKind.ALIAS_SET,
        v1.CatalogEventKind.VERSION_CREATED,
        v1.CatalogEventKind.ALIAS_SET,
        v1.CatalogEventKind.ALIAS_DELETED,
    ]
    ids = [e.id for e in (first, *missed, after)]
    assert ids == sorted(set(ids))


async def test_an_alias_watch_gets_only_that_aliases_moves(api: Api) -> None:
    """With an alias, a stream skips other aliases and other kinds of event."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"one")
    async with watching(alice, folder_id=model.folder_id, alias="production") as watch:
        await alice.models.set_model_alias(v1.SetModelAliasRequest(model.id, "staging", 1))
        await upload(alice, model.id, b"two")
        await alice.models.set_model_alias(v1.SetModelAliasRequest(model.id, "production", 2))
        event = await watch.next_event()
    assert (event.alias, event.version) == ("production", 2)


async def test_a_watch_shows_only_folders_the_caller_may_see(api: Api) -> None:
    """Events of another's folder never reach a stream; a revoked member gets the revocation
    and nothing after it; members of a deleted folder get its deletion."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    model = await model_of(alice)
    secret = await alice.folders.create_folder(v1.CreateFolderRequest("secret"))
    await alice.folders.grant_folder_access(
        v1.GrantFolderAccessRequest(model.folder_id, "bob", VIEWER)
    )
    async with watching(bob) as watch:
        await alice.folders.grant_folder_access(
            v1.GrantFolderAccessRequest(model.folder_id, "bob", EDITOR)
        )
        granted = await watch.next_event()
        await alice.folders.revoke_folder_access(
            v1.RevokeFolderAccessRequest(model.folder_id, "bob")
        )
        revoked = await watch.next_event()
        await upload(alice, model.id, b"unseen")
        await alice.folders.grant_folder_access(
            v1.GrantFolderAccessRequest(secret.folder.id, "bob", VIEWER)
        )
        regranted = await watch.next_event()
        await alice.folders.delete_folder(v1.DeleteFolderRequest(secret.folder.id))
        deleted = await watch.next_event()
    assert (granted.kind, granted.username, granted.role) == (
        v1.CatalogEventKind.ACCESS_GRANTED,
        "bob",
        EDITOR,
    )
    assert revoked.kind == v1.CatalogEventKind.ACCESS_REVOKED
    assert (regranted.kind, regranted.folder_id) == (
        v1.CatalogEventKind.ACCESS_GRANTED,
        secret.folder.id,
    )
    assert (deleted.kind, deleted.folder_id) == (
        v1.CatalogEventKind.FOLDER_DELETED,
        secret.folder.id,
    )


async def test_concurrent_changes_reach_a_watch_in_order_without_gaps(api: Api) -> None:
    """Changes committed at once get consecutive event ids, all delivered in order."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"one")
    count = 20
    async with watching(alice) as watch:
        start = watch.after
        await asyncio.gather(
            *(
                alice.models.set_model_alias(v1.SetModelAliasRequest(model.id, f"a{n}", 1))
                for n in range(count)
            )
        )
        received = [await watch.next_event() for _ in range(count)]
    assert [e.id for e in received] == list(range(start + 1, start + count + 1))
    assert {e.alias for e in received} == {f"a{n}" for n in range(count)}


async def test_a_watch_refuses_bad_positions_and_strangers(api: Api) -> None:
    """A position past the newest event, a negative one, or another's folder is refused."""
    alice, bob = await api.caller("alice"), await api.caller("bob")
    model = await model_of(alice)

    async def first(caller: Caller, request: v1.WatchEventsRequest) -> None:
        await anext(caller.audit.watch_events(request))

    await expect_error(
        first(alice, v1.WatchEventsRequest(after_event_id=10**9)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="after_event_id",
    )
    await expect_error(
        first(alice, v1.WatchEventsRequest(after_event_id=-1)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="after_event_id",
    )
    await expect_error(
        first(bob, v1.WatchEventsRequest(folder_id=model.folder_id)),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )


async def test_a_watch_resuming_before_pruned_events_is_refused(
    settings: Settings, api: Api
) -> None:
    """Resuming from a position whose successors were pruned fails with EVENTS_EXPIRED."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"one")
    await upload(alice, model.id, b"two")
    await sql(settings, "UPDATE audit_events SET occurred_us = 0")
    await prune(settings)
    await expect_error(
        anext(alice.audit.watch_events(v1.WatchEventsRequest(after_event_id=0))),
        Status.OUT_OF_RANGE,
        "EVENTS_EXPIRED",
    )


async def test_watchers_per_user_are_capped(settings: Settings) -> None:
    """Past the per-user cap a further stream is refused with OVERLOADED."""
    capped = Settings(**{**settings.__dict__, "max_watchers_per_user": 1})
    async with build_application(capped) as app, channel_for(app) as channel:
        alice = await Api(channel).caller("alice")
        async with watching(alice):
            await expect_error(
                anext(alice.audit.watch_events(v1.WatchEventsRequest())),
                Status.RESOURCE_EXHAUSTED,
                "OVERLOADED",
            )


async def test_events_come_from_the_database_across_processes(
    settings: Settings, channel: Channel, api: Api
) -> None:
    """A stream on one server process delivers a change made through another."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    async with build_application(settings) as other, channel_for(other) as other_channel:
        elsewhere = Api(other_channel).as_token(alice.user, alice.token)
        async with watching(alice) as watch:
            await upload(elsewhere, model.id, b"weights")
            event = await watch.next_event()
    assert (event.kind, event.version) == (v1.CatalogEventKind.VERSION_CREATED, 1)


async def test_a_feed_position_is_taken_only_after_the_previous_holder_ends(
    settings: Settings, api: Api
) -> None:
    """On PostgreSQL a change waits for the feed's counter while another transaction holds it,
    then takes the position that one gave back: positions are given in commit order, gapless."""
    if not settings.database_url:
        pytest.skip("SQLite runs one writer at a time: nothing can commit out of order")
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"one")
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as holder, engine.connect() as observer:
            held = await holder.execute(
                text(
                    "UPDATE event_feed SET position = position + 1 WHERE id = 1 RETURNING position"
                )
            )
            position = held.scalar_one()
            moving = asyncio.ensure_future(
                alice.models.set_model_alias(v1.SetModelAliasRequest(model.id, "production", 1))
            )
            deadline = asyncio.get_running_loop().time() + EVENT_DEADLINE_SECONDS
            while not await _waits_for_a_lock(observer):
                assert asyncio.get_running_loop().time() < deadline, "the change never waited"
                await asyncio.sleep(0.01)
            assert not moving.done()
            await holder.rollback()
            await moving
    finally:
        await engine.dispose()
    async with watching(alice, after_event_id=position - 1) as watch:
        event = await watch.next_event()
    assert (event.id, event.kind) == (position, v1.CatalogEventKind.ALIAS_SET)


async def _waits_for_a_lock(connection: AsyncConnection) -> bool:
    """Whether some session of the database is waiting for a lock now."""
    waiting = await connection.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )
    await connection.rollback()
    return bool(waiting.scalar_one())


async def model_in(caller: Caller, folder_name: str) -> v1.Model:
    folder = (await caller.folders.create_folder(v1.CreateFolderRequest(folder_name))).folder
    return (await caller.models.create_model(v1.CreateModelRequest(folder.id, "resnet"))).model


async def access_token(api: Api, owner: Caller, name: str, scope: str, *folder_ids: str) -> Caller:
    """``owner``'s new access token, as a caller."""
    made = await owner.auth.create_access_token(
        v1.CreateAccessTokenRequest(
            name, v1.AccessTokenScope.from_string(scope), list(folder_ids), ttl_seconds=3600
        )
    )
    return api.as_token(owner.user, made.secret)


async def test_a_download_with_an_access_token_is_listed_with_the_tokens_name(api: Api) -> None:
    """The trail names the access token a download came with; making the token is listed too."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"weights")
    deploy = await access_token(api, alice, "deploy", "READ")
    await download(deploy, model.id, 1)
    downloaded = (await folder_events(alice, model.folder_id))[0]
    assert (downloaded.action, downloaded.token_name) == ("DownloadModelVersion", "deploy")
    made = [e for e in await own_events(alice) if e.action == "CreateAccessToken"]
    assert [e.details["name"] for e in made] == ["deploy"]


async def test_a_folder_limited_token_lists_and_watches_only_its_folders(api: Api) -> None:
    """A token limited to one folder sees neither the events of the owner's other folders in
    the owner's own trail nor on a watch."""
    alice = await api.caller("alice")
    inside, outside = await model_in(alice, "inside"), await model_in(alice, "outside")
    limited = await access_token(api, alice, "ci", "READ", inside.folder_id)
    async with watching(limited) as watch:
        await upload(alice, outside.id, b"elsewhere")
        await upload(alice, inside.id, b"here")
        event = await watch.next_event()
    assert (event.model_id, event.version) == (inside.id, 1)
    listed = await own_events(limited)
    assert listed
    assert {e.folder_id for e in listed} == {inside.folder_id}


async def test_a_watch_made_with_an_access_token_ends_when_the_token_is_revoked(
    api: Api,
) -> None:
    """Revoking the token a watch was opened with ends the stream with TOKEN_REVOKED."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    made = await alice.auth.create_access_token(
        v1.CreateAccessTokenRequest(
            "deploy", v1.AccessTokenScope.from_string("READ"), [], ttl_seconds=3600
        )
    )
    deploy = api.as_token(alice.user, made.secret)
    async with watching(deploy) as watch:
        await alice.auth.revoke_access_token(v1.RevokeAccessTokenRequest(made.access_token.id))
        await upload(alice, model.id, b"weights")
        with pytest.raises(GRPCError) as ended:
            await watch.next_event()
    assert ended.value.status == Status.UNAUTHENTICATED


async def test_a_change_refused_to_a_read_only_token_is_recorded_with_the_token(
    api: Api,
) -> None:
    """A read-only token's attempt at a change is in its owner's trail, naming the token and
    the reason it was refused."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    deploy = await access_token(api, alice, "deploy", "READ")
    await expect_error(
        deploy.models.delete_model(v1.DeleteModelRequest(model.id)),
        Status.PERMISSION_DENIED,
        "TOKEN_READ_ONLY",
    )
    refused = [e for e in await own_events(alice) if e.action == "DeleteModel"]
    assert [(e.token_name, e.outcome) for e in refused] == [("deploy", "TOKEN_READ_ONLY")]


async def test_a_wrong_password_when_changing_it_is_recorded_once_as_that_change(
    api: Api,
) -> None:
    """Confirming a password is not a sign-in: a wrong one leaves one ChangePassword refusal,
    a right one one ChangePassword, and no sign-in events."""
    alice = await api.caller("alice")
    await expect_error(
        alice.auth.change_password(v1.ChangePasswordRequest("wrong password", "new password 1")),
        Status.PERMISSION_DENIED,
        "INVALID_CREDENTIALS",
    )
    changed = await alice.auth.change_password(
        v1.ChangePasswordRequest("correct horse", "new password 1")
    )
    events = actions(await own_events(api.as_token(alice.user, changed.access_token)))
    assert [e for e in events if e[0] in ("SignIn", "ChangePassword")] == [
        ("SignIn", "alice", "OK"),
        ("ChangePassword", "alice", "INVALID_CREDENTIALS"),
        ("ChangePassword", "alice", "OK"),
    ]
