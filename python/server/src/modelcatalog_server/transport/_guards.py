"""Request guards: what a call's request stream must satisfy while its handler reads it.

Every method of every service is wrapped here (``RequestGuards.apply``), under the real server
and under grpclib's in-memory test channel alike, so handlers only ever receive messages that
are within the size limit, arrived in time, and fit the memory budget:

- a message whose declared length is above the limit is refused before it is read;
- the bytes of incomplete messages larger than 64 KiB are reserved from a budget per connection
  and per server, so clients that send large messages slowly cannot hold unbounded memory;
- the first request message (a unary request, an upload's header) must arrive within the
  request timeout, and a client stream must then keep delivering a minimum number of bytes
  in every progress window (a trickle holds a slot as long as silence would);
- a stream that ends inside a message, or a unary call without a message, is the client's
  error (MALFORMED_REQUEST), never a server fault;
- a client that stops reading a response stream (a download) must accept each message within
  the progress window, or the call ends (DOWNLOAD_STALLED) and releases what it held.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Collection
from typing import Any
from weakref import WeakKeyDictionary

from grpclib._typing import IServable
from grpclib.const import Cardinality, Handler, Status
from grpclib.server import Stream

from modelcatalog.wire import return_free_memory

from ..errors import refusal
from ._limits import TransportLimits
from ._upstream import Deadline, TransportConnection, TransportStream, stream_bytes_received

#: Messages up to this size are always read: HTTP/2 flow control already bounds them (at most
#: one per stream, within the connection's window), and reserving them would let a client that
#: fills the budget with large messages shut out every small call, health checks included.
UNBUDGETED_MESSAGE_BYTES = 64 << 10


#: How long after a connection with calls closed the memory is returned (the closes within
#: it share one garbage collection and trim, so a flood of closes costs at most one a second).
TRIM_DELAY_SECONDS = 1.0


class Buffers:
    """A byte budget for message bodies being received; a child also draws on its parent."""

    def __init__(self, capacity: int, parent: Buffers | None = None) -> None:
        self.capacity = capacity
        self.reserved = 0
        self._parent = parent

    def try_reserve(self, size: int) -> bool:
        """Reserves ``size`` bytes here and in the parent, or nothing and returns False."""
        if self.reserved + size > self.capacity:
            return False
        if self._parent is not None and not self._parent.try_reserve(size):
            return False
        self.reserved += size
        return True

    def release(self, size: int) -> None:
        """Returns ``size`` reserved bytes."""
        self.reserved -= size
        if self._parent is not None:
            self._parent.release(size)


class RequestGuards:
    """The guards of one server: its limits, its buffer budget, and each connection's share."""

    def __init__(self, limits: TransportLimits) -> None:
        self.limits = limits
        self.server_buffers = Buffers(limits.server_buffer_bytes)
        self._connections: WeakKeyDictionary[TransportConnection, Buffers] = WeakKeyDictionary()
        self._deadlines: WeakKeyDictionary[TransportStream, Deadline] = WeakKeyDictionary()
        self._trim: asyncio.TimerHandle | None = None

    def connection_closed(self, connection: TransportConnection) -> None:
        """Gives the memory a closed connection used back to the system, once things settle.

        glibc keeps freed buffers in its heap, so the memory of a burst of large messages or
        stalled downloads would otherwise stay with the process after its clients left; a
        trim a moment after a connection with calls closed returns it, at most once per delay.
        """
        if not connection.streams_started or self._trim is not None:
            return
        loop = asyncio.get_running_loop()
        self._trim = loop.call_later(TRIM_DELAY_SECONDS, self._return_memory)

    def _return_memory(self) -> None:
        self._trim = None
        gc.collect()  # a closed connection's protocol, streams and buffers form cycles
        return_free_memory()

    def connection_opened(self, connection: TransportConnection) -> None:
        """Gives a new connection its own share of the buffer budget."""
        self._connections[connection] = Buffers(
            self.limits.connection_buffer_bytes, self.server_buffers
        )

    def set_deadline(self, stream: TransportStream, deadline: Deadline) -> None:
        """Makes the guards, not grpclib, end the call at its client's deadline (grpclib's own
        deadline answer carries no details, and one already past makes it answer UNKNOWN)."""
        self._deadlines[stream] = deadline

    def take_deadline(self, stream: TransportStream) -> Deadline | None:
        """The client's deadline for a call on ``stream``, if it set one."""
        return self._deadlines.pop(stream, None)

    def apply(self, services: Collection[IServable]) -> list[IServable]:
        """``services`` with every method's request stream guarded."""
        return [_Guarded(service, self) for service in services]

    def buffers_for(self, stream: TransportStream) -> Buffers:
        """The budget a stream's messages draw on: its connection's, else the server's."""
        return self._connections.get(stream.connection, self.server_buffers)


