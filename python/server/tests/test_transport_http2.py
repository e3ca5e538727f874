"""The guarded HTTP/2 connection: floods end the connection, a client's normal traffic does not."""

from __future__ import annotations

import os
from typing import cast

import pytest
from google.rpc.error_details_pb2 import ErrorInfo
from grpclib.const import Handler, Status
from grpclib.exceptions import GRPCError
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    ResponseReceived,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
)

from modelcatalog.wire import PacedBuffer
from modelcatalog_server.transport import RateLimit, TransportLimits
from modelcatalog_server.transport._http2 import (
    _NOT_GRPC,
    ENCODER_TABLE_BYTES,
    MAX_HEADER_LIST_BYTES,
    GuardedConnection,
    _header_problem,
)

REQUEST = [
    (":method", "POST"),
    (":scheme", "https"),
    (":path", "/grpc.health.v1.Health/Check"),
    (":authority", "localhost"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
]


def pair(limits: TransportLimits) -> tuple[H2Connection, GuardedConnection]:
    """A client and a guarded server connection that have exchanged their prefaces."""
    client = H2Connection(H2Configuration(client_side=True))
    server = GuardedConnection(H2Configuration(client_side=False), limits)
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    return client, server


def test_a_ping_flood_ends_the_connection_with_enhance_your_calm() -> None:
    """Past the PING burst, the server raises and queues GOAWAY(ENHANCE_YOUR_CALM)."""
    client, server = pair(TransportLimits())
    for _ in range(TransportLimits().pings.burst + 10):
        client.ping(os.urandom(8))
    with pytest.raises(ProtocolError):
        server.receive_data(client.data_to_send())
    events = client.receive_data(server.data_to_send())
    assert [e.error_code for e in events if isinstance(e, ConnectionTerminated)] == [
        ErrorCodes.ENHANCE_YOUR_CALM
    ]


def _serialized(frame: Frame, count: int) -> bytes:
    return frame.serialize() * count


@pytest.mark.parametrize(
    ("flood", "limit"),
    [
        (PingFrame(0, b"8 bytes!", flags=["ACK"]), "pings"),
        (SettingsFrame(0, flags=["ACK"]), "settings"),
        (ExtensionFrame(0xFA, 0, 0, b""), "empty_data"),
    ],
    ids=["ping-ack", "settings-ack", "unknown-type"],
)
def test_floods_of_frames_that_ask_for_nothing_end_the_connection(flood: Frame, limit: str) -> None:
    """Unsolicited PING and SETTINGS acknowledgements and frames of undefined types draw on
    the frame-rate limits too: a flood of them ends the connection with ENHANCE_YOUR_CALM
    instead of keeping the event loop busy."""
    client, server = pair(TransportLimits())
    burst = getattr(TransportLimits(), limit).burst
    with pytest.raises(ProtocolError):
        server.receive_data(_serialized(flood, burst + 10))
    assert goaway_code(client, server) == ErrorCodes.ENHANCE_YOUR_CALM


def test_short_data_frames_on_a_closed_stream_are_a_flood() -> None:
    """1-byte DATA frames on a stream the server closed, each of which h2 answers with a
    RST_STREAM, end the connection past the burst; the few a client has in flight when the
    server ends its call do not."""
    client, server = pair(TransportLimits())
    client.send_headers(1, REQUEST)
    server.receive_data(client.data_to_send())
    server.reset_stream(1, ErrorCodes.CANCEL)
    client.receive_data(server.data_to_send())
    in_flight = DataFrame(1, b"m" * (1 << 14)).serialize() * 8 + DataFrame(1, b"t").serialize()
    server.receive_data(in_flight)
    flood = DataFrame(1, b"x").serialize() * (TransportLimits().empty_data.burst + 10)
    with pytest.raises(ProtocolError):
        server.receive_data(flood)
    assert goaway_code(client, server) == ErrorCodes.ENHANCE_YOUR_CALM


def test_a_message_sent_a_byte_a_frame_ends_the_connection() -> None:
    """1-byte DATA frames on an open stream (a message trickled a byte per frame, each costing
    the server a frame's work) end the connection past the burst."""
    client, server = pair(TransportLimits())
    client.send_headers(1, REQUEST)
    server.receive_data(client.data_to_send())
    trickle = DataFrame(1, b"x").serialize() * (TransportLimits().empty_data.burst + 10)
    with pytest.raises(ProtocolError):
        server.receive_data(trickle)
    assert goaway_code(client, server) == ErrorCodes.ENHANCE_YOUR_CALM


def test_many_small_calls_are_not_a_flood() -> None:
    """A client that sends each small request in its own frame and ends the stream with an
    empty one (as some clients do), call after call, is served on: each call earns its
    frames."""
    client, server = pair(TransportLimits())
    for number in range(3 * TransportLimits().empty_data.burst):
        stream_id = 2 * number + 1
        client.send_headers(stream_id, REQUEST)
        client.send_data(stream_id, b"\0\0\0\0\0")
        client.send_data(stream_id, b"", end_stream=True)
        server.receive_data(client.data_to_send())
        server.send_headers(stream_id, [(":status", "200")], end_stream=True)
        client.receive_data(server.data_to_send())


def test_message_tails_in_frames_of_their_own_are_not_a_flood() -> None:
    """A long upload whose every message ends in a short frame of its own after full ones
    (gRPC's C and Go clients send a 1 MiB chunk as 16 KiB frames and its last bytes alone) is
    served on, however many messages it sends."""
    client, server = pair(TransportLimits())
    client.send_headers(1, REQUEST)
    server.receive_data(client.data_to_send())
    for _ in range(3 * TransportLimits().empty_data.burst):
        client.send_data(1, b"m" * (1 << 14))
        client.send_data(1, b"tail")
        for event in server.receive_data(client.data_to_send()):
            if isinstance(event, DataReceived):
                server.acknowledge_received_data(event.flow_controlled_length, 1)
        client.receive_data(server.data_to_send())


def test_headers_on_a_closed_stream_are_a_flood_and_earn_nothing() -> None:
    """HEADERS frames on a stream the server reset start no call (h2 answers each with a
    RST_STREAM): past the burst they end the connection, and they earn no short DATA frames,
    which only a HEADERS frame that opens a stream does."""
    client, server = pair(TransportLimits())
    client.send_headers(1, REQUEST)
    server.receive_data(client.data_to_send())
    server.reset_stream(1, ErrorCodes.CANCEL)
    client.receive_data(server.data_to_send())
    client.send_headers(3, REQUEST)  # opening it, h2 forgets the closed stream 1
    server.receive_data(client.data_to_send())
    on_closed = HeadersFrame(1, b"", flags=["END_HEADERS"]).serialize()
    trickle = DataFrame(3, b"x").serialize()
    with pytest.raises(ProtocolError):
        server.receive_data((on_closed + trickle * 2) * TransportLimits().empty_data.burst)
    assert goaway_code(client, server) == ErrorCodes.ENHANCE_YOUR_CALM


def test_a_closed_stream_takes_no_more_data_than_its_window() -> None:
    """Full-size DATA frames on a closed stream, for which h2 gives back the connection's
    window each time, end the connection once they exceed what the stream's window allowed;
    up to that (what a client may have had in flight) they are taken."""
    limits = TransportLimits()
    client, server = pair(limits)
    client.send_headers(1, REQUEST)
    server.receive_data(client.data_to_send())
    server.reset_stream(1, ErrorCodes.CANCEL)
    client.receive_data(server.data_to_send())
    frame = DataFrame(1, b"m" * (1 << 20)).serialize()
    server.receive_data(frame * (limits.stream_window_bytes >> 20))
    with pytest.raises(ProtocolError):
        server.receive_data(frame)
    assert goaway_code(client, server) == ErrorCodes.ENHANCE_YOUR_CALM


def test_the_encoder_keeps_a_small_table_whatever_the_client_allows() -> None:
    """A client's huge SETTINGS_HEADER_TABLE_SIZE leaves the server's HPACK encoder at
    HTTP/2's default 4 KiB, announced to the client, which still decodes every answer."""
    client, server = pair(TransportLimits())
    client.update_settings({SettingCodes.HEADER_TABLE_SIZE: 2**32 - 1})
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert server.encoder.header_table_size == ENCODER_TABLE_BYTES
    answered = []
    for number in range(60):
        stream_id = 2 * number + 1
        client.send_headers(stream_id, REQUEST, end_stream=True)
        server.receive_data(client.data_to_send())
        answer = [(":status", "200"), (f"x-answer-{number}", "v" * 100)]
        server.send_headers(stream_id, answer, end_stream=True)
        events = client.receive_data(server.data_to_send())
        answered += [e for e in events if isinstance(e, ResponseReceived)]
        kept = server.encoder.header_table.dynamic_entries
        assert sum(32 + len(name) + len(value) for name, value in kept) <= ENCODER_TABLE_BYTES
    assert len(answered) == 60


def test_request_headers_above_the_advertised_list_size_end_the_connection() -> None:
    """The server advertises a 16 KiB header list, not h2's 64 KiB: a client whose headers
    inflate past it loses the connection before the server holds them for a call."""
    client, server = pair(TransportLimits())
    assert server.local_settings.max_header_list_size == MAX_HEADER_LIST_BYTES
    client.send_headers(1, [*REQUEST, ("x-padding", "p" * MAX_HEADER_LIST_BYTES)])
    with pytest.raises(ProtocolError):
        server.receive_data(client.data_to_send())


def test_pings_that_answer_the_servers_data_are_not_a_flood() -> None:
    """A client pinging with every DATA frame it receives (grpc-go, grpcio) is served on."""
    client, server = pair(TransportLimits())
    client.send_headers(1, REQUEST)
    server.receive_data(client.data_to_send())
    server.send_headers(1, [(":status", "200")])
    for _ in range(3 * TransportLimits().pings.burst):
        server.send_data(1, b"x" * 100)
        client.receive_data(server.data_to_send())
        client.ping(os.urandom(8))
        server.receive_data(client.data_to_send())


def test_window_updates_answering_a_large_frame_in_small_steps_are_not_a_flood() -> None:
    """A client that acknowledges a 2 MiB DATA frame 16 KiB at a time (as it would have
    acknowledged frames of HTTP/2's default size) sends no flood, even with a tiny budget."""
    tiny = RateLimit(burst=1, per_second=0.01)
    client, server = pair(TransportLimits(window_and_priority=tiny))
    client.update_settings(
        {SettingCodes.INITIAL_WINDOW_SIZE: 4 << 20, SettingCodes.MAX_FRAME_SIZE: 2 << 20}
    )
    client.increment_flow_control_window(4 << 20)
    client.send_headers(1, REQUEST)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())  # the server acknowledged the settings
    server.send_headers(1, [(":status", "200")])
    server.send_data(1, b"x" * (2 << 20))
    client.receive_data(server.data_to_send())
    for _ in range(128):
        client.increment_flow_control_window(1 << 14)
    server.receive_data(client.data_to_send())


