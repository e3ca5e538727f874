"""The listening socket."""

from __future__ import annotations

import socket


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
