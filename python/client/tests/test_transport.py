"""Targets are parsed strictly, connections use TLS unless plaintext is asked for, and the
HTTP/2 layer is tuned for large transfers."""

import asyncio
import contextlib
import inspect
import os
import re
import ssl
import subprocess
import sys
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

import grpclib.stream
import pytest
from grpclib.const import Cardinality
from grpclib.protocol import Buffer, Connection, EventsProcessor, H2Protocol, Stream
from grpclib.testing import ChannelFor
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, RemoteSettingsChanged, StreamEnded, WindowUpdated
from h2.frame_buffer import FrameBuffer
from h2.settings import SettingCodes
from h2.stream import H2Stream
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    WindowUpdateFrame,
)

from modelcatalog import AsyncClient, ServerError, v1
from modelcatalog._transport import (
    CHUNK_SIZE,
    TunedChannel,
    open_channel,
    parse_target,
    tls_context,
)
from modelcatalog.wire import PacedBuffer, TunedConnection, TunedProtocol, Unjoined
from modelcatalog.wire._http2 import (
    COALESCE_BELOW_BYTES,
    GATHER_FROM_BYTES,
    CoalescingTransport,
    TunedFrameBuffer,
)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("models.example.com:443", ("models.example.com", 443)),
        ("[::1]:50051", ("::1", 50051)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_targets_split_into_host_and_port(target: str, expected: tuple[str, int]) -> None:
    """host:port and [ipv6]:port give the host without brackets and the port as an int."""
    assert parse_target(target) == expected


@pytest.mark.parametrize(
    "target",
    ["localhost", ":50051", "host:", "host:http", "host:0", "host:65536", "[::1]", "[::1:50051"],
)
def test_malformed_targets_are_refused(target: str) -> None:
    """A target without a host or a valid port raises ValueError."""
    with pytest.raises(ValueError, match="host:port"):
        parse_target(target)


def test_bare_ipv6_needs_brackets() -> None:
    """An IPv6 address without brackets is ambiguous and raises ValueError saying so."""
    with pytest.raises(ValueError, match="brackets"):
        parse_target("::1:50051")


def test_tls_context_verifies_and_speaks_h2_only_over_tls_1_2_or_later() -> None:
    """The default context checks the certificate and host name and refuses TLS < 1.2."""
    context = tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_missing_ca_cert_fails_at_once(tmp_path: Path) -> None:
    """A CA certificate path that does not exist raises before any connection is tried."""
    with pytest.raises(FileNotFoundError):
        tls_context(tmp_path / "missing-ca.pem")


def test_ca_cert_that_is_not_a_certificate_is_named(tmp_path: Path) -> None:
    """A CA file that holds no PEM certificate raises ValueError naming the file."""
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        tls_context(bad)


async def test_channels_ping_the_server_for_as_long_as_calls_last() -> None:
    """A channel pings each minute while calls run, even sending no data, and gives up in 20 s."""
    channel = open_channel("127.0.0.1:50051", insecure=True)
    config = channel._config
    channel.close()
    assert config._keepalive_time == 60
    assert config._keepalive_timeout == 20
    assert not config._keepalive_permit_without_calls  # idle connections stay quiet
    assert config._http2_max_pings_without_data == 0  # a download sends no data: no limit
    assert config._http2_min_sent_ping_interval_without_data < 60


def test_insecure_with_ca_cert_is_a_contradiction() -> None:
    """insecure=True with a ca_cert raises ValueError instead of silently dropping TLS."""
    with pytest.raises(ValueError, match="insecure"):
        open_channel("127.0.0.1:50051", ca_cert="ca.pem", insecure=True)


def test_chunk_size_is_one_mebibyte() -> None:
    """Streams move 1 MiB per message, the measured sweet spot."""
    assert CHUNK_SIZE == 1 << 20


async def test_close_leaves_a_borrowed_channel_open() -> None:
    """Closing a client from from_channel keeps the caller's channel usable."""
    async with ChannelFor([v1.AuthServiceBase()]) as channel:
        async with AsyncClient.from_channel(channel):
            pass
        with pytest.raises(ServerError, match="UNIMPLEMENTED"):
            await AsyncClient.from_channel(channel).get_current_user()


async def first_frames_of_the_sdk() -> tuple[dict[int, int], int]:
    """The SETTINGS and connection window a plaintext server reads from a new SDK connection."""
    received: asyncio.Queue[bytes] = asyncio.Queue()
    disconnected = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 16):
            received.put_nowait(data)
        writer.close()
        await writer.wait_closed()
        disconnected.set()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer = H2Connection(H2Configuration(client_side=False))
    peer.initiate_connection()
    settings: dict[int, int] = {}
    window = 0
    async with server:
        async with AsyncClient(f"127.0.0.1:{port}", insecure=True, timeout=10) as client:
            call = asyncio.create_task(client.get_current_user())
            while not (settings and window):
                for event in peer.receive_data(await asyncio.wait_for(received.get(), 10)):
                    if isinstance(event, RemoteSettingsChanged):
                        changed = event.changed_settings.items()
                        settings = {code: change.new_value for code, change in changed}
                    if isinstance(event, WindowUpdated) and event.stream_id == 0:
                        window = peer.outbound_flow_control_window
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
        await asyncio.wait_for(disconnected.wait(), 10)
    return settings, window


