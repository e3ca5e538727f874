"""HTTP/2 for the server: grpclib's protocol with limits on what one connection may do.

- The connection is the tuned one it shares with the SDK (``modelcatalog.wire``): DATA frames
  of up to ``max_frame_size`` (2 MiB) and flow-control windows of 4 MiB per stream and per
  connection in its first SETTINGS frame, received bytes given back to the window as handlers
  read them.
- A frame above its limit (``max_frame_size`` for DATA, 16 KiB for any other) ends the
  connection (GOAWAY FRAME_SIZE_ERROR) as soon as its header arrives, before its body is
  buffered.
- Control frames (PING, SETTINGS, RST_STREAM, PRIORITY, WINDOW_UPDATE), empty DATA frames
  and HEADERS frames on closed streams draw on per-connection token buckets; a client that
  exceeds one gets GOAWAY (ENHANCE_YOUR_CALM) and is disconnected, before the rest of its
  burst is even parsed.
- DATA frames that do not end their stream and average under 1 KiB with the one before them
  count like empty ones beyond two per call a client starts, and a closed stream takes no more
  DATA than its window allowed when it closed: both cost the server work without carrying a
  request.
- Request headers may decode to at most 8 KiB, and the HPACK encoder keeps a 4 KiB table
  whatever larger one a client allows.
- A stream above the concurrency cap is refused with RST_STREAM (REFUSED_STREAM) instead of
  the whole connection being dropped.
- Malformed request headers (missing or repeated pseudo-headers, non-ASCII values) are a
  stream error (RST_STREAM PROTOCOL_ERROR); undecodable metadata, an invalid grpc-timeout and
  unknown methods get a gRPC status with a declared reason. No handler runs for any of them.
- A stream's slot is released when its handler task ends, however it ends: grpclib releases
  it in the handler's ``finally``, which never runs for a task cancelled before it started
  (a stream reset right after its HEADERS), so every rapid reset leaked a stream.
- A connection without calls for the idle timeout gets GOAWAY (NO_ERROR) and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from grpclib.const import Handler, Status
from grpclib.encoding.base import CodecBase, StatusDetailsCodecBase
from grpclib.exceptions import GRPCError
from h2.config import H2Configuration
from h2.exceptions import StreamClosedError
from h2.settings import SettingCodes

from ..errors import refusal
from ._guards import RequestGuards
from ._limits import RateLimit, TransportLimits
from ._upstream import (
    _STATUS_DETAILS_KEY,
    ConnectionInputs,
    ContinuationFrame,
    DataFrame,
    Deadline,
    ErrorCodes,
    ExtensionFrame,
    Frame,
    FrameTooLargeError,
    GrpclibHandler,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    ProtocolError,
    RstStreamFrame,
    SettingsFrame,
    StreamClosedBy,
    TransportConnection,
    TransportStream,
    TunedConnection,
    TunedFrameBuffer,
    TunedProtocol,
    WindowUpdateFrame,
    _decode_headers,
    _DispatchServerEvents,
    decode_metadata,
    encode_bin_value,
    encode_grpc_message,
    next_frame_header,
)

log = logging.getLogger("modelcatalog_server.transport")
access_log = logging.getLogger("modelcatalog_server.access")

_REQUIRED_PSEUDO_HEADERS = (":method", ":path", ":scheme")
#: PING or WINDOW_UPDATE frames a client may send free of the rate limits for each HEADERS
#: frame the server sent and each started 16 KiB of DATA (a frame of HTTP/2's default size),
#: and how many such answers may be owed at most.
ANSWER_CREDIT_PER_FRAME = 2
ANSWER_CREDIT_DATA_UNIT = 1 << 14
ANSWER_CREDIT_CAP = 256
#: The largest frame other than DATA a client may send: HTTP/2's default maximum frame size.
NON_DATA_FRAME_LIMIT = 1 << 14
#: The HPACK table the server's encoder keeps, whatever larger one a client allows (HTTP/2's
#: default). hpack looks through its whole table for every header it sends: a client that
#: allowed 4 GiB made every answer on its connection slower than the one before.
ENCODER_TABLE_BYTES = 4096
#: The decoded request headers a client may send on one stream (SETTINGS_MAX_HEADER_LIST_SIZE;
#: h2's default is 64 KiB; gRPC's own clients send at most 8 KiB of metadata by default). HPACK
#: lets a few hundred bytes on the wire inflate to the limit, which the server then decodes, at
#: a cost in CPU that grows with it, and holds for the call.
MAX_HEADER_LIST_BYTES = 8 << 10
#: DATA frames that do not end their stream and that average less than this with the DATA
#: frame before them on the connection are counted like empty ones (Tomcat's rule for its
#: overheadDataThreshold): a flood of 1-byte frames costs the server a frame's work per byte,
#: while a client sends a short frame at the end of a message that went in full frames
#: (gRPC's own clients send a 1 MiB chunk as 16 KiB frames and the last few bytes alone), so
#: the average, not the frame, tells them apart. On a closed stream, a frame shorter than
#: this is counted. Each call a client starts earns it ``SHORT_DATA_FRAMES_PER_CALL`` of them
#: (a message and, from some clients, its own frame with END_STREAM), so a client making many
#: small calls is never taken for a flood.
SHORT_DATA_FRAME_BYTES = 1 << 10
SHORT_DATA_FRAMES_PER_CALL = 2
#: Closed streams whose DATA received after closing is counted (the most recent ones).
AFTER_CLOSE_STREAMS_KEPT = 1024


class _TooManyFrames(ProtocolError):
    error_code = ErrorCodes.ENHANCE_YOUR_CALM


class _Bucket:
    """A token bucket over ``time.monotonic``."""

    def __init__(self, limit: RateLimit) -> None:
        self._limit = limit
        self._tokens = float(limit.burst)
        self._updated = time.monotonic()

    def give(self, tokens: float) -> None:
        """Adds ``tokens``, up to the burst."""
        self._tokens = min(self._limit.burst, self._tokens + tokens)

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(
            self._limit.burst, self._tokens + (now - self._updated) * self._limit.per_second
        )
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class _GuardedFrameBuffer(TunedFrameBuffer):
    """h2's frame parser, checking each frame's length from its header and counting
    CONTINUATION frames, which it folds into their HEADERS.

    h2 checks a frame's length only once the whole frame has arrived, so a client could make
    it buffer up to 16 MiB per connection by announcing a huge frame and trickling it; here a
    frame above the advertised maximum ends the connection (FRAME_SIZE_ERROR) as soon as its
    header arrives. Only DATA frames may use the large maximum, which moves bulk bytes in few
    frames: every other frame stays within HTTP/2's default of 16 KiB, so header blocks held
    while their CONTINUATION frames arrive stay as small as before.

    h2 caps one header block at 64 CONTINUATION frames with a PROTOCOL_ERROR; this bucket ends
    a flood sooner, and with ENHANCE_YOUR_CALM, like the other frame-rate limits.
    """

    def __init__(self, limit: RateLimit) -> None:
        super().__init__(server=True)
        self._continuations = _Bucket(limit)

    def __next__(self) -> Frame:
        header = next_frame_header(self)
        if len(header) == 9:
            length = int.from_bytes(header[:3], "big")
            limit = self.max_frame_size if header[3] == DataFrame.type else NON_DATA_FRAME_LIMIT
            if length > min(limit, self.max_frame_size):
                raise FrameTooLargeError(
                    f"a frame of type {header[3]} announces {length} bytes, more than {limit}"
                )
        return super().__next__()

    def _update_header_buffer(self, f: Frame | None) -> Frame | None:
        if isinstance(f, ContinuationFrame) and not self._continuations.take():
            raise _TooManyFrames("too many CONTINUATION frames")
        return super()._update_header_buffer(f)


class GuardedConnection(TunedConnection):
    """h2's connection state machine with the transport's frame size and windows, frame-rate
    limits and graceful stream refusal."""

    def __init__(self, config: H2Configuration, limits: TransportLimits) -> None:
        super().__init__(
            config,
            max_frame_size=limits.max_frame_size,
            stream_window=limits.stream_window_bytes,
            connection_window=limits.connection_window_bytes,
            settings={
                SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_BYTES,
            },
        )
        self.incoming_buffer = _GuardedFrameBuffer(limits.continuations)
        # h2 gives its decoder only later changes of the setting, not the first value.
        self.decoder.max_header_list_size = MAX_HEADER_LIST_BYTES
        self._answer_credit = 0
        self._resets = _Bucket(limits.resets)
        self._pings = _Bucket(limits.pings)
        self._settings = _Bucket(limits.settings)
        self._empty_data = _Bucket(limits.empty_data)
        self._window_and_priority = _Bucket(limits.window_and_priority)
        #: DATA bytes received on each stream after it closed, for the last streams that got any.
        self._after_close: dict[int, int] = {}
        #: The length of the last DATA frame received that did not end its stream.
        self._last_data_length = 0

    def send_data(
        self,
        stream_id: int,
        data: bytes | memoryview,
        end_stream: bool = False,
        pad_length: Any = None,
    ) -> None:
        self._earn_answer_credit(max(1, -(-len(data) // ANSWER_CREDIT_DATA_UNIT)))
        super().send_data(stream_id, data, end_stream=end_stream, pad_length=pad_length)

    def send_headers(self, stream_id: int, headers: Any, *args: Any, **kwargs: Any) -> None:
        self._earn_answer_credit(1)
        super().send_headers(stream_id, headers, *args, **kwargs)

    def _earn_answer_credit(self, frames: int) -> None:
        """Credit for ``frames`` frames sent (DATA counted in 16 KiB frames)."""
        earned = self._answer_credit + ANSWER_CREDIT_PER_FRAME * frames
        self._answer_credit = min(ANSWER_CREDIT_CAP, earned)

    def _receive_frame(self, frame: Frame) -> Any:
        closed = isinstance(frame, DataFrame) and self._is_closed(frame.stream_id)
        bucket = self._bucket_for(frame, closed)
        if bucket is not None and not self._answers_our_frames(frame) and not bucket.take():
            raise _TooManyFrames(f"too many {type(frame).__name__} frames")
        if closed:
            self._count_after_close(cast(DataFrame, frame))
        return super()._receive_frame(frame)

    def _count_after_close(self, frame: DataFrame) -> None:
        """A client may still send on a stream the server closed what the stream's window
        allowed when it closed, never more: h2 gives back the connection's window for such
        DATA, not the stream's, so without this count a closed stream took DATA forever."""
        received = self._after_close.pop(frame.stream_id, 0) + frame.flow_controlled_length
        if received > self.local_settings.initial_window_size:
            raise _TooManyFrames("more DATA on a closed stream than its window allowed")
        self._after_close[frame.stream_id] = received
        if len(self._after_close) > AFTER_CLOSE_STREAMS_KEPT:
            del self._after_close[next(iter(self._after_close))]

    def _answers_our_frames(self, frame: Frame) -> bool:
        """Whether ``frame`` is a PING or WINDOW_UPDATE paid for by frames the server sent.

        Clients answer the data they receive: Node's HTTP/2 sends a WINDOW_UPDATE for about
        every DATA frame, grpc-go and grpcio a PING with every burst to measure bandwidth
        (BDP). Each HEADERS frame and each started 16 KiB of DATA the server sends earns two
        such frames free of the rate limits (so a client may answer a large frame in as many
        pieces as if it had come in frames of HTTP/2's default size), so a download is never
        taken for a flood, while a client that receives nothing still meets the limits at once.
        """
        if self._answer_credit < 1 or not isinstance(frame, PingFrame | WindowUpdateFrame):
            return False
        self._answer_credit -= 1
        return True

    def _bucket_for(self, frame: Frame, closed: bool) -> _Bucket | None:
        """The bucket ``frame`` draws on. PING and SETTINGS acknowledgements count like the
        frames they acknowledge (the server sends few of those). Frames of a type HTTP/2 does
        not define count like empty DATA frames, and so do short DATA frames (``_is_short``;
        on a closed stream h2 answers each with a RST_STREAM) and HEADERS frames on a stream
        that is neither open nor new (h2 answers each with a RST_STREAM, and no call starts).
        ``closed``: whether ``frame`` is DATA on a closed stream."""
        if isinstance(frame, RstStreamFrame):
            return self._resets
        if isinstance(frame, PingFrame):
            return self._pings
        if isinstance(frame, SettingsFrame):
            return self._settings
        if isinstance(frame, DataFrame):
            return self._empty_data if self._is_short(frame, closed) else None
        if isinstance(frame, ExtensionFrame):
            return self._empty_data
        if isinstance(frame, HeadersFrame) and not self._opens_stream(frame.stream_id):
            return self._empty_data if self._is_closed(frame.stream_id) else None
        if isinstance(frame, WindowUpdateFrame | PriorityFrame):
            return self._window_and_priority
        return None

    def _is_short(self, frame: DataFrame, closed: bool) -> bool:
        """Whether DATA ``frame`` counts like an empty one (see ``SHORT_DATA_FRAME_BYTES``);
        the length of a frame that does not end its stream is kept for the next one's average.
        Called once per frame."""
        length = len(frame.data)
        if closed:
            return length < SHORT_DATA_FRAME_BYTES
        if "END_STREAM" in frame.flags:
            return False
        previous, self._last_data_length = self._last_data_length, length
        return length + previous < 2 * SHORT_DATA_FRAME_BYTES

    def _is_closed(self, stream_id: int) -> bool:
        stream = self.streams.get(stream_id)
        return stream is None or stream.closed

    def _acknowledge_settings(self) -> Any:
        frames = super()._acknowledge_settings()
        if self.encoder.header_table_size > ENCODER_TABLE_BYTES:
            self.encoder.header_table_size = ENCODER_TABLE_BYTES
        return frames

    def _receive_headers_frame(self, frame: HeadersFrame) -> Any:
        if self._opens_stream(frame.stream_id):
            if self.open_inbound_streams >= self.local_settings.max_concurrent_streams:
                return self._refuse_stream(frame)
            self._empty_data.give(SHORT_DATA_FRAMES_PER_CALL)
        try:
            return super()._receive_headers_frame(frame)
        except UnicodeDecodeError:
            # h2 decodes header values after the stream was opened: refuse just that stream.
            self.reset_stream(frame.stream_id, ErrorCodes.PROTOCOL_ERROR)
            return [], []

    def _opens_stream(self, stream_id: int) -> bool:
        """Whether a HEADERS frame on ``stream_id`` opens a new stream of the client's."""
        return stream_id % 2 == 1 and stream_id > self.highest_inbound_stream_id

    def _refuse_stream(self, frame: HeadersFrame) -> Any:
        """RST_STREAM(REFUSED_STREAM) for a new stream, keeping HPACK and stream ids in step."""
        if not self._resets.take():
            raise _TooManyFrames("too many streams above the concurrency limit")
        _decode_headers(self.decoder, frame.data)
        self.state_machine.process_input(ConnectionInputs.RECV_HEADERS)
        self.highest_inbound_stream_id = frame.stream_id
        self._closed_streams[frame.stream_id] = StreamClosedBy.SEND_RST_STREAM
        refused = RstStreamFrame(frame.stream_id)
        refused.error_code = ErrorCodes.REFUSED_STREAM
        return [refused], []