class _Guarded:
    def __init__(self, service: IServable, guards: RequestGuards) -> None:
        self._service = service
        self._guards = guards

    def __mapping__(self) -> dict[str, Handler]:
        return {
            method: handler._replace(func=self._wrap(handler))
            for method, handler in self._service.__mapping__().items()
        }

    def _wrap(self, handler: Handler) -> Any:
        guards = self._guards
        cardinality = handler.cardinality
        func = handler.func

        async def guarded(stream: Stream[Any, Any]) -> None:
            _CallGuard(stream, guards, cardinality).install()
            deadline = guards.take_deadline(stream._stream)
            if deadline is None:
                await func(stream)
                return
            try:
                async with asyncio.timeout(deadline.time_remaining()):
                    await func(stream)
            except TimeoutError:
                raise refusal(
                    Status.DEADLINE_EXCEEDED,
                    "CALL_DEADLINE_EXCEEDED",
                    "the call's deadline passed before the server could answer",
                ) from None

        return guarded


class _CallGuard:
    """The reading rules of one call, installed on its stream before the handler runs."""

    def __init__(
        self, stream: Stream[Any, Any], guards: RequestGuards, cardinality: Cardinality
    ) -> None:
        self._stream = stream
        self._transport = stream._stream
        self._limits = guards.limits
        self._buffers = guards.buffers_for(self._transport)
        self._single = not cardinality.client_streaming
        # A download holds a response message (up to 1 MiB) and a stored file while the client
        # does not read: each message must be accepted within the progress window.
        self._server_streaming = cardinality.server_streaming
        # Uploads must keep moving; a bidirectional stream (reflection) may pause between
        # requests, as its client waits for answers.
        self._progress_required = cardinality is Cardinality.STREAM_UNARY
        self._first_deadline = time.monotonic() + self._limits.request_timeout
        self._first_received = False
        self._window_end = 0.0
        self._window_start_bytes = 0

    def install(self) -> None:
        receive_data = self._transport.recv_data
        receive_message = self._stream.recv_message

        async def recv_data(size: int) -> bytes:
            return await self._receive_data(receive_data, size)

        async def recv_message() -> Any:
            try:
                message = await receive_message()
            except AssertionError:  # grpclib: the stream ended inside a message
                raise refusal(
                    Status.INVALID_ARGUMENT,
                    "MALFORMED_REQUEST",
                    "the request stream ended inside a message",
                ) from None
            if not self._first_received:
                if message is None and self._single:
                    raise refusal(
                        Status.INVALID_ARGUMENT,
                        "MALFORMED_REQUEST",
                        "the call carries no request message",
                    )
                self._first_received = True
                self._start_window()
            return message

        if self._server_streaming:
            send_message = self._stream.send_message

            async def send_within_window(message: Any) -> None:
                window = self._limits.upload_progress_window
                try:
                    async with asyncio.timeout(window):
                        await send_message(message)
                except TimeoutError:
                    raise refusal(
                        Status.DEADLINE_EXCEEDED,
                        "DOWNLOAD_STALLED",
                        f"the client accepted no response message for {window:g} s",
                    ) from None

            setattr(self._stream, "send_message", send_within_window)  # noqa: B010
        setattr(self._transport, "recv_data", recv_data)  # noqa: B010 - replaces a method
        setattr(self._stream, "recv_message", recv_message)  # noqa: B010 - replaces a method

    async def _receive_data(self, receive: Any, size: int) -> bytes:
        limit = self._limits.max_request_message_bytes
        if size > limit:
            raise refusal(
                Status.RESOURCE_EXHAUSTED,
                "MESSAGE_TOO_LARGE",
                f"a request message may be at most {limit} bytes; this one declares {size}; "
                "send large files as a stream of smaller chunks",
            )
        reserved = size if size > UNBUDGETED_MESSAGE_BYTES else 0
        if not self._buffers.try_reserve(reserved):
            raise refusal(
                Status.RESOURCE_EXHAUSTED,
                "OVERLOADED",
                "the server is holding as many partly received messages as it allows; "
                "retry in a moment",
            )
        try:
            while True:
                deadline = self._window_end if self._first_received else self._first_deadline
                if time.monotonic() >= deadline:
                    self._deadline_passed()
                    continue
                try:
                    async with asyncio.timeout_at(_loop_time(deadline)):
                        data: bytes = await receive(size)
                        return data
                except TimeoutError:
                    self._deadline_passed()
        finally:
            self._buffers.release(reserved)

    def _deadline_passed(self) -> None:
        """Raises when the client was too slow; otherwise starts the next progress window."""
        if not self._first_received:
            raise refusal(
                Status.DEADLINE_EXCEEDED,
                "REQUEST_TIMEOUT",
                f"the request message did not arrive within {self._limits.request_timeout:g} s",
            )
        received = stream_bytes_received(self._transport) - self._window_start_bytes
        if received < self._limits.upload_min_bytes:
            raise refusal(
                Status.DEADLINE_EXCEEDED,
                "UPLOAD_IDLE",
                f"the stream delivered {received} bytes in "
                f"{self._limits.upload_progress_window:g} s, less than the minimum of "
                f"{self._limits.upload_min_bytes}; nothing was stored",
            )
        self._start_window()

    def _start_window(self) -> None:
        if not self._progress_required:
            self._window_end = float("inf")
            return
        self._window_end = time.monotonic() + self._limits.upload_progress_window
        self._window_start_bytes = stream_bytes_received(self._transport)


def _loop_time(monotonic_deadline: float) -> float | None:
    """A ``time.monotonic`` deadline on the running loop's clock (None: no deadline)."""
    if monotonic_deadline == float("inf"):
        return None
    return asyncio.get_running_loop().time() + (monotonic_deadline - time.monotonic())