async def test_the_sdk_advertises_large_frames_and_bounded_windows() -> None:
    """A server may send the SDK DATA frames of 2 MiB (a 1 MiB chunk in one frame) and at most
    4 MiB it has not read, per stream and per connection: a slow download holds no more."""
    settings, window = await first_frames_of_the_sdk()
    assert settings[SettingCodes.MAX_FRAME_SIZE] == 2 << 20
    assert settings[SettingCodes.INITIAL_WINDOW_SIZE] == 4 << 20
    assert window == 4 << 20


@pytest.mark.parametrize("size", [0, 1, 10, 11, 16384, 1 << 20])
@pytest.mark.parametrize("pad_length", [None, 0, 3, 20])
def test_received_data_frames_show_as_hyperframe_shows_them(
    size: int, pad_length: int | None
) -> None:
    """The SDK reads DATA frames with a repr that reads exactly as hyperframe's (h2 formats one
    for every frame it receives) but does not hex-encode the whole body."""
    sdk = TunedConnection(
        H2Configuration(client_side=True),
        max_frame_size=2 << 20,
        stream_window=4 << 20,
        connection_window=4 << 20,
    )
    flags = ["PADDED"] if pad_length is not None else []
    frame = DataFrame(1, os.urandom(size), flags=flags, pad_length=pad_length or 0)
    sdk.incoming_buffer.add_data(frame.serialize())
    sdk.incoming_buffer.max_frame_size = sdk.max_inbound_frame_size
    received = next(sdk.incoming_buffer)
    assert type(received) is not DataFrame
    assert isinstance(received, DataFrame)
    assert repr(received) == repr(frame)
    assert sdk._frame_dispatch_table[type(received)] == sdk._receive_data_frame


