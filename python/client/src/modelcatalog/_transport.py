"""Everything in the SDK that touches the wire, so it can be tuned in one place.

Chunk size, TLS settings, HTTP/2 settings and channel construction live here; the rest of the
SDK only sees a ready ``grpclib.client.Channel``.

The HTTP/2 tuning (large frames, bounded windows, paced acknowledgements) is
``modelcatalog.wire``'s, shared with the server; ``TunedChannel`` puts the SDK's connections on
it, through grpclib's ``Channel._protocol_factory``, ``_config`` and ``_h2_config`` (internals,
checked by ``tests/test_transport.py``).
"""

import functools
import os
import ssl
from collections.abc import Sequence
from typing import Any

from grpclib.client import Channel, Handler
from grpclib.config import Configuration
from grpclib.const import Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError
from grpclib.protocol import H2Protocol

from ._exceptions import ERROR_DOMAIN, ModelCatalogError, StatusCode, error_for
from .wire import Codec, TunedProtocol, tune_allocator

CHUNK_SIZE = 1024 * 1024
"""Bytes per streamed message. 64 KiB costs a third of the throughput; with 2 MiB frames, an
SDK upload's CPU per MiB (SDK / server, same run) was 3.30 / 4.92 ms at 256 KiB, 2.95 / 3.98 ms
at 1 MiB, 2.76 / 4.41 ms at 2 MiB and 2.68 / 5.16 ms at 4 MiB (chunks above 64 KiB draw on the
server's buffer budget; above 2 MiB they need two frames)."""

MAX_FRAME_SIZE = 2 * 1024 * 1024
"""The largest HTTP/2 frame the SDK accepts, advertised in its first SETTINGS frame.

HTTP/2's default of 16 KiB cuts each 1 MiB chunk into 64 frames, and most of the cost of
moving bytes in pure Python is per frame (parsing, flow control, events, TLS writes); at
2 MiB a chunk's message travels in one frame."""

STREAM_WINDOW = 4 * 1024 * 1024
"""Bytes a server may send on one stream before the SDK reads them (HTTP/2 flow control)."""

CONNECTION_WINDOW = 4 * 1024 * 1024
"""Bytes a server may send on one connection before the SDK reads them: the bound on what a
download the application reads slowly holds in memory."""

ALLOCATOR_MMAP_THRESHOLD = 2 * CHUNK_SIZE
"""Memory blocks below this size come from malloc's heap, where freed blocks are reused: a
chunk with its message and frame headers does; larger blocks, rare, still get their own pages,
so they cannot fragment the heap."""

ALLOCATOR_TRIM_THRESHOLD = 32 * 1024 * 1024
"""Free memory up to this size stays with the process for the next blocks."""

KEEPALIVE_INTERVAL_SECONDS = 60.0
"""How often a connection with calls in progress is pinged, so a dead server is noticed."""

KEEPALIVE_TIMEOUT_SECONDS = 20.0
"""How long a ping may go unanswered before the connection is closed and its calls fail."""


def channel_config() -> Configuration:
    """HTTP/2 keepalive for the client's connections.

    Transfers have no deadline, so without pings a transfer to a server that vanished (power
    loss, a dropped NAT entry) would wait forever. grpclib pings only while calls are in
    progress (``_keepalive_permit_without_calls`` stays off), so idle connections stay quiet.
    By default it also stops after two pings in a row without sending data and waits 5 minutes
    between pings; a download sends no data, so both limits are lifted to keep pinging every
    interval for as long as the transfer lasts. The server only answers pings (grpclib servers
    have no ping policy that could treat them as abuse). It also carries the flow-control
    windows the SDK advertises.
    """
    return Configuration(
        http2_connection_window_size=CONNECTION_WINDOW,
        http2_stream_window_size=STREAM_WINDOW,
        _keepalive_time=KEEPALIVE_INTERVAL_SECONDS,
        _keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS,
        _http2_max_pings_without_data=0,  # 0: no limit
        # Below the interval: the event loop may run the ping timer a little early.
        _http2_min_sent_ping_interval_without_data=KEEPALIVE_INTERVAL_SECONDS / 2,
    )


@functools.cache
def reuse_transfer_buffers() -> None:
    """Makes glibc's malloc reuse the memory of freed transfer buffers (once per process).

    Every MiB moved passes through several fresh buffers of about a MiB; below
    ``ALLOCATOR_MMAP_THRESHOLD`` and with up to ``ALLOCATOR_TRIM_THRESHOLD`` of free memory
    kept, a freed buffer serves the next one (see ``modelcatalog.wire.tune_allocator``).
    """
    tune_allocator(mmap_threshold=ALLOCATOR_MMAP_THRESHOLD, trim_threshold=ALLOCATOR_TRIM_THRESHOLD)