def test_the_stream_above_the_cap_is_refused_and_the_connection_lives() -> None:
    """The 3rd stream under a cap of 2 gets REFUSED_STREAM; the first two stay open.

    The client sends its streams before it has read the server's SETTINGS, as any client may.
    """
    client = H2Connection(H2Configuration(client_side=True))
    server = GuardedConnection(
        H2Configuration(client_side=False), TransportLimits(max_concurrent_streams=2)
    )
    client.initiate_connection()
    server.initiate_connection()
    for stream_id in (1, 3, 5):
        client.send_headers(stream_id, REQUEST)
    requests = server.receive_data(client.data_to_send())
    assert [e.stream_id for e in requests if isinstance(e, RequestReceived)] == [1, 3]
    events = client.receive_data(server.data_to_send())
    resets = [(e.stream_id, e.error_code) for e in events if isinstance(e, StreamReset)]
    assert resets == [(5, ErrorCodes.REFUSED_STREAM)]
    assert server.open_inbound_streams == 2
    server.reset_stream(1)
    client.receive_data(server.data_to_send())
    client.send_headers(7, REQUEST)  # HPACK and stream ids stayed in step
    again = server.receive_data(client.data_to_send())
    assert [e.stream_id for e in again if isinstance(e, RequestReceived)] == [7]


