"""Everything in the SDK that touches the wire, so it can be tuned in one place.

Chunk size, TLS settings and channel construction live here; the rest of the SDK only sees a
ready ``grpclib.client.Channel``.
"""

import os
import ssl

from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.encoding.proto import ProtoStatusDetailsCodec

from .wire import Codec

CHUNK_SIZE = 1024 * 1024
"""Bytes per streamed message: 256 KiB to 4 MiB stream alike, 64 KiB costs a third."""

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
    have no ping policy that could treat them as abuse).
    """
    return Configuration(
        _keepalive_time=KEEPALIVE_INTERVAL_SECONDS,
        _keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS,
        _http2_max_pings_without_data=0,  # 0: no limit
        # Below the interval: the event loop may run the ping timer a little early.
        _http2_min_sent_ping_interval_without_data=KEEPALIVE_INTERVAL_SECONDS / 2,
    )


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
    channel with its default message codec.
    """
    if insecure and ca_cert is not None:
        raise ValueError("ca_cert has no effect with insecure=True; pass only one of them")
    host, port = parse_target(target)
    context = None if insecure else tls_context(ca_cert)
    return Channel(
        host,
        port,
        ssl=context,
        config=channel_config(),
        codec=Codec(),
        status_details_codec=ProtoStatusDetailsCodec(),
    )
