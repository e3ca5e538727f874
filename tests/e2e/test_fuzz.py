"""Fuzzed requests against the real server: answered, never INTERNAL or UNKNOWN, no traceback.

Every RPC of every service gets arbitrary bytes and mutated valid requests (wrong wire
types, cuts, over-long varints, stray fields), with a token where the RPC needs one and ids
that exist, so mutations that still decode reach the handlers. The default run tries
``EXAMPLES`` messages per RPC; set MODELCATALOG_TEST_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import betterproto
from betterproto.lib.google.protobuf import FieldMask
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError
from hypothesis import given, settings
from hypothesis import strategies as st
from protobuf_fuzzing import mutated

from modelcatalog import AsyncClient, v1

from .conftest import RunningServer
from .test_skeleton import RawBytes

EXAMPLES = int(os.environ.get("MODELCATALOG_TEST_FUZZ_EXAMPLES", "100"))
CALL_TIMEOUT_SECONDS = 10.0
SERVICES = (
    v1.AuthServiceBase(),
    v1.FolderServiceBase(),
    v1.ModelServiceBase(),
    v1.AuditServiceBase(),
)
#: Streams that never end by themselves: answered once their first message arrives.
ENDLESS_METHODS = ("/WatchEvents",)
PUBLIC_METHODS = {"SignUp", "SignIn"}
#: The RPCs whose first success may end the token they are called with.
TOKEN_ENDING_METHODS = ("SignOut", "SignOutEverywhere", "ChangePassword", "DeleteAccount")
USERNAME = "fuzzer"
PASSWORD = "correct horse battery"
EDITOR = v1.FolderRole.from_string("EDITOR")
NEVER = {Status.INTERNAL, Status.UNKNOWN}
#: A public unary RPC, a signed-in unary RPC and the client stream.
CUT_SHORT_METHODS = ("/SignUp", "/GetModel", "/UploadModelVersion")
#: A message prefix cut after 1 and 4 bytes, a whole prefix declaring 9 bytes, and 3 of those.
#: A time in the resources update requests carry (which the server ignores, but decodes).
STAMP = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC)
UNFINISHED_MESSAGES = (b"\x00", b"\x00" * 4, b"\x00" * 4 + b"\x09", b"\x00" * 4 + b"\x09\x0a\x07a")


@dataclass(frozen=True)
class Catalog:
    """What exists on the server before fuzzing: a signed-in user's folder, model, version and
    alias."""

    token: str
    folder_id: str
    model_id: str
    own_tokens: dict[str, str]
    """For each RPC that may end its caller's token (SignOut, SignOutEverywhere, ChangePassword,
    DeleteAccount), a token of an account of its own, so the other RPCs keep theirs."""
    doomed_folder_id: str
    doomed_model_id: str
    """A folder and a model (with a version) of their own for the Delete RPCs, whose fuzzed
    calls may delete them, so the other RPCs keep theirs."""


@dataclass(frozen=True)
class Target:
    """One RPC, the valid request its fuzzed messages start from, and messages sent before it."""

    path: str
    cardinality: Cardinality
    seed: bytes
    before: tuple[bytes, ...] = ()
    token: str | None = None

    @property
    def metadata(self) -> dict[str, str] | None:
        return {"authorization": f"Bearer {self.token}"} if self.token else None


async def populate(server: RunningServer) -> Catalog:
    async with AsyncClient(server.address, ca_cert=server.ca_cert, timeout=30) as client:
        await client.sign_up(USERNAME, PASSWORD)
        await client.sign_up("colleague", PASSWORD)
        own_tokens = {}
        for method in TOKEN_ENDING_METHODS:
            username = method.lower()
            await client.sign_up(username, PASSWORD)
            own_tokens[method] = (await client.sign_in(username, PASSWORD)).access_token
        token = (await client.sign_in(USERNAME, PASSWORD)).access_token
        folder = await client.create_folder("fuzzing", "a folder to fuzz")
        model = await client.create_model(folder.id, "target", "a model to fuzz")
        await client.upload(model.id, io.BytesIO(b"weights" * 100), file_name="weights.bin")
        await client.set_model_alias(model.id, "production", 1)
        doomed_folder = await client.create_folder("doomed")
        doomed_model = await client.create_model(doomed_folder.id, "doomed")
        await client.upload(doomed_model.id, io.BytesIO(b"doomed"), file_name="doomed.bin")
    return Catalog(token, folder.id, model.id, own_tokens, doomed_folder.id, doomed_model.id)


def targets(catalog: Catalog) -> list[Target]:
    """A target for every RPC of every service, and one each for an upload's chunk and
    trailer messages."""
    folder, model = catalog.folder_id, catalog.model_id
    header = v1.UploadModelVersionHeader(
        model_id=model, file_name="w.bin", size_bytes=4, sha256="0" * 64, labels={"a": "b"}
    )
    requests: dict[str, betterproto.Message] = {
        "SignUp": v1.SignUpRequest("newcomer", PASSWORD),
        "SignIn": v1.SignInRequest(USERNAME, PASSWORD),
        "GetCurrentUser": v1.GetCurrentUserRequest(),
        "SignOut": v1.SignOutRequest(),
        "CreateAccessToken": v1.CreateAccessTokenRequest(
            "ci", v1.AccessTokenScope(1), [folder], ttl_seconds=3600
        ),
        "ListAccessTokens": v1.ListAccessTokensRequest(page_size=5),
        "RevokeAccessToken": v1.RevokeAccessTokenRequest("7d3a2c1e-0000-4000-8000-000000000002"),
        "ChangePassword": v1.ChangePasswordRequest(PASSWORD, "another password"),
        "SignOutEverywhere": v1.SignOutEverywhereRequest(),
        "DeleteAccount": v1.DeleteAccountRequest(PASSWORD),
        "CreateFolder": v1.CreateFolderRequest("another", "a description"),
        "GetFolder": v1.GetFolderRequest(folder),
        "ListFolders": v1.ListFoldersRequest(page_size=5),
        "UpdateFolder": v1.UpdateFolderRequest(
            v1.Folder(id=folder, description="edited", create_time=STAMP),
            FieldMask(["description"]),
        ),
        "GrantFolderAccess": v1.GrantFolderAccessRequest(folder, "colleague", EDITOR),
        "RevokeFolderAccess": v1.RevokeFolderAccessRequest(folder, "colleague"),
        "ListFolderAccess": v1.ListFolderAccessRequest(folder, page_size=5),
        "ExplainAccess": v1.ExplainAccessRequest(folder_id=folder, username="colleague"),
        "CreateModel": v1.CreateModelRequest(folder, "another", "a description"),
        "GetModel": v1.GetModelRequest(model),
        "ListModels": v1.ListModelsRequest(folder, page_size=5),
        "UpdateModel": v1.UpdateModelRequest(
            v1.Model(id=model, name="renamed", update_time=STAMP), FieldMask(["name"])
        ),
        "GetModelVersion": v1.GetModelVersionRequest(model, 1),
        "ListModelVersions": v1.ListModelVersionsRequest(model, page_size=5),
        "UpdateModelVersion": v1.UpdateModelVersionRequest(
            v1.ModelVersion(model_id=model, version=1, labels={"a": "b"}, etag="0" * 24),
            FieldMask(["labels"]),
        ),
        "UploadModelVersion": v1.UploadModelVersionRequest(header=header),
        "DownloadModelVersion": v1.DownloadModelVersionRequest(model, 1, offset=3),
        "SetModelAlias": v1.SetModelAliasRequest(model, "staging", 1, expected_version=0),
        "DeleteModelAlias": v1.DeleteModelAliasRequest(model, "production", expected_version=1),
        "ListModelAliases": v1.ListModelAliasesRequest(model, page_size=5),
        "DeleteFolder": v1.DeleteFolderRequest(catalog.doomed_folder_id, force=True),
        "DeleteModelVersion": v1.DeleteModelVersionRequest(catalog.doomed_model_id, 1, force=True),
        "DeleteModel": v1.DeleteModelRequest(catalog.doomed_model_id),
        "ListAuditEvents": v1.ListAuditEventsRequest(
            folder, actor=USERNAME, action="UploadModelVersion", start_time=STAMP, page_size=5
        ),
        "WatchEvents": v1.WatchEventsRequest(folder, alias="production", after_event_id=1),
        "GetUploadStatus": v1.GetUploadStatusRequest(
            header=v1.UploadModelVersionHeader(
                model_id=model,
                file_name="w.bin",
                size_bytes=4,
                request_id="7d3a2c1e-0000-4000-8000-000000000001",
                offset=2,
            )
        ),
    }
    handlers = {path: h for service in SERVICES for path, h in service.__mapping__().items()}
    assert {path.rsplit("/", 1)[1] for path in handlers} == set(requests)
    found = []
    for path, handler in handlers.items():
        method = path.rsplit("/", 1)[1]
        token = None if method in PUBLIC_METHODS else catalog.token
        token = catalog.own_tokens.get(method, token)
        found.append(Target(path, handler.cardinality, bytes(requests[method]), token=token))
        if method == "UploadModelVersion":
            chunk = bytes(v1.UploadModelVersionRequest(chunk=b"data"))
            before = (bytes(requests[method]),)
            found.append(Target(path, handler.cardinality, chunk, before, catalog.token))
            # A header without a digest, so that the trailer's is the one checked.
            unverified = v1.UploadModelVersionHeader(model_id=model, file_name="t.bin")
            trailer = v1.UploadModelVersionTrailer(sha256=hashlib.sha256(b"data").hexdigest())
            found.append(
                Target(
                    path,
                    handler.cardinality,
                    bytes(v1.UploadModelVersionRequest(trailer=trailer)),
                    (bytes(v1.UploadModelVersionRequest(header=unverified)), chunk),
                    catalog.token,
                )
            )
    return found


async def raw_channel(server: RunningServer) -> Channel:
    """A channel that sends request bytes as they are, made on the runner's event loop."""
    return server.channel(RawBytes())