@pytest.mark.parametrize("block_size", [2, 10, 11, 1200])
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("extra_flags", [[], ["PRIORITY"], ["PADDED"]])
def test_received_headers_frames_show_as_h2_shows_them(
    block_size: int, split: bool, extra_flags: list[str]
) -> None:
    """A HEADERS frame the SDK reads, whole or completed by a CONTINUATION frame, shows
    exactly as h2's own parser shows it, without hex-encoding the whole header block."""
    block = os.urandom(block_size)
    first, rest = (block[: block_size // 2], block[block_size // 2 :]) if split else (block, b"")
    flags = ["END_STREAM", *extra_flags, *([] if split else ["END_HEADERS"])]
    headers = HeadersFrame(1, first, flags=flags, pad_length=5 if "PADDED" in flags else 0)
    if "PRIORITY" in flags:
        headers.depends_on, headers.stream_weight, headers.exclusive = 3, 200, True
    wire = headers.serialize()
    if split:
        wire += ContinuationFrame(1, rest, flags=["END_HEADERS"]).serialize()
    sdk = TunedConnection(
        H2Configuration(client_side=True),
        max_frame_size=2 << 20,
        stream_window=4 << 20,
        connection_window=4 << 20,
    )
    (frame,) = _frames_read(sdk.incoming_buffer, wire)
    (read_by_h2,) = _frames_read(FrameBuffer(), wire)
    assert (repr(frame), frame.serialize()) == (repr(read_by_h2), read_by_h2.serialize())
    assert f"data=<hex:{block[:10].hex()}" in repr(frame)
    assert type(frame) is not HeadersFrame
    assert sdk._frame_dispatch_table[type(frame)] == sdk._receive_headers_frame


def _frames_read(buffer: FrameBuffer, piece: bytes) -> list[Frame]:
    """The frames ``buffer`` yields once ``piece`` has arrived (frames of up to 2 MiB)."""
    buffer.max_frame_size = 2 * MiB
    buffer.add_data(piece)
    return list(buffer)


_PAGE_FAULTS_OF_BUFFERS = """
import resource, sys
from modelcatalog._transport import reuse_transfer_buffers
if sys.argv[1] == "tuned":
    reuse_transfer_buffers()
def churn(rounds):
    buffers = [b"x" * (1 << 20) for _ in range(4)]
    for _ in range(rounds):
        buffers = [bytes(buffer) + b"." for buffer in buffers]
churn(10)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn(100)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults_of_buffers(mode: str) -> int:
    """Page faults while a warmed-up interpreter makes and frees 400 buffers of about 1 MiB."""
    result = subprocess.run(
        [sys.executable, "-c", _PAGE_FAULTS_OF_BUFFERS, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_transfer_buffers_reuse_freed_memory() -> None:
    """Once tuned, megabyte buffers made and freed in turn (as a transfer does) reuse memory
    instead of faulting in fresh pages from the system for each."""
    assert page_faults_of_buffers("tuned") * 20 < page_faults_of_buffers("default")


async def test_the_grpclib_and_h2_internals_the_tuning_relies_on_are_as_expected() -> None:
    """Each internal named in ``modelcatalog.wire._http2``'s docstring is still there and still
    behaves so; a grpclib or h2 upgrade that changes one fails here."""
    channel = open_channel("127.0.0.1:50051", insecure=True)
    try:
        protocol = channel._protocol_factory()
        assert isinstance(channel, TunedChannel)
        assert isinstance(protocol, TunedProtocol)
        assert protocol.config is channel._config
        assert protocol.h2_config is channel._h2_config
    finally:
        channel.close()
    # grpclib builds its connection the way TunedProtocol.connection_made does, and sends DATA
    # in frames as large as the peer allows.
    made = inspect.getsource(H2Protocol.connection_made)
    for step in ("Connection(", "self.connection.flush()", "self.connection.initialize()"):
        assert step in made
    assert "EventsProcessor(self.handler, self.connection)" in made
    assert "max_outbound_frame_size" in inspect.getsource(Stream.send_data)
    # Streams come from Connection.create_stream, get their buffer in init_stream, and are
    # released through a callback that acknowledges the buffer's unacked_size(); a read
    # acknowledges each DATA frame it moves into _acked, through the buffer's callback.
    assert "Stream(self, self._connection, self._transport" in inspect.getsource(
        Connection.create_stream
    )
    assert "self.buffer = Buffer(" in inspect.getsource(Stream.init_stream)
    assert "_stream.buffer.unacked_size()" in inspect.getsource(EventsProcessor.register)
    read = inspect.getsource(Buffer.read)
    assert "self._ack_callback(ack_size)" in read
    assert "self._acked_size" in read
    assert "self._acked.append(" in read
    # h2 reads frames through incoming_buffer, within max_inbound_frame_size, dispatching by
    # exact class; FrameBuffer passes each parsed frame through _update_header_buffer.
    receive = inspect.getsource(H2Connection.receive_data)
    assert "self.incoming_buffer.max_frame_size = self.max_inbound_frame_size" in receive
    assert "self._frame_dispatch_table[frame.__class__]" in inspect.getsource(
        H2Connection._receive_frame
    )
    assert "self._update_header_buffer(f)" in inspect.getsource(FrameBuffer.__next__)
    assert "_body_repr()" in inspect.getsource(Frame.__repr__)
    # grpclib prefixes the codec's result with bytes + (so Unjoined.__radd__ takes the prefix)
    # and hands it to Stream.send_data; h2 keeps a body that is not a memoryview as the
    # frame's data and serialises frames in _prepare_for_sending.
    prefixing = inspect.getsource(grpclib.stream.send_message)
    assert "+ reply_bin)" in prefixing
    assert "await stream.send_data(reply_data" in prefixing
    sending = inspect.getsource(H2Stream.send_data)
    assert "isinstance(data, memoryview)" in sending
    assert "df.data = data\n" in sending
    assert "self._prepare_for_sending(frames)" in inspect.getsource(H2Connection.send_data)


MiB = 1 << 20


async def test_reads_give_the_window_back_as_they_ask_for_bytes() -> None:
    """Reading a message's 5-byte prefix from a 2 MiB frame gives back 5 bytes of window, not
    2 MiB: bytes nobody asked for stay counted against the window. Reading the body gives
    back the rest, and a message larger than the 4 MiB window still completes."""
    acknowledged: list[int] = []
    window = 4 * MiB
    sent = 0
    opened = asyncio.Event()

    def acknowledge(size: int) -> None:
        acknowledged.append(size)
        opened.set()

    buffer = PacedBuffer(acknowledge)

    async def peer(total: int) -> None:
        nonlocal sent
        while sent < total:
            frame = min(2 * MiB, total - sent)
            while sent - sum(acknowledged) + frame > window:
                opened.clear()
                await opened.wait()
            buffer.add(b"m" * frame, frame)
            sent += frame

    sending = asyncio.create_task(peer(5 + 5 * MiB))
    assert len(await buffer.read(5)) == 5
    assert sum(acknowledged) == 5
    assert len(await buffer.read(5 * MiB)) == 5 * MiB
    await sending
    assert sum(acknowledged) == 5 + 5 * MiB


async def test_a_released_stream_gives_back_and_drops_what_it_held() -> None:
    """When grpclib releases a stream it acknowledges ``unacked_size()``: every byte still
    counted against the window, received or read into the buffer, and the buffer lets go of
    them (grpclib may keep the finished stream itself for a long time)."""
    acknowledged: list[int] = []
    buffer = PacedBuffer(acknowledged.append)
    buffer.add(b"p" * (2 * MiB), 2 * MiB)
    buffer.add(b"q" * MiB, MiB)
    await buffer.read(5)
    assert buffer.unacked_size() == 3 * MiB - 5
    assert buffer.unacked_size() == 0
    assert sum(acknowledged) == 5
    assert buffer._acked_size == 0
    assert not buffer._acked


class RecordingTransport(asyncio.Transport):
    """A transport that records what is written to it and whether it was closed; a
    ``writelines`` call is recorded as the list it got."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes | bytearray | memoryview | list[object]] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.writes.append(list(list_of_data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_small_writes_of_one_loop_turn_go_out_as_one_write_in_order() -> None:
    """HEADERS, DATA and trailers written in one turn reach the socket as one write."""
    recording = RecordingTransport()
    coalescing = CoalescingTransport(recording)
    for frame in (b"headers", b"data", b"trailers"):
        coalescing.write(frame)
    assert recording.writes == []
    await asyncio.sleep(0)
    assert recording.writes == [b"headersdatatrailers"]


async def test_a_large_write_goes_out_at_once_with_what_is_pending_and_is_not_copied() -> None:
    """A large DATA frame leaves in one call with the small writes pending before it (its
    frame header, joined into one), in order, not joined with them (no copy); alone, it is
    written as it is."""
    recording = RecordingTransport()
    coalescing = CoalescingTransport(recording)
    large = b"x" * COALESCE_BELOW_BYTES
    coalescing.write(b"header")
    coalescing.write(b"prefix")
    coalescing.write(large)
    assert recording.writes == [[b"headerprefix", large]]
    sent = recording.writes[0]
    assert isinstance(sent, list)
    assert sent[1] is large
    coalescing.write(large)
    assert recording.writes[1] is large
    await asyncio.sleep(0)
    assert len(recording.writes) == 2  # nothing was left pending


class JoiningTransport(RecordingTransport):
    """A transport whose ``writelines`` joins the list, as asyncio's default does."""

    writelines = asyncio.WriteTransport.writelines


async def test_a_transport_that_would_join_a_list_gets_the_large_write_on_its_own() -> None:
    """Where ``writelines`` would copy the body into one joined write (Python 3.11's plain
    TCP transport), the pending header goes out first and the body as it is."""
    recording = JoiningTransport()
    coalescing = CoalescingTransport(recording)
    large = b"x" * COALESCE_BELOW_BYTES
    coalescing.write(b"header")
    coalescing.write(large)
    assert recording.writes == [b"header", large]
    assert recording.writes[1] is large


async def test_a_closing_transport_takes_no_write_large_or_small() -> None:
    """Once the transport is closing, a frame's header (a small write) and its body (a large
    one) are both dropped: the peer never reads a body without its header."""
    recording = RecordingTransport()
    coalescing = CoalescingTransport(recording)
    recording.closed = True
    coalescing.write(b"header")
    coalescing.write(b"x" * COALESCE_BELOW_BYTES)
    await asyncio.sleep(0)
    assert recording.writes == []


async def test_closing_writes_what_is_pending_first_and_aborting_drops_it() -> None:
    """A GOAWAY written just before close reaches the peer; an abort sends nothing more."""
    recording = RecordingTransport()
    coalescing = CoalescingTransport(recording)
    coalescing.write(b"goaway")
    coalescing.close()
    assert recording.writes == [b"goaway"]
    assert recording.closed
    aborted = RecordingTransport()
    coalescing = CoalescingTransport(aborted)
    coalescing.write(b"frame")
    coalescing.abort()
    await asyncio.sleep(0)
    assert aborted.writes == []
    assert aborted.closed


async def test_tuned_connections_write_through_a_coalescing_transport() -> None:
    """The SDK's (and the server's) connections coalesce their writes."""
    channel = open_channel("127.0.0.1:50051", insecure=True)
    protocol = channel._protocol_factory()
    recording = RecordingTransport()
    protocol.connection_made(recording)
    assert isinstance(protocol.connection._transport, CoalescingTransport)
    await asyncio.sleep(0)
    assert len(recording.writes) == 1  # the preface and the first SETTINGS, in one write
    protocol.connection.close()
    channel.close()


def sdk_with_an_open_stream() -> TunedConnection:
    """An SDK connection past its SETTINGS exchange with a peer that takes 2 MiB frames and a
    4 MiB window, stream 1 open."""
    sdk = TunedConnection(
        H2Configuration(client_side=True),
        max_frame_size=2 * MiB,
        stream_window=4 * MiB,
        connection_window=4 * MiB,
    )
    sdk.initiate_connection()
    peer = H2Connection(H2Configuration(client_side=False))
    peer.initiate_connection()
    peer.update_settings(
        {SettingCodes.MAX_FRAME_SIZE: 2 * MiB, SettingCodes.INITIAL_WINDOW_SIZE: 4 * MiB}
    )
    peer.increment_flow_control_window(4 * MiB)
    peer.receive_data(sdk.data_to_send())
    sdk.receive_data(peer.data_to_send())
    request = [(":method", "POST"), (":scheme", "http"), (":path", "/x"), (":authority", "x")]
    sdk.send_headers(1, request)
    sdk.data_to_send()
    return sdk


@pytest.mark.parametrize("end_stream", [False, True])
@pytest.mark.parametrize("sizes", [[0], [5, 0], [5, 1], [5, 3, MiB], [5, 2 * MiB - 5]])
def test_a_data_frame_sent_unjoined_is_the_bytes_h2_sends(
    sizes: list[int], end_stream: bool
) -> None:
    """A DATA frame whose body is written as its parts reads, byte for byte, as the frame h2
    serialises (after whatever h2 had queued: here a PING), leaves the stream and the windows
    as h2 leaves them, and does not copy its parts."""
    parts = [os.urandom(size) for size in sizes]
    by_h2, unjoined = sdk_with_an_open_stream(), sdk_with_an_open_stream()
    for connection in (by_h2, unjoined):
        connection.ping(b"8 bytes!")
    by_h2.send_data(1, b"".join(parts), end_stream=end_stream)
    pieces = unjoined.send_data_unjoined(1, Unjoined(parts), end_stream)
    assert b"".join(pieces) == by_h2.data_to_send()
    assert all(any(piece is part for piece in pieces) for part in parts if part)
    assert unjoined.data_to_send() == b""
    assert unjoined.local_flow_control_window(1) == by_h2.local_flow_control_window(1)
    assert unjoined.outbound_flow_control_window == by_h2.outbound_flow_control_window
    assert unjoined.streams[1].state_machine.state == by_h2.streams[1].state_machine.state


async def test_a_message_goes_out_in_frames_within_the_peers_frame_size_and_window() -> None:
    """Sent to a peer that keeps HTTP/2's defaults (16 KiB frames, 64 KiB windows), a 300 KiB
    upload chunk goes out in frames no larger than 16 KiB, pausing until the peer opens the
    window, and arrives as the prefixed message, byte for byte."""
    received = bytearray()
    frame_sizes: list[int] = []
    ended, disconnected = asyncio.Event(), asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        h2 = H2Connection(H2Configuration(client_side=False))
        h2.initiate_connection()
        writer.write(h2.data_to_send())
        while data := await reader.read(1 << 16):
            for event in h2.receive_data(data):
                if isinstance(event, DataReceived):
                    received.extend(event.data)
                    frame_sizes.append(len(event.data))
                    h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if isinstance(event, StreamEnded):
                    ended.set()
            writer.write(h2.data_to_send())
        writer.close()
        await writer.wait_closed()
        disconnected.set()

    message = v1.UploadModelVersionRequest(chunk=os.urandom(300 * 1024))
    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        channel = open_channel(f"127.0.0.1:{port}", insecure=True)
        try:
            call = channel.request(
                "/modelcatalog.v1.ModelService/UploadModelVersion",
                Cardinality.STREAM_UNARY,
                v1.UploadModelVersionRequest,
                v1.UploadModelVersionResponse,
            )
            async with call as stream:
                await stream.send_message(message, end=True)
                await asyncio.wait_for(ended.wait(), 10)
                await stream.cancel()
        finally:
            channel.close()
        await asyncio.wait_for(disconnected.wait(), 10)
    encoded = bytes(message)
    assert bytes(received) == b"\0" + len(encoded).to_bytes(4, "big") + encoded
    assert max(frame_sizes) == 16384
    assert len(frame_sizes) >= len(encoded) // 16384


def test_an_unjoined_message_reads_as_its_joined_parts() -> None:
    """``prefix + Unjoined`` (as grpclib prefixes a message) keeps the parts, prefix first."""
    chunk = os.urandom(100)
    message = b"\0\0\0\0\x66" + Unjoined([b"\x12\x64", chunk])
    assert isinstance(message, Unjoined)
    assert len(message) == 107
    assert message.parts[2] is chunk
    assert bytes(message) == b"\0\0\0\0\x66\x12\x64" + chunk


def frames_on_the_wire() -> list[Frame]:
    """Frames as a server receives them: large and small DATA frames (one padded, one ending
    its stream), a PING and a WINDOW_UPDATE between them."""
    large = DataFrame(1, os.urandom(300 * 1024))
    padded = DataFrame(3, os.urandom(100 * 1024), flags=["PADDED"], pad_length=7)
    ending = DataFrame(1, os.urandom(GATHER_FROM_BYTES), flags=["END_STREAM"])
    return [
        large,
        DataFrame(3, b"small"),
        PingFrame(0, b"8 bytes!"),
        padded,
        WindowUpdateFrame(0, window_increment=1000),
        ending,
        DataFrame(5, os.urandom(GATHER_FROM_BYTES - 1)),
    ]


def parsed(buffer: FrameBuffer, pieces: list[bytes]) -> list[tuple[str, bytes]]:
    return [
        (repr(frame), frame.serialize())
        for piece in pieces
        for frame in _frames_read(buffer, piece)
    ]


@pytest.mark.parametrize("piece_size", [1000, 16384, 65536, 256 * 1024, 4 * MiB])
def test_frames_read_in_pieces_are_the_frames_h2_reads(piece_size: int) -> None:
    """However the bytes arrive, the tuned frame buffer yields the frames h2's yields, in the
    same order and at the same moments: large DATA frames gathered piece by piece, the rest
    parsed by h2."""
    wire = b"".join(frame.serialize() for frame in frames_on_the_wire())
    pieces = [wire[at : at + piece_size] for at in range(0, len(wire), piece_size)]
    assert parsed(TunedFrameBuffer(), pieces) == parsed(FrameBuffer(), pieces)


def test_a_large_data_frame_is_copied_once() -> None:
    """A 1 MiB DATA frame arriving in 64 KiB pieces is joined once: the frame buffer holds
    about one copy of it at its peak, where h2's held three."""
    frame = DataFrame(1, os.urandom(MiB)).serialize()
    pieces = [frame[at : at + 65536] for at in range(0, len(frame), 65536)]

    def peak_while_parsing(buffer: FrameBuffer) -> int:
        buffer.max_frame_size = 2 * MiB
        tracemalloc.start()
        try:
            for piece in pieces:
                buffer.add_data(piece)
                list(buffer)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak_while_parsing(TunedFrameBuffer()) < 1.2 * MiB
    assert peak_while_parsing(FrameBuffer()) > 2 * MiB


def test_a_data_frame_trickled_in_tiny_pieces_holds_no_more_than_its_size() -> None:
    """A peer that sends a large DATA frame a few bytes at a time does not make the buffer
    keep an object per piece: what it holds stays within about twice the frame."""
    frame = DataFrame(1, os.urandom(GATHER_FROM_BYTES)).serialize()
    buffer = TunedFrameBuffer()
    buffer.max_frame_size = 2 * MiB
    tracemalloc.start()
    try:
        for at in range(0, len(frame) - 7, 7):
            buffer.add_data(frame[at : at + 7])
            assert not list(buffer)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 2 * GATHER_FROM_BYTES
    buffer.add_data(frame[at + 7 :])
    (received,) = list(buffer)
    assert received.serialize() == frame
