"""The HTTP/2 tuning of the SDK's and the server's connections: large frames, bounded
windows, paced acknowledgements, a cheap DATA repr, DATA written without copies.

Shared by the SDK's channels (``modelcatalog._transport.TunedChannel``) and the server, which
builds its guarded connection on ``TunedConnection`` and ``TunedProtocol``. It relies on a few
internals of grpclib, h2 and hyperframe (none of them public API), each named where it is used
and checked by the SDK's ``tests/test_transport.py`` and the server's
``tests/test_transport_upstream.py``: the grpclib protocol's ``connection``/``processor``
attributes set in ``connection_made``, ``Connection.create_stream`` with its
``_connection``/``_transport``, ``Stream.init_stream`` and ``buffer``, how ``Buffer.read``
calls its acknowledgement callback, ``Stream.send_data`` (replaced by ``PacedStream``'s, which
keeps its waiting and counters) and how ``grpclib.stream.send_message`` prefixes the codec's
result; h2's ``H2Connection.incoming_buffer``, ``_frame_dispatch_table``,
``max_inbound_frame_size`` and ``_prepare_for_sending``, ``FrameBuffer._update_header_buffer``,
and that ``send_data`` reads only the length of a body that is not a ``memoryview``;
hyperframe's ``DataFrame._body_repr`` and ``HeadersFrame._body_repr``.
"""

import asyncio
import functools
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from grpclib.config import Configuration
from grpclib.protocol import (
    AbstractHandler,
    Buffer,
    Connection,
    EventsProcessor,
    H2Protocol,
    Stream,
)
from grpclib.utils import Wrapper
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.frame_buffer import FrameBuffer
from h2.settings import SettingCodes, Settings
from hyperframe.frame import DataFrame, Frame, HeadersFrame

from ._unjoined import Unjoined

if TYPE_CHECKING:
    from typing_extensions import Buffer as BytesLike


def _shown_head(head: bytes, size: int) -> str:
    """What hyperframe's ``_raw_data_repr`` shows of ``size`` bytes that start with ``head``
    (their first 10 bytes, or all of them if fewer), without hex-encoding the rest."""
    if not size:
        return "None"
    return "<hex:" + head.hex() + ("..." if size > 10 else "") + ">"


class CheaplyShownDataFrame(DataFrame):
    """A DATA frame whose ``repr`` costs the same whatever its size, and reads the same.

    h2 formats ``repr(frame)`` of every frame it receives for a trace log line, even with
    logging off, and hyperframe's DATA repr hex-encodes the whole serialized body to show its
    first 10 bytes: about a fifth of the receiving side's CPU. This shows exactly the same
    text from those 10 bytes alone.
    """

    def _body_repr(self) -> str:
        padding_data = self.serialize_padding_data()
        size = len(padding_data) + len(self.data) + self.pad_length
        head = (padding_data + bytes(self.data[:10]) + b"\0" * min(self.pad_length, 10))[:10]
        return _shown_head(head, size)


class CheaplyShownHeadersFrame(HeadersFrame):
    """A HEADERS frame shown as hyperframe shows it, from its header block's first 10 bytes
    (hyperframe hex-encodes the whole block, a kilobyte with a bearer token, for every call)."""

    def _body_repr(self) -> str:
        return (
            f"exclusive={self.exclusive}, depends_on={self.depends_on}, "
            f"stream_weight={self.stream_weight}, "
            f"data={_shown_head(self.data[:10], len(self.data))}"
        )


# repr(frame) starts with the class name: the frames still read as hyperframe's.
CheaplyShownDataFrame.__name__ = DataFrame.__name__
CheaplyShownHeadersFrame.__name__ = HeadersFrame.__name__
#: The frames h2 reads, by hyperframe's class, and the class they are read as.
_CHEAPLY_SHOWN: dict[type[Frame], type[Frame]] = {
    DataFrame: CheaplyShownDataFrame,
    HeadersFrame: CheaplyShownHeadersFrame,
}


#: A DATA frame at least this large whose body is still arriving gathers it as it comes.
GATHER_FROM_BYTES = 64 * 1024
#: A gathered piece at least this large is kept as it came; smaller ones are copied together,
#: so that a body trickled in tiny pieces costs no more memory than the body itself.
KEEP_PIECE_FROM_BYTES = 16 * 1024
_PADDED_FLAG = 0x8


