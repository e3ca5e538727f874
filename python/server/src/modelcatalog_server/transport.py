"""Everything the server puts on the wire is configured here, so it can be tuned in one place."""

from __future__ import annotations

from collections.abc import Collection

from grpclib._typing import IServable
from grpclib.config import Configuration
from grpclib.server import Server

#: Close a connection whose peer has not answered a keepalive ping for this long.
KEEPALIVE_TIMEOUT_SECONDS = 20.0
#: Ping an idle connection this often, to find dead peers behind NATs and load balancers.
KEEPALIVE_INTERVAL_SECONDS = 300.0


def create_server(services: Collection[IServable]) -> Server:
    """A grpclib server for ``services`` with bounded HTTP/2 windows and keepalive."""
    config = Configuration(
        _keepalive_time=KEEPALIVE_INTERVAL_SECONDS,
        _keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS,
    )
    return Server(services, config=config)