class GuardedHandler(GrpclibHandler):
    """grpclib's per-connection request handler, checking headers and releasing every stream."""

    def __init__(
        self,
        mapping: Mapping[str, Handler],
        codec: CodecBase,
        status_details_codec: StatusDetailsCodecBase,
        dispatch: _DispatchServerEvents,
        guards: RequestGuards,
    ) -> None:
        super().__init__(dict(mapping), codec, status_details_codec, dispatch)
        self._guards = guards
        self._details_codec = status_details_codec
        self.open_calls = 0
        self.idle_since = time.monotonic()

    def accept(
        self,
        stream: TransportStream,
        headers: list[tuple[str, str]],
        release_stream: Callable[[], Any],
    ) -> None:
        self.open_calls += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open_calls -= 1
                if not self.open_calls:
                    self.idle_since = time.monotonic()
                release_stream()

        problem = _header_problem(headers, self.mapping)
        if problem is _MALFORMED:
            _reset(stream, ErrorCodes.PROTOCOL_ERROR)
            release()
            return
        if isinstance(problem, GRPCError):
            self.__gc_step__()
            self._tasks[stream] = self.loop.create_task(self._answer(stream, headers, problem))
        elif problem is _NOT_GRPC:
            super().accept(stream, headers, release)  # grpclib answers HTTP 405 or 415
        else:
            super().accept(stream, self._take_deadline(stream, headers), release)
        self._tasks[stream].add_done_callback(lambda _task: release())

    def _take_deadline(
        self, stream: TransportStream, headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The headers without grpc-timeout, whose deadline the request guards enforce."""
        deadline = Deadline.from_headers(headers)
        if deadline is None:
            return headers
        self._guards.set_deadline(stream, deadline)
        return [(name, value) for name, value in headers if name != "grpc-timeout"]

    async def _answer(
        self, stream: TransportStream, headers: list[tuple[str, str]], error: GRPCError
    ) -> None:
        """A trailers-only response with ``error`` and its details, for a call no handler runs."""
        trailers = [
            (":status", "200"),
            ("content-type", "application/grpc+proto"),
            ("grpc-status", str(error.status.value)),
            ("grpc-message", encode_grpc_message(error.message or "")),
        ]
        if error.details:
            details = self._details_codec.encode(error.status, error.message, error.details)
            trailers.append((_STATUS_DETAILS_KEY, encode_bin_value(details).decode("ascii")))
        try:
            await stream.send_headers(trailers, end_stream=True)
        except StreamClosedError:
            return
        if stream.closable:
            stream.reset_nowait()
        access_log.info(
            "rpc method=%s status=%s duration_ms=0.0 user=- peer=%s",
            ascii(dict(headers).get(":path", "-")[:64]),  # client text: escaped, one line
            error.status.name,
            _peer_of(stream.connection),
        )


_MALFORMED = object()
#: A request of another protocol (Connect, gRPC-Web, a plain GET), which gets an HTTP status.
_NOT_GRPC = object()


def _header_problem(headers: list[tuple[str, str]], mapping: Mapping[str, Handler]) -> object:
    """None for a gRPC request grpclib may handle; _NOT_GRPC for a request of another
    protocol, which grpclib answers with HTTP 405 or 415 before reading anything else of it;
    _MALFORMED or a gRPC refusal otherwise."""
    pseudo: dict[str, str] = {}
    for name, value in headers:
        if name.startswith(":"):
            if name in pseudo:
                return _MALFORMED
            pseudo[name] = value
    if any(name not in pseudo for name in _REQUIRED_PSEUDO_HEADERS):
        return _MALFORMED
    content_type = dict(headers).get("content-type", "")
    if pseudo[":method"] != "POST" or content_type.partition("+")[0] != "application/grpc":
        return _NOT_GRPC
    if dict(headers).get("te") != "trailers":
        return refusal(
            Status.INVALID_ARGUMENT,
            "MALFORMED_REQUEST",
            "gRPC requests carry the header 'te: trailers'",
        )
    if pseudo[":path"] not in mapping:
        return refusal(
            Status.UNIMPLEMENTED,
            "METHOD_NOT_FOUND",
            f"this server has no method {pseudo[':path'][:64]!r}",
        )
    try:
        decode_metadata(headers)
    except (ValueError, UnicodeError):
        return refusal(
            Status.INVALID_ARGUMENT,
            "MALFORMED_REQUEST",
            "the request metadata cannot be decoded (binary values must be base64)",
        )
    try:
        deadline = Deadline.from_headers(headers)
    except ValueError:
        return refusal(
            Status.INVALID_ARGUMENT, "MALFORMED_REQUEST", "the grpc-timeout header is not valid"
        )
    if deadline is not None and not deadline.time_remaining():
        return refusal(
            Status.DEADLINE_EXCEEDED,
            "CALL_DEADLINE_EXCEEDED",
            "the call's deadline passed before it started",
        )
    return None


def _reset(stream: TransportStream, code: ErrorCodes) -> None:
    with contextlib.suppress(StreamClosedError):
        stream.reset_nowait(code)


def _peer_of(connection: TransportConnection) -> str:
    """``host:port`` of a connection's client, for the log; "-" once the transport is gone."""
    try:
        address = connection.get_peer().addr()
    except AttributeError:  # the transport is already gone
        return "-"
    return f"{address[0]}:{address[1]}" if address else "-"


class GuardedProtocol(TunedProtocol):
    """One HTTP/2 server connection: grpclib's protocol on a ``GuardedConnection``."""

    handler: GuardedHandler

    def __init__(
        self,
        handler: GuardedHandler,
        config: Any,
        h2_config: H2Configuration,
        limits: TransportLimits,
        guards: RequestGuards,
        connections: set[GuardedProtocol],
        release: Callable[[bool], None],
    ) -> None:
        super().__init__(handler, config, h2_config, max_frame_size=limits.max_frame_size)
        self._limits = limits
        self._guards = guards
        self._connections = connections
        self._release = release
        self._idle_timer: asyncio.TimerHandle | None = None
        self._h2: GuardedConnection | None = None

    def new_h2_connection(self) -> GuardedConnection:
        self._h2 = GuardedConnection(self.h2_config, self._limits)
        return self._h2

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._guards.connection_opened(self.connection)
        self._connections.add(self)
        self._schedule_idle_check(self._limits.connection_idle_timeout)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.connection.feed(data)
        except ProtocolError as error:
            log.info("closing a connection from %s: %s", _peer_of(self.connection), error)
            self.connection.flush()  # h2 queued a GOAWAY with the error code
            self.processor.close(f"protocol error: {error}")
            return
        self.connection.flush()
        processors = getattr(self.processor, "processors", {})
        for event in events:
            # Events grpclib has no processor for (unknown frame types, which RFC 9113 says
            # to ignore) would otherwise raise out of data_received.
            if type(event) in processors:
                self.processor.process(event)
        self.connection.flush()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        super().connection_lost(exc)
        self._guards.connection_closed(self.connection)
        self._connections.discard(self)
        # A connection that never completed a request counts against its address's rate.
        self._release(bool(self.connection.streams_succeeded))

    def goaway(self) -> None:
        """Tells the client no new streams will be accepted, and closes the connection."""
        if self._h2 is not None and not self.connection.is_closing():
            self._h2.close_connection(error_code=ErrorCodes.NO_ERROR)
            self.connection.flush()
        self.processor.close("connection closed by the server")

    def _schedule_idle_check(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        timeout = self._limits.connection_idle_timeout
        if self.handler.open_calls:
            self._schedule_idle_check(timeout)
            return
        idle_for = time.monotonic() - self.handler.idle_since
        if idle_for >= timeout:
            log.debug(
                "closing a connection from %s idle for %.0f s", _peer_of(self.connection), idle_for
            )
            self.goaway()
        else:
            self._schedule_idle_check(timeout - idle_for)