class TunedFrameBuffer(FrameBuffer):
    """h2's frame parser, yielding DATA frames that are cheap to show, and a large DATA frame's
    body copied once.

    h2 appends every received piece to one buffer, then copies a complete frame's body out
    of it and hyperframe copies that again into ``bytes``: three copies of each 1 MiB chunk.
    Here, once the header of a large unpadded DATA frame has arrived, the pieces of its body
    are kept as they arrive (small ones copied together) and joined once when the last
    arrives. Frames of any other kind, small or padded ones, and malformed headers go through
    h2's own parsing.
    """

    def __init__(self, server: bool = False) -> None:
        super().__init__(server=server)
        #: The large DATA frame whose body is arriving, its pieces so far, the bytes missing.
        self._gathering: DataFrame | None = None
        self._pieces: list[bytes | bytearray | memoryview] = []
        self._missing = 0

    def add_data(self, data: "BytesLike") -> None:
        if not self._missing:
            super().add_data(data)
            return
        view = memoryview(data)
        taken = min(self._missing, len(view))
        self._missing -= taken
        piece = view[:taken]
        last = self._pieces[-1]
        if taken >= KEEP_PIECE_FROM_BYTES:
            self._pieces.append(piece)
        elif last.__class__ is bytearray:
            last += piece
        else:
            self._pieces.append(bytearray(piece))
        if taken < len(view):
            super().add_data(view[taken:])

    def __next__(self) -> Frame:
        if self._gathering is not None:
            if self._missing:
                raise StopIteration
            frame, self._gathering = self._gathering, None
            frame.data = b"".join(self._pieces)
            frame.body_len = len(frame.data)
            self._pieces = []
            return self._update_header_buffer(frame) or self.__next__()
        if self._starts_large_data_frame():
            raise StopIteration
        return super().__next__()

    def _starts_large_data_frame(self) -> bool:
        """Whether the buffer starts with a large, unpadded, well-formed DATA frame that has
        not fully arrived: if so, its body gathers from here on."""
        data = self._data
        if len(data) < 9 or data[3] != DataFrame.type or data[4] & _PADDED_FLAG:
            return False
        length = int.from_bytes(data[:3], "big")
        stream_id = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        arrived = len(data) - 9
        if not stream_id or length < GATHER_FROM_BYTES or arrived >= length:
            return False
        self._validate_frame_length(length)
        frame, _ = Frame.parse_frame_header(memoryview(bytes(data[:9])))
        assert isinstance(frame, DataFrame)
        self._gathering = frame
        self._pieces = [bytearray(data[9:])]
        self._missing = length - arrived
        data.clear()
        return True

    def _update_header_buffer(self, f: Frame | None) -> Frame | None:
        frame = super()._update_header_buffer(f)
        if frame is not None:
            frame.__class__ = _CHEAPLY_SHOWN.get(frame.__class__, frame.__class__)
        return frame


#: A frame header (RFC 9113 §4.1): 24-bit length, type, flags, stream identifier.
_FRAME_HEADER = struct.Struct(">HBBBL")
_END_STREAM_FLAG = 0x1


