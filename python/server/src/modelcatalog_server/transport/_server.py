"""The grpclib server and its TLS context."""

from __future__ import annotations

import ssl
from collections.abc import Collection
from pathlib import Path

from grpclib._typing import IServable
from grpclib.config import Configuration
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.server import Server

from ._codec import RequestCodec

#: Close a connection whose peer has not answered a keepalive ping for this long.
KEEPALIVE_TIMEOUT_SECONDS = 20.0
#: Ping an idle connection this often, to find dead peers behind NATs and load balancers.
KEEPALIVE_INTERVAL_SECONDS = 300.0
#: HTTP/2 requires TLS 1.2+ with AEAD ciphers (RFC 7540 section 9.2).
_HTTP2_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


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