def test_a_non_ascii_header_value_resets_only_its_stream() -> None:
    """A header value that is not ASCII is a stream error, not the end of the connection."""
    client = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
    server = GuardedConnection(
        H2Configuration(client_side=False, header_encoding="ascii"), TransportLimits()
    )
    client.initiate_connection()
    server.initiate_connection()
    client.send_headers(1, [*REQUEST, ("x-name", "h\u00e9llo")])
    client.send_headers(3, REQUEST)
    events = server.receive_data(client.data_to_send())
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [3]
    answered = client.receive_data(server.data_to_send())
    assert [(e.stream_id, e.error_code) for e in answered if isinstance(e, StreamReset)] == [
        (1, ErrorCodes.PROTOCOL_ERROR)
    ]


def test_a_call_whose_deadline_already_passed_is_answered_without_a_handler() -> None:
    """grpc-timeout of 1 ns: DEADLINE_EXCEEDED with a declared reason, not UNKNOWN."""
    mapping = {"/grpc.health.v1.Health/Check": cast(Handler, None)}
    problem = _header_problem([*REQUEST, ("grpc-timeout", "1n")], mapping)
    assert isinstance(problem, GRPCError)
    assert problem.status == Status.DEADLINE_EXCEEDED
    assert [d.reason for d in problem.details or [] if isinstance(d, ErrorInfo)] == [
        "CALL_DEADLINE_EXCEEDED"
    ]
    assert _header_problem([*REQUEST, ("grpc-timeout", "5S")], mapping) is None