class TunedConnection(H2Connection):
    """h2's connection with large frames and bounded windows from its first SETTINGS frame.

    The SETTINGS frame every connection starts with advertises ``max_frame_size`` and the
    ``stream_window``, which h2 applies to received frames at once (a peer may send large
    frames only after reading them); the connection window is opened right after it. DATA
    and HEADERS frames the peer sends are read as ``CheaplyShownDataFrame`` and
    ``CheaplyShownHeadersFrame``; DATA frames sent through
    ``send_data_unjoined`` leave their body's bytes where they are.
    """

    def __init__(
        self,
        config: H2Configuration,
        *,
        max_frame_size: int,
        stream_window: int,
        connection_window: int,
        settings: dict[SettingCodes, int] | None = None,
    ) -> None:
        super().__init__(config=config)
        self.local_settings = Settings(
            client=config.client_side,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                SettingCodes.MAX_HEADER_LIST_SIZE: self.DEFAULT_MAX_HEADER_LIST_SIZE,
                SettingCodes.MAX_FRAME_SIZE: max_frame_size,
                SettingCodes.INITIAL_WINDOW_SIZE: stream_window,
                **(settings or {}),
            },
        )
        self.max_inbound_frame_size = max_frame_size
        self._connection_window = connection_window
        self.incoming_buffer = TunedFrameBuffer(server=not config.client_side)
        # h2 dispatches received frames by their exact class.
        for shown, cheaply_shown in _CHEAPLY_SHOWN.items():
            self._frame_dispatch_table[cheaply_shown] = self._frame_dispatch_table[shown]
        self._unjoined: list[bytes | memoryview] = []

    def initiate_connection(self) -> None:
        super().initiate_connection()
        opened = self._connection_window - self.inbound_flow_control_window
        if opened > 0:
            self.increment_flow_control_window(opened)

    def send_data_unjoined(
        self, stream_id: int, body: Unjoined, end_stream: bool
    ) -> list[bytes | memoryview]:
        """What to write to send one DATA frame whose body is ``body``: whatever h2 had
        queued, the frame's header, then the body's parts themselves.

        h2's ``send_data`` checks the windows and frame size and moves the stream's state as
        for any frame: of a body that is not a ``memoryview`` it reads only the length, which
        an ``Unjoined`` has. The body is never copied: hyperframe's serialisation, h2's output
        buffer and ``data_to_send`` each copied it once.
        """
        self.send_data(stream_id, body, end_stream=end_stream)  # type: ignore[arg-type]  # sized
        pieces, self._unjoined = self._unjoined, []
        return pieces

    def _prepare_for_sending(self, frames: list[Frame]) -> None:
        frame = frames[0] if len(frames) == 1 else None
        body: object = frame.data if type(frame) is DataFrame else None
        if not isinstance(body, Unjoined):
            super()._prepare_for_sending(frames)
            return
        assert frame is not None
        flags = _END_STREAM_FLAG if "END_STREAM" in frame.flags else 0
        header = _FRAME_HEADER.pack(
            body.size >> 8, body.size & 0xFF, DataFrame.type, flags, frame.stream_id
        )
        self._unjoined = [self.data_to_send() + header, *body.parts]


class PacedBuffer(Buffer):
    """A stream's received bytes, handed back to the peer's flow-control window as the reader
    asks for them rather than a whole DATA frame at a time.

    grpclib acknowledges a frame as soon as a read reaches it: reading a message's 5-byte
    length prefix from a 2 MiB frame reopened the window by 2 MiB while those bytes still sat
    unread, so every stream waiting before a message body could hold a frame beyond the
    window. Here a read acknowledges only as many bytes as it asks for (bytes received
    earlier first, then bytes as they arrive), so what the reader has not asked for stays
    within the window, and a message larger than the window still completes.
    """

    def __init__(self, acknowledge: Callable[[int], None]) -> None:
        super().__init__(self._reached_reader)
        self._acknowledge = acknowledge
        #: Bytes the read in progress may still acknowledge as they arrive.
        self._allowance = 0
        #: Bytes counted against the window that no read has asked for yet.
        self._owed = 0

    def _reached_reader(self, size: int) -> None:
        """A DATA frame's ``size`` flow-controlled bytes were handed to a read."""
        now = min(size, self._allowance)
        self._allowance -= now
        self._owed += size - now
        if now:
            self._acknowledge(now)

    async def read(self, size: int) -> bytes:
        paid = min(self._owed, size)
        self._owed -= paid
        self._allowance = size - paid
        if paid:
            self._acknowledge(paid)
        try:
            return await super().read(size)
        finally:
            self._allowance = 0

    def unacked_size(self) -> int:
        """Every byte still counted against the window, which grpclib acknowledges when it
        releases the stream (its only call of this method).

        The reader is gone by then, so the bytes still held are dropped too: grpclib keeps a
        finished stream, and so its buffer, until it next sweeps its handler's tasks (after
        ten more calls on the connection, so maybe never), and a stream refused after its
        message prefix held the rest of a frame of up to the maximum frame size.
        """
        owed = super().unacked_size() + self._owed
        self._owed = 0
        self._acked.clear()
        self._acked_size = 0
        return owed


