"""Calls that change nothing, and changes made retry-safe by a request_id, are retried after
UNAVAILABLE, within their deadline; other changes never are. Each call's timeout overrides the
client's."""

import io
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorSet, MethodOptions
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.events import SendRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.testing import ChannelFor
from rpc_testing import Flaky
from test_exported_members import public_members

from modelcatalog import AsyncClient, Unavailable, _client, v1

Call = Callable[[AsyncClient], Awaitable[object]]


async def _drain(items: AsyncIterator[object]) -> None:
    async for _ in items:
        pass


CALLS: dict[str, Call] = {
    "sign_up": lambda client: client.sign_up("bob", "password"),
    "sign_in": lambda client: client.sign_in("bob", "password"),
    "get_current_user": lambda client: client.get_current_user(),
    "sign_out": lambda client: client.sign_out(),
    "create_access_token": lambda client: client.create_access_token("ci", 60, read_only=True),
    "list_access_tokens": lambda client: _drain(client.list_access_tokens()),
    "revoke_access_token": lambda client: client.revoke_access_token("t1"),
    "change_password": lambda client: client.change_password("password", "new password"),
    "sign_out_everywhere": lambda client: client.sign_out_everywhere(),
    "delete_account": lambda client: client.delete_account("password"),
    "create_folder": lambda client: client.create_folder("vision"),
    "get_folder": lambda client: client.get_folder("f1"),
    "list_folders": lambda client: _drain(client.list_folders()),
    "update_folder": lambda client: client.update_folder("f1", name="sight"),
    "grant_folder_access": lambda client: client.grant_folder_access("f1", "bob", "viewer"),
    "revoke_folder_access": lambda client: client.revoke_folder_access("f1", "bob"),
    "leave_folder": lambda client: client.leave_folder("f1"),
    "list_folder_access": lambda client: _drain(client.list_folder_access("f1")),
    "explain_access": lambda client: client.explain_access("f1", username="bob"),
    "delete_folder": lambda client: client.delete_folder("f1", force=True),
    "create_model": lambda client: client.create_model("f1", "resnet"),
    "get_model": lambda client: client.get_model("m1"),
    "list_models": lambda client: _drain(client.list_models()),
    "update_model": lambda client: client.update_model("m1", description="cnn"),
    "get_model_version": lambda client: client.get_model_version("m1", 1),
    "list_model_versions": lambda client: _drain(client.list_model_versions("m1")),
    "update_model_version": lambda client: client.update_model_version("m1", 1, labels={}),
    "set_model_alias": lambda client: client.set_model_alias("m1", "production", 1),
    "delete_model_alias": lambda client: client.delete_model_alias("m1", "production"),
    "list_model_aliases": lambda client: _drain(client.list_model_aliases("m1")),
    "delete_model_version": lambda client: client.delete_model_version("m1", 1),
    "delete_model": lambda client: client.delete_model("m1"),
    "upload": lambda client: client.upload("m1", io.BytesIO(b"weights"), file_name="m.bin"),
    "list_audit_events": lambda client: _drain(client.list_audit_events("f1")),
}
"""One call of every method with a unary RPC (download is tested in test_transfers.py,
watch_events below)."""

SERVICES = (
    v1.AuthServiceBase,
    v1.FolderServiceBase,
    v1.ModelServiceBase,
    v1.AuditServiceBase,
)
WATCH = "/modelcatalog.v1.AuditService/WatchEvents"
# Looked up by name: mypy types betterproto enum members as plain ints.
CREATED = v1.CatalogEventKind.from_string("VERSION_CREATED")


def _contract_routes() -> tuple[set[str], set[str], set[str]]:
    """Every route of the contract, those it marks ``NO_SIDE_EFFECTS``, and those whose
    request (or an upload's header) has a ``request_id``."""
    contract = FileDescriptorSet.FromString(v1.file_descriptor_set())
    messages = {
        f".{file.package}.{message.name}": message
        for file in contract.file
        for message in file.message_type
    }

    def has_request_id(type_name: str) -> bool:
        return any(
            field.name == "request_id"
            or (field.name == "header" and has_request_id(field.type_name))
            for field in messages[type_name].field
        )

    every, reads, with_ids = set(), set(), set()
    for file in contract.file:
        for service in file.service:
            for method in service.method:
                route = f"/{file.package}.{service.name}/{method.name}"
                every.add(route)
                if method.options.idempotency_level == MethodOptions.NO_SIDE_EFFECTS:
                    reads.add(route)
                if has_request_id(method.input_type):
                    with_ids.add(route)
    return every, reads, with_ids


async def _attempts(call: Call, failures: int, **options: Any) -> tuple[dict[str, int], bool]:
    """The attempts per route of ``call`` against services that fail ``failures`` times
    first, and whether it succeeded."""
    attempts, _, succeeded = await _attempts_and_ids(call, failures, **options)
    return attempts, succeeded