def parse_target(target: str) -> tuple[str, int]:
    """Split ``"host:port"`` or ``"[ipv6]:port"`` into host and port, rejecting anything else.

    Parsing strictly here gives a clear ``ValueError`` up front instead of a confusing
    connection error on the first RPC.
    """
    host, colon, port_text = target.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host and "[" not in host:
        raise ValueError(f"IPv6 addresses need brackets, as in '[::1]:50051': {target!r}")
    valid_port = port_text.isdecimal() and 0 < int(port_text) < 65536
    if not (colon and host and valid_port) or "[" in host or "]" in host:
        raise ValueError(f"expected a target 'host:port', got {target!r}")
    return host, int(port_text)


def tls_context(ca_cert: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A client TLS context for HTTP/2: verifies the server against ``ca_cert`` if given.

    Without ``ca_cert`` the system trust store is used. gRPC needs ALPN "h2", and TLS below
    1.2 is refused. A ``ca_cert`` file that holds no PEM certificate raises ``ValueError``
    naming it.
    """
    try:
        context = ssl.create_default_context(cafile=ca_cert)
    except ssl.SSLError as error:
        if ca_cert is None:
            raise
        why = error.reason.replace("_", " ").lower() if error.reason else "not valid PEM"
        raise ValueError(
            f"cannot load the CA certificate {os.fspath(ca_cert)} ({why});"
            " pass the PEM certificate of the server or of the CA that signed it"
        ) from error
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context


def open_channel(
    target: str,
    *,
    ca_cert: str | os.PathLike[str] | None = None,
    insecure: bool = False,
) -> Channel:
    """A channel to ``target`` over TLS, or plaintext only when ``insecure`` is true.

    The channel connects lazily, on its first RPC, and pings the server while calls are in
    progress (``channel_config``). Messages are encoded and decoded by ``modelcatalog.wire``;
    error details (google.rpc) by grpclib's codec, which grpclib only adds by itself to a
    channel with its default message codec. The process's allocator is tuned for transfers
    once (``reuse_transfer_buffers``).
    """
    if insecure and ca_cert is not None:
        raise ValueError("ca_cert has no effect with insecure=True; pass only one of them")
    host, port = parse_target(target)
    context = None if insecure else tls_context(ca_cert)
    reuse_transfer_buffers()
    return TunedChannel(
        host,
        port,
        ssl=context,
        config=channel_config(),
        codec=Codec(send_unjoined=True),  # TunedChannel sends Unjoined messages
        status_details_codec=ErrorDetailsCodec(),
    )


class ErrorDetailsCodec(ProtoStatusDetailsCodec):
    """grpclib's codec of an error's ``google.rpc`` details, loading their types at the first
    error instead of at start-up.

    grpclib finds a detail's message class in protobuf's symbol database, which knows only the
    modules imported so far; importing ``error_details_pb2`` (and protobuf with it) up front
    costs every command-line run about 50 ms, also the runs that never see an error.
    """

    def decode(self, status: Status, message: str | None, data: bytes) -> Sequence[Any]:
        import google.rpc.error_details_pb2  # noqa: F401  (registers ErrorInfo, RetryInfo, ...)

        return super().decode(status, message, data)


class TunedChannel(Channel):
    """grpclib's channel, its connections on ``TunedProtocol``."""

    def _protocol_factory(self) -> H2Protocol:
        return TunedProtocol(
            Handler(), self._config, self._h2_config, max_frame_size=MAX_FRAME_SIZE
        )


def from_grpc_error(error: GRPCError) -> ModelCatalogError:
    """Convert a grpclib error into the typed error for its status, with reason and field.

    The reason comes from the ``google.rpc.ErrorInfo`` of this API's domain among the status
    details, which grpclib has already decoded into protobuf messages; errors from elsewhere
    (proxies, grpclib itself) carry none and get ``reason=None``. A ``google.rpc.RetryInfo``
    becomes ``retry_after``.
    """
    from google.rpc.error_details_pb2 import ErrorInfo, RetryInfo

    details = error.details or ()
    info = next((d for d in details if isinstance(d, ErrorInfo) and d.domain == ERROR_DOMAIN), None)
    retry = next((d for d in details if isinstance(d, RetryInfo)), None)
    return error_for(
        StatusCode(error.status.value),
        error.message or "",
        reason=info.reason if info else None,
        metadata=dict(info.metadata) if info else None,
        retry_after=retry.retry_delay.ToTimedelta().total_seconds() if retry else None,
    )