class PacedStream(Stream):
    """grpclib's stream, its received bytes in a ``PacedBuffer``, its sent messages written
    without copies."""

    def init_stream(self, stream_id: int, connection: Connection) -> None:
        super().init_stream(stream_id, connection)
        self.buffer = PacedBuffer(functools.partial(connection.ack, stream_id))

    async def send_data(self, data: bytes | Unjoined, end_stream: bool = False) -> None:
        """grpclib's ``send_data``: DATA frames as large as the window and the peer's frame
        size allow, each once the transport takes writes and the window is open. Each frame's
        body is written as the parts of ``data`` it spans (``send_data_unjoined``), where
        grpclib copied each frame out of the message first."""
        assert self.id is not None
        h2 = cast(TunedConnection, self._h2_connection)
        parts: deque[bytes | memoryview] = deque(
            data.parts if isinstance(data, Unjoined) else (data,)
        )
        remaining = len(data)
        while True:
            await self.connection.write_ready.wait()
            window = h2.local_flow_control_window(self.id)
            if not window > 0:  # it can become negative
                self.window_updated.clear()
                await self.window_updated.wait()
                continue  # other streams may have taken the window meanwhile: look again
            size = min(window, h2.max_outbound_frame_size, remaining)
            remaining -= size
            body = Unjoined(_take(parts, size))
            for piece in h2.send_data_unjoined(self.id, body, end_stream and not remaining):
                self._transport.write(piece)
            self.data_sent += size
            self.connection.data_sent += size
            self.connection.data_send_process()
            if not remaining:
                return


def _take(parts: deque[bytes | memoryview], size: int) -> list[bytes | memoryview]:
    """The first ``size`` bytes of ``parts``, as whole parts and views of one cut at the end;
    what remains of ``parts`` stays in it."""
    taken: list[bytes | memoryview] = []
    while size:
        part = parts[0]
        if len(part) <= size:
            taken.append(parts.popleft())
            size -= len(part)
        else:
            view = memoryview(part)
            taken.append(view[:size])
            parts[0] = view[size:]
            size = 0
    return taken


class PacedConnection(Connection):
    """grpclib's connection state, its streams ``PacedStream``s."""

    def create_stream(
        self, *, stream_id: int | None = None, wrapper: Wrapper | None = None
    ) -> Stream:
        return PacedStream(
            self, self._connection, self._transport, stream_id=stream_id, wrapper=wrapper
        )


#: A write at least this large goes out at once, with what is pending: coalescing saves
#: syscalls and TLS records for small frames, while joining large DATA frames would copy them.
COALESCE_BELOW_BYTES = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A transport that gathers the small writes of one event-loop turn into one write.

    grpclib writes each frame it sends at once: a unary answer's HEADERS, DATA and trailers are
    three TLS records and three syscalls, the largest share of a small call's CPU. Writes here
    are kept until the loop's next turn (or until a large write or ``close`` needs them out
    first), in order, so the peer sees the same bytes in fewer records.

    A large write (a DATA frame's body) goes out with the small ones pending before it (its
    frame header, joined into one TLS record) in one ``writelines``, which a TLS transport
    encrypts into one socket write: writing the header first cost a socket write of its own,
    one more per MiB moved. A transport whose ``writelines`` would join the list, copying the
    body (Python 3.11's plain TCP transport), gets the two writes instead.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._pending: list[bytes] = []
        self._scheduled = False
        self._writes_lists = type(transport).writelines is not asyncio.WriteTransport.writelines
        """Whether the transport writes a list without joining it first."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if len(data) >= COALESCE_BELOW_BYTES:
            if self._pending and self._writes_lists and not self._transport.is_closing():
                self._transport.writelines([b"".join(self._pending), data])
                self._pending.clear()
                return
            self.flush()
            # Dropped, as flush drops small writes, once closing: a frame's body must not go
            # out without the header written just before it.
            if not self._transport.is_closing():
                self._transport.write(data)
            return
        self._pending.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Writes what is pending now."""
        self._scheduled = False
        if not self._pending:
            return
        data = b"".join(self._pending)  # the item itself when there is one: not copied
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))


class TunedProtocol(H2Protocol):
    """grpclib's HTTP/2 protocol on a ``TunedConnection``, its streams paced (``PacedBuffer``),
    its small writes coalesced (``CoalescingTransport``)."""

    def __init__(
        self,
        handler: AbstractHandler,
        config: Configuration,
        h2_config: H2Configuration,
        *,
        max_frame_size: int,
    ) -> None:
        super().__init__(handler, config, h2_config)
        self.max_frame_size = max_frame_size

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        h2 = self.new_h2_connection()
        h2.initiate_connection()
        self.connection = PacedConnection(
            h2, CoalescingTransport(cast(asyncio.Transport, transport)), config=self.config
        )
        self.connection.flush()
        self.connection.initialize()
        self.processor = EventsProcessor(self.handler, self.connection)

    def new_h2_connection(self) -> H2Connection:
        """The connection's h2 state machine, its limits from the configuration."""
        return TunedConnection(
            self.h2_config,
            max_frame_size=self.max_frame_size,
            stream_window=self.config.http2_stream_window_size,
            connection_window=self.config.http2_connection_window_size,
        )