async def _attempts_and_ids(
    call: Call, failures: int, **options: Any
) -> tuple[dict[str, int], dict[str, list[str]], bool]:
    """As ``_attempts``, with the request_id each attempt carried, per route."""
    services = [Flaky(service, failures) for service in SERVICES]
    async with ChannelFor(services) as channel:
        client = AsyncClient.from_channel(channel, token="tok", retry_backoff=0, **options)
        try:
            await call(client)
        except Unavailable:
            succeeded = False
        else:
            succeeded = True
    attempts = {route: n for service in services for route, n in service.attempts.items()}
    ids = {route: i for service in services for route, i in service.request_ids.items()}
    return attempts, ids, succeeded


def test_every_method_is_classified() -> None:
    """Each public method with an RPC is in CALLS here or tested for retries elsewhere."""
    elsewhere = {"download", "close", "from_channel", "token", "watch_events"}
    assert set(CALLS) | elsewhere == set(public_members(AsyncClient))


UPLOAD = "/modelcatalog.v1.ModelService/UploadModelVersion"
UPLOAD_STATUS = "/modelcatalog.v1.ModelService/GetUploadStatus"


async def test_exactly_the_reads_and_the_changes_with_a_request_id_are_retried() -> None:
    """After one UNAVAILABLE, reads and changes with a request_id are sent again and succeed
    (each change with the same, random request_id every time); other changes are sent once
    and fail. An upload from a file object is sent once: its bytes cannot be read again."""
    every, reads, with_ids = _contract_routes()
    retried: set[str] = set()
    sent_once: set[str] = set()
    for name, call in CALLS.items():
        attempts, ids, succeeded = await _attempts_and_ids(call, failures=1, retries=1)
        retried |= {route for route, n in attempts.items() if n == 2}
        sent_once |= {route for route, n in attempts.items() if n == 1}
        safe = (reads | with_ids) - {UPLOAD}
        assert succeeded == all(route in safe for route in attempts), name
        for route in attempts.keys() & with_ids:
            assert len(set(ids[route])) == 1, name
            assert uuid.UUID(ids[route][0]).version == 4, name
    download = "/modelcatalog.v1.ModelService/DownloadModelVersion"
    # GetUploadStatus is asked only to resume an upload from a path (tested below).
    assert retried == (reads | with_ids) - {download, UPLOAD, UPLOAD_STATUS, WATCH}
    assert sent_once == (every - reads - with_ids) | {UPLOAD}
    assert with_ids >= {UPLOAD, "/modelcatalog.v1.FolderService/CreateFolder"}


async def test_an_upload_from_a_path_is_sent_again_with_its_request_id(tmp_path: Path) -> None:
    """An upload of a path that meets UNAVAILABLE asks what the server holds of it (a read,
    itself retried) and is sent again from there (here its start: the server holds nothing),
    with the request_id of the first attempt, so the server stores it once."""
    path = tmp_path / "m.bin"
    path.write_bytes(b"weights")
    attempts, ids, succeeded = await _attempts_and_ids(
        lambda client: client.upload("m1", path), failures=1, retries=1
    )
    assert succeeded
    assert attempts == {UPLOAD: 2, UPLOAD_STATUS: 2}
    assert len(set(ids[UPLOAD] + ids[UPLOAD_STATUS])) == 1


async def test_a_request_id_given_is_the_one_sent() -> None:
    """A caller's own request_id (e.g. kept by a job across restarts) is sent as given."""
    mine = "0b7e5a9c-1111-4c4c-8d8d-000000000001"
    _, ids, _ = await _attempts_and_ids(
        lambda client: client.create_folder("vision", request_id=mine), failures=0
    )
    assert ids == {"/modelcatalog.v1.FolderService/CreateFolder": [mine]}


async def test_reads_are_retried_until_they_succeed() -> None:
    """A read that fails twice with UNAVAILABLE succeeds on its third attempt."""
    attempts, succeeded = await _attempts(CALLS["get_model"], failures=2, retries=3)
    assert succeeded
    assert attempts == {"/modelcatalog.v1.ModelService/GetModel": 3}


async def test_retries_stop_after_the_configured_count() -> None:
    """With retries=2 a read is sent three times, then the UNAVAILABLE is raised."""
    attempts, succeeded = await _attempts(CALLS["get_folder"], failures=5, retries=2)
    assert not succeeded
    assert attempts == {"/modelcatalog.v1.FolderService/GetFolder": 3}


async def test_retries_zero_sends_once() -> None:
    """retries=0 turns retrying off."""
    attempts, _ = await _attempts(CALLS["list_models"], failures=1, retries=0)
    assert attempts == {"/modelcatalog.v1.ModelService/ListModels": 1}


async def test_waits_between_retries_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry n waits backoff_delay(n, retry_backoff): the wait's ceiling doubles each time."""
    waits: list[tuple[int, float]] = []

    def no_wait(retry: int, retry_backoff: float) -> float:
        waits.append((retry, retry_backoff))
        return 0.0

    monkeypatch.setattr(_client, "backoff_delay", no_wait)
    services = [Flaky(v1.ModelServiceBase, failures=3)]
    async with ChannelFor(services) as channel:
        client = AsyncClient.from_channel(channel, retries=3, retry_backoff=0.5)
        await client.get_model("m1")
    assert waits == [(1, 0.5), (2, 0.5), (3, 0.5)]


