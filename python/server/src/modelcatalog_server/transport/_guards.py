"""Request guards: what a stream must satisfy before and while its handler reads it."""

from __future__ import annotations

from typing import Any

from grpclib.const import Status
from grpclib.server import Stream

from ..errors import refusal

#: The largest request message accepted: an upload chunk of at most 4 MiB plus its framing.
MAX_REQUEST_MESSAGE_BYTES = (4 << 20) + (64 << 10)


def guard_requests(
    stream: Stream[Any, Any], *, single: bool, limit: int = MAX_REQUEST_MESSAGE_BYTES
) -> None:
    """Makes malformed request streams the client's error, before any handler code runs.

    grpclib reads each message's declared length and then buffers that many bytes with no
    bound of its own, so one message could claim gigabytes: a length above ``limit`` is
    refused before it is read. A stream that ends inside a message, or a unary call that
    sends no message at all, would otherwise surface as a server fault (INTERNAL).
    """
    transport_stream = stream._stream
    receive_data = transport_stream.recv_data
    receive_message = stream.recv_message

    async def bounded_receive_data(size: int) -> bytes:
        if size > limit:
            raise refusal(
                Status.RESOURCE_EXHAUSTED,
                "MESSAGE_TOO_LARGE",
                f"a request message may be at most {limit} bytes; this one declares {size}; "
                "send large files as a stream of smaller chunks",
            )
        try:
            return await receive_data(size)
        except AssertionError:
            raise refusal(
                Status.INVALID_ARGUMENT,
                "MALFORMED_REQUEST",
                "the request stream ended inside a message",
            ) from None

    async def present_message() -> Any:
        message = await receive_message()
        if message is None:
            raise refusal(
                Status.INVALID_ARGUMENT, "MALFORMED_REQUEST", "the call carries no request message"
            )
        return message

    setattr(transport_stream, "recv_data", bounded_receive_data)  # noqa: B010 - replaces a method
    if single:
        setattr(stream, "recv_message", present_message)  # noqa: B010 - replaces a method
