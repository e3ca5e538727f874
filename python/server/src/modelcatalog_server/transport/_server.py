"""The server: the listener, TLS, and a guarded HTTP/2 protocol per connection."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Collection
from pathlib import Path

from grpclib._typing import IServable
from grpclib.const import Handler
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from h2.config import H2Configuration

from ._codec import RequestCodec
from ._guards import RequestGuards
from ._http2 import GuardedHandler, GuardedProtocol
from ._limits import TransportLimits
from ._listener import Listener, connection_budget
from ._upstream import Configuration, _DispatchServerEvents

#: Close a connection whose peer has not answered a keepalive ping for this long.
KEEPALIVE_TIMEOUT_SECONDS = 20.0
#: Ping a connection with calls this often, to find dead peers behind NATs and load balancers.
KEEPALIVE_INTERVAL_SECONDS = 300.0
#: HTTP/2 requires TLS 1.2+ with AEAD ciphers (RFC 7540 section 9.2).
_HTTP2_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


class Server:
    """Serves ``services`` (already guarded by ``guards``) over HTTP/2 within ``guards.limits``."""

    def __init__(self, services: Collection[IServable], guards: RequestGuards) -> None:
        self._mapping: dict[str, Handler] = {}
        for service in services:
            self._mapping.update(service.__mapping__())
        self._guards = guards
        self._limits: TransportLimits = guards.limits
        self._codec = RequestCodec(send_unjoined=True)  # its connections are tuned ones
        self._details_codec = ProtoStatusDetailsCodec()
        self._dispatch = _DispatchServerEvents()
        self._config = Configuration(
            _keepalive_time=KEEPALIVE_INTERVAL_SECONDS,
            _keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS,
        ).__for_server__()
        self._h2_config = H2Configuration(
            client_side=False,
            header_encoding="ascii",
            validate_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_inbound_headers=False,
            normalize_outbound_headers=False,
        )
        #: Connections past their TLS handshake, until they close.
        self._protocols: set[GuardedProtocol] = set()
        self._listener: Listener | None = None
        self._closed = asyncio.Event()

    async def start(self, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        """Starts accepting connections on the listening socket ``sock``."""
        self._listener = Listener(
            sock,
            self._protocol_for,
            tls=tls,
            max_connections=connection_budget(self._limits.max_connections),
            max_connections_per_peer=self._limits.max_connections_per_peer,
            handshake_timeout=self._limits.tls_handshake_timeout,
            connection_rate=self._limits.connections_per_peer,
        )
        self._listener.start()

    def close(self) -> None:
        """Stops accepting, cancels every call in progress and closes every connection."""
        if self._listener is not None:
            self._listener.close()
        for protocol in list(self._protocols):
            protocol.goaway()
        self._closed.set()

    async def wait_closed(self) -> None:
        """Waits until ``close`` was called and every cancelled call has finished."""
        await self._closed.wait()
        handlers = [protocol.handler.wait_closed() for protocol in self._protocols]
        if handlers:
            await asyncio.gather(*handlers)

    def _protocol_for(self, release: Callable[[bool], None]) -> GuardedProtocol:
        handler = GuardedHandler(
            self._mapping, self._codec, self._details_codec, self._dispatch, self._guards
        )
        return GuardedProtocol(
            handler,
            self._config,
            self._h2_config,
            self._limits,
            self._guards,
            self._protocols,
            release,
        )


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ context that negotiates HTTP/2 (ALPN h2) with ``cert`` and ``key``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_HTTP2_CIPHERS)
    # Every suite left is an AEAD with forward secrecy; the client knows whether it has AES
    # hardware, so its preference decides, as grpcio's server lets it (AES-128-GCM costs less
    # CPU per byte than the AES-256-GCM OpenSSL's order would impose).
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(cert, key)
    return context