def test_backoff_is_exponential_with_full_jitter() -> None:
    """Waits are random within [0, backoff * 2**(n-1)], capped at MAX_RETRY_BACKOFF."""
    for retry, ceiling in [(1, 0.25), (2, 0.5), (3, 1.0), (10, _client.MAX_RETRY_BACKOFF)]:
        waits = [_client.backoff_delay(retry, 0.25) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > 0.8 * ceiling  # spread over the range, not a fixed wait
        assert len(set(waits)) > 100


async def test_no_retry_starts_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry whose wait would outlast the call's timeout is not made; UNAVAILABLE is raised."""
    monkeypatch.setattr(_client, "backoff_delay", lambda retry, retry_backoff: 60.0)
    attempts, succeeded = await _attempts(CALLS["get_model"], failures=1, timeout=5.0)
    assert not succeeded
    assert attempts == {"/modelcatalog.v1.ModelService/GetModel": 1}


class UntrustedChannel(Channel):
    """A channel whose every connection fails: with ``error``, counting the attempts."""

    def __init__(self, error: Exception) -> None:
        super().__init__("127.0.0.1", 1)
        self.error = error
        self.connections = 0

    async def _create_connection(self) -> Any:
        self.connections += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "connections"),
    [
        (ConnectionRefusedError(111, "Connection refused"), 1 + 2),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), 1),
    ],
)
async def test_unreachable_server_is_retried_but_an_untrusted_one_is_not(
    error: Exception, connections: int
) -> None:
    """A refused connection is retried like UNAVAILABLE; a TLS verification failure is not."""
    channel = UntrustedChannel(error)
    client = AsyncClient.from_channel(channel, retries=2, retry_backoff=0)
    with pytest.raises(Unavailable):
        await client.get_current_user()
    assert channel.connections == connections


@pytest.mark.parametrize(("retries", "retry_backoff"), [(-1, 0.1), (3, -0.1)])
async def test_negative_retry_settings_are_refused(retries: int, retry_backoff: float) -> None:
    """A negative retry count or backoff raises ValueError when the client is made."""
    with pytest.raises(ValueError, match="must not be negative"):
        AsyncClient.from_channel(Channel(), retries=retries, retry_backoff=retry_backoff)


async def test_each_call_may_override_the_timeout() -> None:
    """timeout= on a call replaces the client's deadline for it; None sends no deadline."""
    deadlines: list[float | None] = []

    async def record(event: SendRequest) -> None:
        deadlines.append(None if event.deadline is None else event.deadline.time_remaining())

    async with ChannelFor([Flaky(v1.AuthServiceBase, failures=0)]) as channel:
        listen(channel, SendRequest, record)
        client = AsyncClient.from_channel(channel, timeout=30.0)
        await client.get_current_user(timeout=2.0)
        await client.get_current_user(timeout=None)
        await client.get_current_user()
    short, none, default = deadlines
    assert short is not None
    assert 1.0 < short <= 2.0
    assert none is None
    assert default is not None
    assert 29.0 < default <= 30.0


async def test_retries_share_the_call_deadline() -> None:
    """Every attempt of a call is sent with the same deadline, not a fresh timeout each."""
    deadlines: list[object] = []

    async def record(event: SendRequest) -> None:
        deadlines.append(event.deadline)

    async with ChannelFor([Flaky(v1.FolderServiceBase, failures=2)]) as channel:
        listen(channel, SendRequest, record)
        client = AsyncClient.from_channel(channel, retry_backoff=0)
        await client.get_folder("f1", timeout=10.0)
    assert len(deadlines) == 3
    assert deadlines[0] is not None
    assert deadlines.count(deadlines[0]) == 3


class _BreakingFeed(v1.AuditServiceBase):
    """A feed whose every stream sends the next event after the position asked for, then
    breaks off as a restarting server does; it records the positions asked for."""

    def __init__(self) -> None:
        self.asked: list[int | None] = []

    async def watch_events(
        self, watch_events_request: v1.WatchEventsRequest
    ) -> AsyncIterator[v1.WatchEventsResponse]:
        after = watch_events_request.after_event_id
        self.asked.append(after)
        start = after or 0
        yield v1.WatchEventsResponse(after_event_id=start)
        event = v1.CatalogEvent(id=start + 1, kind=CREATED)
        yield v1.WatchEventsResponse(event=event, after_event_id=start + 1)
        raise GRPCError(Status.UNAVAILABLE, "the server is restarting")


async def test_a_watch_reconnects_after_the_last_event_it_received() -> None:
    """A watch whose stream breaks opens a new one after the last event: each event once."""
    feed = _BreakingFeed()
    async with ChannelFor([feed]) as channel:
        client = AsyncClient.from_channel(channel, retry_backoff=0)
        events = client.watch_events("f1", after_event_id=10)
        received = [(await anext(events)).id for _ in range(3)]
        await events.aclose()  # type: ignore[attr-defined]
    assert received == [11, 12, 13]
    assert feed.asked == [10, 11, 12]
