"""Everything the server puts on the wire is configured here, so it can be tuned in one place."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Collection
from pathlib import Path
from typing import Any

from grpclib._typing import IServable
from grpclib.config import Configuration
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec, ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

#: Close a connection whose peer has not answered a keepalive ping for this long.
KEEPALIVE_TIMEOUT_SECONDS = 20.0
#: Ping an idle connection this often, to find dead peers behind NATs and load balancers.
KEEPALIVE_INTERVAL_SECONDS = 300.0
#: The largest request message accepted: an upload chunk of at most 4 MiB plus its framing.
MAX_REQUEST_MESSAGE_BYTES = (4 << 20) + (64 << 10)
#: HTTP/2 requires TLS 1.2+ with AEAD ciphers (RFC 7540 section 9.2).
_HTTP2_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


class RequestCodec(ProtoCodec):
    """Protobuf, reporting bytes that do not decode as the request's fault, not the server's."""

    def decode(self, data: bytes, message_type: Any) -> Any:
        try:
            return super().decode(data, message_type)
        except Exception:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"the request is not a valid {message_type.__name__} message",
            ) from None


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
            raise GRPCError(
                Status.RESOURCE_EXHAUSTED,
                f"a request message may be at most {limit} bytes; this one declares {size}; "
                "send large files as a stream of smaller chunks",
            )
        try:
            return await receive_data(size)
        except AssertionError:
            raise GRPCError(
                Status.INVALID_ARGUMENT, "the request stream ended inside a message"
            ) from None

    async def present_message() -> Any:
        message = await receive_message()
        if message is None:
            raise GRPCError(Status.INVALID_ARGUMENT, "the call carries no request message")
        return message

    setattr(transport_stream, "recv_data", bounded_receive_data)  # noqa: B010 - replaces a method
    if single:
        setattr(stream, "recv_message", present_message)  # noqa: B010 - replaces a method


def create_server(services: Collection[IServable]) -> Server:
    """A grpclib server for ``services`` with bounded HTTP/2 windows and keepalive."""
    config = Configuration(
        _keepalive_time=KEEPALIVE_INTERVAL_SECONDS,
        _keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS,
    )
    return Server(
        services,
        codec=RequestCodec(),
        status_details_codec=ProtoStatusDetailsCodec(),
        config=config,
    )


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ context that negotiates HTTP/2 (ALPN h2) with ``cert`` and ``key``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_HTTP2_CIPHERS)
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(cert, key)
    return context


def open_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket, opened here so that the port the system picks for 0 is known.

    It is created with protocol IPPROTO_TCP explicitly: asyncio and grpclib turn Nagle's
    algorithm off (TCP_NODELAY) only on sockets that say so, and without it every small
    response waits for the peer's delayed ACK (about 40 ms per unary RPC on Linux).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind((host, port))
        listener.listen(socket.SOMAXCONN)
    except OSError:
        listener.close()
        raise
    return listener