@pytest.mark.parametrize("size", [0, 1, 10, 11, 16384])
@pytest.mark.parametrize("pad_length", [None, 0, 3, 20])
def test_received_data_frames_show_as_hyperframe_shows_them(
    size: int, pad_length: int | None
) -> None:
    """The cheap repr of received DATA frames is active and reads exactly as hyperframe's."""
    client, server = pair(TransportLimits())
    client.send_headers(1, REQUEST)
    server.receive_data(client.data_to_send())
    flags = ["PADDED"] if pad_length is not None else []
    frame = DataFrame(1, os.urandom(size), flags=flags, pad_length=pad_length or 0)
    server.incoming_buffer.add_data(frame.serialize())
    server.incoming_buffer.max_frame_size = 1 << 20
    received = next(server.incoming_buffer)
    assert type(received) is not DataFrame
    assert isinstance(received, DataFrame)
    assert repr(received) == repr(frame)


def test_received_data_reaches_the_stream() -> None:
    """DATA frames with the cheap repr are still dispatched as DATA: the bytes arrive."""
    client, server = pair(TransportLimits())
    client.send_headers(1, REQUEST)
    client.send_data(1, b"weights", end_stream=True)
    events = server.receive_data(client.data_to_send())
    assert [e.data for e in events if isinstance(e, DataReceived)] == [b"weights"]


def test_a_call_without_te_trailers_is_malformed_not_unknown() -> None:
    """gRPC requires 'te: trailers'; without it the answer is a declared reason, not UNKNOWN."""
    mapping = {"/grpc.health.v1.Health/Check": cast(Handler, None)}
    problem = _header_problem([h for h in REQUEST if h[0] != "te"], mapping)
    assert isinstance(problem, GRPCError)
    assert problem.status == Status.INVALID_ARGUMENT
    assert [d.reason for d in problem.details or [] if isinstance(d, ErrorInfo)] == [
        "MALFORMED_REQUEST"
    ]


@pytest.mark.parametrize(
    "content_type", ["application/proto", "application/connect+proto", "application/grpc-web"]
)
def test_a_request_of_another_protocol_is_left_to_the_http_answer(content_type: str) -> None:
    """Connect and gRPC-Web requests (which carry no 'te: trailers') are answered with HTTP
    415 by grpclib, not refused as malformed gRPC."""
    mapping = {"/grpc.health.v1.Health/Check": cast(Handler, None)}
    headers = [h for h in REQUEST if h[0] not in {"te", "content-type"}]
    problem = _header_problem([*headers, ("content-type", content_type)], mapping)
    assert problem is _NOT_GRPC


def goaway_code(client: H2Connection, server: GuardedConnection) -> int | None:
    """The error code of the GOAWAY the server queued, as the client reads it."""
    events = client.receive_data(server.data_to_send())
    codes = [e.error_code for e in events if isinstance(e, ConnectionTerminated)]
    return codes[0] if codes else None


