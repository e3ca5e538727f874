"""Composition root: builds the server from settings and runs it until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import socket

from grpclib._typing import IServable
from grpclib.health.service import Health
from grpclib.utils import graceful_exit

from modelcatalog.v1 import AuthServiceBase, FolderServiceBase, ModelServiceBase

from .config import ListenAddress, Settings
from .services.reflection import with_reflection
from .transport import create_server

log = logging.getLogger("modelcatalog_server")


class StartupError(Exception):
    """The server cannot start for a reason the operator can fix; the message says which."""


def build_services(settings: Settings) -> list[IServable]:
    """Every service the server answers, with health and reflection."""
    api: list[IServable] = [AuthServiceBase(), FolderServiceBase(), ModelServiceBase()]
    health = Health({service: [] for service in api})
    return with_reflection([*api, health])


def open_listener(address: ListenAddress) -> socket.socket:
    """A listening socket; opened here so that the port the system picks for 0 is known."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        return socket.create_server((address.host, address.port), family=family)
    except OSError as error:
        raise StartupError(f"cannot listen on {address}: {error.strerror or error}") from error


async def serve(settings: Settings) -> None:
    """Runs the server until a first SIGINT/SIGTERM closes it gracefully."""
    server = create_server(build_services(settings))
    with graceful_exit([server]):
        listener = open_listener(settings.listen)
        await server.start(sock=listener)
        bound = ListenAddress(settings.listen.host, listener.getsockname()[1])
        log.info("listening on %s (plaintext)", bound)
        await server.wait_closed()
    log.info("stopped")
