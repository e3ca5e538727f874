"""The modelcatalog server: an asyncio gRPC server (grpclib) for the v1 contract."""

from .app import Application, build_application, serve
from .config import ListenAddress, Settings, parse_settings

__all__ = [
    "Application",
    "ListenAddress",
    "Settings",
    "build_application",
    "parse_settings",
    "serve",
]