def test_the_server_advertises_large_frames_and_bounded_windows() -> None:
    """The server's first frames allow DATA frames of 2 MiB and 4 MiB in flight per stream and
    per connection: a 1 MiB chunk fits one frame, an upload never waits for a window update."""
    client = H2Connection(H2Configuration(client_side=True))
    server = GuardedConnection(H2Configuration(client_side=False), TransportLimits())
    client.initiate_connection()
    server.initiate_connection()
    events = client.receive_data(server.data_to_send())
    settings = [e.changed_settings for e in events if isinstance(e, RemoteSettingsChanged)]
    assert len(settings) == 1  # one SETTINGS frame, the window already in it
    assert settings[0][SettingCodes.MAX_FRAME_SIZE].new_value == 2 << 20
    assert settings[0][SettingCodes.INITIAL_WINDOW_SIZE].new_value == 4 << 20
    assert client.max_outbound_frame_size == 2 << 20
    assert client.outbound_flow_control_window == 4 << 20


def test_data_frames_up_to_the_window_arrive_and_the_next_byte_is_refused() -> None:
    """Unread DATA is bounded by the 4 MiB connection window, however large the frames and
    however many the streams: 2 MiB frames on two streams arrive, one byte more ends the
    connection (FLOW_CONTROL_ERROR)."""
    client, server = pair(TransportLimits())
    for stream_id in (1, 3, 5):
        client.send_headers(stream_id, REQUEST)
    server.receive_data(client.data_to_send())
    frames = (
        DataFrame(1, b"\0" * (2 << 20)).serialize() + DataFrame(3, b"\1" * (2 << 20)).serialize()
    )
    events = server.receive_data(frames)
    assert [len(e.data) for e in events if isinstance(e, DataReceived)] == [2 << 20, 2 << 20]
    with pytest.raises(ProtocolError):
        server.receive_data(DataFrame(5, b"\2").serialize())
    assert goaway_code(client, server) == ErrorCodes.FLOW_CONTROL_ERROR


@pytest.mark.parametrize(
    ("frame_type", "length"),
    [
        (DataFrame.type, (2 << 20) + 1),
        (HeadersFrame.type, (16 << 10) + 1),
        (ContinuationFrame.type, (16 << 10) + 1),
        (PingFrame.type, (16 << 10) + 1),
    ],
    ids=["DATA", "HEADERS", "CONTINUATION", "PING"],
)
def test_an_oversized_frame_ends_the_connection_from_its_header_alone(
    frame_type: int, length: int
) -> None:
    """A frame above its limit (2 MiB for DATA, 16 KiB for any other) gets GOAWAY
    (FRAME_SIZE_ERROR) as soon as its 9-byte header arrives: its body is never buffered."""
    client, server = pair(TransportLimits())
    header = length.to_bytes(3, "big") + bytes([frame_type, 0]) + (1).to_bytes(4, "big")
    with pytest.raises(ProtocolError):
        server.receive_data(header + b"\0" * 1000)
    assert goaway_code(client, server) == ErrorCodes.FRAME_SIZE_ERROR


def test_frames_at_their_limits_are_received() -> None:
    """A header block just within the header-list limit, split over HEADERS and CONTINUATION,
    and a 2 MiB DATA frame are within the limits."""
    client, server = pair(TransportLimits())
    padding = "p" * (MAX_HEADER_LIST_BYTES - 600)
    block = client.encoder.encode([*REQUEST, ("x-padding", padding)], huffman=False)
    padded = HeadersFrame(1, block[: len(block) // 2])
    rest = ContinuationFrame(1, block[len(block) // 2 :], flags=["END_HEADERS"])
    events = server.receive_data(padded.serialize() + rest.serialize())
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [1]
    events = server.receive_data(DataFrame(1, b"\0" * (2 << 20)).serialize())
    assert [len(e.data) for e in events if isinstance(e, DataReceived)] == [2 << 20]


async def test_an_upload_is_acknowledged_in_few_window_updates() -> None:
    """Reading 1 MiB messages (prefix, then body) gives the client one WINDOW_UPDATE for the
    stream and one for the connection per 2 MiB read (half the window), not one per read."""
    client, server = pair(TransportLimits())
    client.send_headers(1, REQUEST)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    buffer = PacedBuffer(lambda size: server.acknowledge_received_data(size, 1))
    message = b"\0" * 5 + b"m" * (1 << 20)
    updates = 0
    for _ in range(16):
        client.send_data(1, message)
        for event in server.receive_data(client.data_to_send()):
            if isinstance(event, DataReceived):
                buffer.add(event.data, event.flow_controlled_length)
        await buffer.read(5)
        await buffer.read(1 << 20)
        events = client.receive_data(server.data_to_send())
        updates += sum(isinstance(event, WindowUpdated) for event in events)
    assert updates <= 16