def fuzzed(seed: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=48), mutated(seed))


async def call(channel: Channel, target: Target, payload: bytes) -> Status:
    """Sends ``payload`` as ``target``'s last request message; the status the server answers."""
    try:
        async with channel.request(
            target.path,
            target.cardinality,
            bytes,
            bytes,
            timeout=CALL_TIMEOUT_SECONDS,
            metadata=target.metadata,
        ) as stream:
            for message in target.before:
                await stream.send_message(message)
            await stream.send_message(payload, end=True)
            while await stream.recv_message() is not None:
                if target.path.endswith(ENDLESS_METHODS):
                    await stream.cancel()
                    return Status.OK
    except GRPCError as error:
        return error.status
    return Status.OK


def fuzz(runner: asyncio.Runner, channel: Channel, target: Target) -> Counter[Status]:
    """Hypothesis sends ``EXAMPLES`` fuzzed messages to ``target``; the statuses it got."""
    statuses: Counter[Status] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(payload=fuzzed(target.seed))
    def answered_without_server_fault(payload: bytes) -> None:
        status = runner.run(call(channel, target, payload))
        statuses[status] += 1
        assert status not in NEVER, f"{target.path} answered {status.name} to {payload!r}"

    answered_without_server_fault()
    return statuses


def test_fuzzed_requests_never_fault_the_server(server: RunningServer) -> None:
    """Each RPC answers fuzzed messages with a client status; the log holds no traceback."""
    with asyncio.Runner() as runner:
        catalog = runner.run(populate(server))
        channel = runner.run(raw_channel(server))
        try:
            statuses = {target: fuzz(runner, channel, target) for target in targets(catalog)}
        finally:
            channel.close()
    for target, answered in statuses.items():
        # The first of these that succeeds ends its token: later ones stop at authentication.
        ends_token = target.path.rsplit("/", 1)[1] in TOKEN_ENDING_METHODS
        reached_decoding = Status.INVALID_ARGUMENT in answered or (
            ends_token and Status.OK in answered
        )
        assert reached_decoding, (target.path, answered)
    log = server.log()
    assert "Traceback" not in log
    assert not any(f"status={status.name}" in log for status in NEVER)


