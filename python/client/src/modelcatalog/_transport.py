"""Everything in the SDK that touches the wire, so it can be tuned in one place.

Chunk size, TLS settings and channel construction live here; the rest of the SDK only sees a
ready ``grpclib.client.Channel``.
"""

import os
import ssl

from grpclib.client import Channel

CHUNK_SIZE = 1024 * 1024
"""Bytes per streamed message: 256 KiB to 4 MiB stream alike, 64 KiB costs a third."""


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
    1.2 is refused.
    """
    context = ssl.create_default_context(cafile=ca_cert)
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

    The channel connects lazily, on its first RPC.
    """
    if insecure and ca_cert is not None:
        raise ValueError("ca_cert has no effect with insecure=True; pass only one of them")
    host, port = parse_target(target)
    return Channel(host, port, ssl=None if insecure else tls_context(ca_cert))
