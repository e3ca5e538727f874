"""Request guards: slow, silent and memory-hungry request streams are refused before handlers."""

from __future__ import annotations

import dataclasses
import time

import pytest
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError
from server_testing import Api, channel_for

from modelcatalog import v1
from modelcatalog_server.app import build_application
from modelcatalog_server.config import Settings
from modelcatalog_server.transport import RequestGuards, TransportLimits
from modelcatalog_server.transport._guards import Buffers


@dataclasses.dataclass
class Refusal:
    status: Status
    reason: str
    seconds: float


async def send_raw(channel: Channel, path: str, body: bytes, *, end: bool) -> None:
    """Sends ``body`` as the request stream of ``path``, as is, and reads the answer."""
    async with channel.request(
        path, Cardinality.STREAM_UNARY, v1.SignInRequest, v1.SignInResponse
    ) as stream:
        await stream.send_request()
        if body:
            await stream._stream.send_data(body)
        if end:
            await stream.end()
        await stream.recv_message()


async def trickle_upload(channel: Channel, token: str, model_id: str) -> None:
    """An upload that sends its header and 1000 bytes, then nothing more."""
    async with channel.request(
        "/modelcatalog.v1.ModelService/UploadModelVersion",
        Cardinality.STREAM_UNARY,
        v1.UploadModelVersionRequest,
        v1.UploadModelVersionResponse,
        metadata={"authorization": f"Bearer {token}"},
    ) as stream:
        header = v1.UploadModelVersionHeader(model_id=model_id, file_name="f.bin")
        await stream.send_message(v1.UploadModelVersionRequest(header=header))
        await stream.send_message(v1.UploadModelVersionRequest(chunk=b"x" * 1000))
        await stream.recv_message()


async def raw_call(settings: Settings, path: str, body: bytes, *, end: bool) -> Refusal:
    """Opens ``path`` on a server built from ``settings``, sends ``body`` and waits for its end."""
    async with build_application(settings) as app, channel_for(app) as channel:
        started = time.monotonic()
        with pytest.raises(GRPCError) as caught:
            await send_raw(channel, path, body, end=end)
    error = caught.value
    infos = [d for d in error.details or [] if isinstance(d, ErrorInfo)]
    return Refusal(error.status, infos[0].reason, time.monotonic() - started)


async def test_a_request_message_that_never_arrives_times_out(settings: Settings) -> None:
    """A unary call that sends headers and nothing else ends DEADLINE_EXCEEDED in time."""
    quick = dataclasses.replace(settings, request_timeout=1)
    refusal = await raw_call(quick, "/modelcatalog.v1.AuthService/SignIn", b"", end=False)
    assert (refusal.status, refusal.reason) == (Status.DEADLINE_EXCEEDED, "REQUEST_TIMEOUT")
    assert refusal.seconds < 5


async def test_a_half_sent_request_message_times_out(settings: Settings) -> None:
    """A message prefix without its body does not hold the call open past the timeout."""
    quick = dataclasses.replace(settings, request_timeout=1)
    prefix_of_100_bytes = b"\x00\x00\x00\x00\x64ab"
    refusal = await raw_call(
        quick, "/modelcatalog.v1.AuthService/SignIn", prefix_of_100_bytes, end=False
    )
    assert (refusal.status, refusal.reason) == (Status.DEADLINE_EXCEEDED, "REQUEST_TIMEOUT")


@pytest.mark.alone("bounds the time to the abandonment")
async def test_an_upload_that_stops_making_progress_is_abandoned(settings: Settings) -> None:
    """After its header, an upload delivering less than the minimum per window is stopped."""
    slow = dataclasses.replace(settings, upload_progress_window=1, upload_min_bytes=1 << 20)
    async with build_application(slow) as app, channel_for(app) as channel:
        api = Api(channel)
        alice = await api.caller("alice")
        folder = (await alice.folders.create_folder(v1.CreateFolderRequest("f"))).folder
        model = (await alice.models.create_model(v1.CreateModelRequest(folder.id, "m"))).model
        started = time.monotonic()
        with pytest.raises(GRPCError) as caught:
            await trickle_upload(channel, alice.token, model.id)
        assert caught.value.status == Status.DEADLINE_EXCEEDED
        assert "less than the minimum" in (caught.value.message or "")
        assert time.monotonic() - started < 5
        assert not list((slow.data_dir / "blobs" / "sha256").rglob("*"))


async def test_messages_beyond_the_buffer_budget_are_refused(settings: Settings) -> None:
    """A message that does not fit the server's buffer budget is refused before it is read."""
    small = dataclasses.replace(settings, server_buffer_limit=1 << 20)
    declares_2_mib = b"\x00\x00\x20\x00\x00" + b"x" * 100
    refusal = await raw_call(small, "/modelcatalog.v1.AuthService/SignIn", declares_2_mib, end=True)
    assert (refusal.status, refusal.reason) == (Status.RESOURCE_EXHAUSTED, "OVERLOADED")


def test_buffers_draw_on_their_parent_and_return_what_they_took() -> None:
    """A connection's reservation also counts against the server; release gives both back."""
    server = Buffers(100)
    first, second = Buffers(80, server), Buffers(80, server)
    assert first.try_reserve(60)
    assert not second.try_reserve(60)  # the server has only 40 left
    assert not first.try_reserve(30)  # the connection has only 20 left
    first.release(60)
    assert second.try_reserve(60)
    assert (server.reserved, first.reserved, second.reserved) == (60, 0, 60)


async def test_guards_apply_to_every_method(settings: Settings) -> None:
    """Every method a server answers goes through the guards, health and reflection included."""
    async with build_application(settings) as app:
        guarded = RequestGuards(TransportLimits()).apply(app.services)
        methods = {name for service in guarded for name in service.__mapping__()}
        assert "/grpc.health.v1.Health/Check" in methods
        assert "/modelcatalog.v1.ModelService/UploadModelVersion" in methods
