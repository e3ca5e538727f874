"""The real server and the SDK move bulk bytes in large HTTP/2 frames within bounded windows,
on the event loop the server was told to use; a grpcio client's upload in small frames is
served too."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import RemoteSettingsChanged, WindowUpdated
from h2.settings import SettingCodes
from hyperframe.frame import DataFrame, Frame

from modelcatalog import AsyncClient
from modelcatalog.v1 import model_service_pb2, model_service_pb2_grpc
from modelcatalog.wire import TunedConnection, TunedFrameBuffer

from .conftest import RunningServer, start_server

MiB = 1 << 20
READ_SECONDS = 10.0


async def first_frames_of(server: RunningServer) -> tuple[dict[int, int], int]:
    """The SETTINGS and the connection window a raw HTTP/2 client reads from the server."""
    reader, writer = await asyncio.open_connection(
        server.host, server.port, ssl=server.tls_context(), server_hostname=server.host
    )
    client = H2Connection(H2Configuration(client_side=True))
    client.initiate_connection()
    writer.write(client.data_to_send())
    settings: dict[int, int] = {}
    window = 0
    try:
        while not (settings and window):
            data = await asyncio.wait_for(reader.read(1 << 16), READ_SECONDS)
            assert data, "the server closed the connection"
            for event in client.receive_data(data):
                if isinstance(event, RemoteSettingsChanged):
                    changed = event.changed_settings.items()
                    settings = {code: change.new_value for code, change in changed}
                if isinstance(event, WindowUpdated) and event.stream_id == 0:
                    window = client.outbound_flow_control_window
    finally:
        writer.close()
    return settings, window


@pytest.mark.parametrize(
    ("flags", "frame", "stream_window", "connection_window"),
    [
        ((), 2 * MiB, 4 * MiB, 4 * MiB),
        (
            (
                "--http2-max-frame-size",
                "256K",
                "--http2-stream-window",
                "1M",
                "--http2-connection-window",
                "8M",
            ),
            256 << 10,
            1 * MiB,
            8 * MiB,
        ),
    ],
    ids=["defaults", "flags"],
)
async def test_the_server_advertises_its_frame_size_and_windows(
    tmp_path: Path,
    signing_key: Path,
    flags: tuple[str, ...],
    frame: int,
    stream_window: int,
    connection_window: int,
) -> None:
    """A client reads the largest DATA frame it may send and how much it may send unread, per
    stream and per connection, from the server's first frames; the flags change them."""
    server = start_server(tmp_path, *flags, signing_key=signing_key)
    try:
        settings, window = await first_frames_of(server)
    finally:
        assert server.stop() == 0, server.log()
    assert settings[SettingCodes.MAX_FRAME_SIZE] == frame
    assert settings[SettingCodes.INITIAL_WINDOW_SIZE] == stream_window
    assert window == connection_window


@pytest.fixture
def data_frames(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """The sizes of the DATA frames the SDK sends and receives while the test runs."""
    sent: list[int] = []
    received: list[int] = []
    send_data = TunedConnection.send_data
    update_header_buffer = TunedFrameBuffer._update_header_buffer

    def recording_send_data(
        self: TunedConnection,
        stream_id: int,
        data: bytes | memoryview,
        end_stream: bool = False,
        pad_length: int | None = None,
    ) -> None:
        sent.append(len(data))
        send_data(self, stream_id, data, end_stream=end_stream, pad_length=pad_length)

    def recording_update(self: TunedFrameBuffer, frame: Frame | None) -> Frame | None:
        if isinstance(frame, DataFrame):
            received.append(len(frame.data))
        return update_header_buffer(self, frame)

    monkeypatch.setattr(TunedConnection, "send_data", recording_send_data)
    monkeypatch.setattr(TunedFrameBuffer, "_update_header_buffer", recording_update)
    return sent, received


async def test_uploads_and_downloads_move_a_chunk_per_frame(
    server: RunningServer, tmp_path: Path, data_frames: tuple[list[int], list[int]]
) -> None:
    """Each 1 MiB chunk of a file goes up and comes back down in one DATA frame, not in 64
    frames of HTTP/2's default 16 KiB."""
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(6 * MiB))
    async with AsyncClient(server.address, ca_cert=server.ca_cert) as client:
        await client.sign_up("alice", "correct horse battery")
        await client.sign_in("alice", "correct horse battery")
        folder = await client.create_folder("vision")
        model = await client.create_model(folder.id, "resnet")
        await client.upload(model.id, source)
        await client.download(model.id, 1, tmp_path / "downloaded.bin")
    assert (tmp_path / "downloaded.bin").read_bytes() == source.read_bytes()
    sent, received = data_frames
    assert sum(size > MiB for size in sent) >= 3
    assert sum(size > MiB for size in received) >= 3


#: A grpcio upload with frames of HTTP/2's default size: each 32 KiB chunk goes as two full
#: frames and a short frame with its last bytes, many more such tails in a second than the
#: server's budget of short frames would take if they were counted.
GRPCIO_CHUNKS = 600
GRPCIO_CHUNK_BYTES = 32 << 10


async def test_a_grpcio_upload_of_many_chunks_is_not_taken_for_a_flood(
    tmp_path: Path, signing_key: Path
) -> None:
    """grpcio cuts each chunk message into frames of the size the server allows and sends its
    last bytes in a short frame of their own: an upload of many chunks is stored, not ended
    as a flood of short frames."""
    server = start_server(tmp_path, "--http2-max-frame-size", "16K", signing_key=signing_key)
    try:
        async with AsyncClient(server.address, ca_cert=server.ca_cert) as client:
            await client.sign_up("alice", "correct horse battery")
            token = (await client.sign_in("alice", "correct horse battery")).access_token
            folder = await client.create_folder("vision")
            model = await client.create_model(folder.id, "resnet")
        chunk = os.urandom(GRPCIO_CHUNK_BYTES)
        header = model_service_pb2.UploadModelVersionHeader(
            model_id=model.id,
            file_name="weights.bin",
            size_bytes=GRPCIO_CHUNKS * GRPCIO_CHUNK_BYTES,
            sha256=hashlib.sha256(chunk * GRPCIO_CHUNKS).hexdigest(),
        )
        requests = [model_service_pb2.UploadModelVersionRequest(header=header)]
        requests += [model_service_pb2.UploadModelVersionRequest(chunk=chunk)] * GRPCIO_CHUNKS
        credentials = grpc.ssl_channel_credentials(server.ca_cert.read_bytes())
        async with grpc.aio.secure_channel(server.address, credentials) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            response = await stub.UploadModelVersion(
                iter(requests), metadata=[("authorization", f"Bearer {token}")], timeout=60
            )
    finally:
        assert server.stop() == 0, server.log()
    assert response.version.sha256 == header.sha256


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_server_runs_on_the_event_loop_it_is_told_to(
    tmp_path: Path, signing_key: Path, loop: str
) -> None:
    """uvloop by default, asyncio with --event-loop asyncio: the log says which, and either
    serves calls and stops cleanly on SIGTERM."""
    flags = () if loop == "uvloop" else ("--event-loop", "asyncio")
    server = start_server(tmp_path, *flags, signing_key=signing_key)
    try:
        credentials = grpc.ssl_channel_credentials(server.ca_cert.read_bytes())
        with grpc.secure_channel(server.address, credentials) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=READ_SECONDS
            )
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert server.stop() == 0, server.log()
    assert f"event loop {loop}" in server.log()