def test_streams_ending_inside_a_message_are_malformed_request(server: RunningServer) -> None:
    """A stream ending inside a message prefix, right after one or inside a message is refused."""
    with asyncio.Runner() as runner:
        catalog = runner.run(populate(server))
        channel = runner.run(raw_channel(server))
        try:
            statuses = {
                (target.path, ending): runner.run(end_inside_a_message(channel, target, ending))
                for target in targets(catalog)
                if target.path.endswith(CUT_SHORT_METHODS) and not target.before
                for ending in UNFINISHED_MESSAGES
            }
        finally:
            channel.close()
    assert set(statuses.values()) == {Status.INVALID_ARGUMENT}, statuses
    assert "Traceback" not in server.log()


async def end_inside_a_message(channel: Channel, target: Target, ending: bytes) -> Status:
    """Sends ``ending`` as the stream's raw DATA (through grpclib's protocol-level stream, as its
    client always frames whole messages), ends the stream, and returns the status answered."""
    try:
        async with channel.request(
            target.path,
            target.cardinality,
            bytes,
            bytes,
            timeout=CALL_TIMEOUT_SECONDS,
            metadata=target.metadata,
        ) as stream:
            await stream.send_request()
            assert stream._stream is not None
            await stream._stream.send_data(ending, end_stream=True)
            await stream.recv_message()
    except GRPCError as error:
        return error.status
    return Status.OK
