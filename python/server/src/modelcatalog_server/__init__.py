"""The modelcatalog server: an asyncio gRPC server (grpclib) for the v1 contract."""

from .app import build_services, serve
from .config import ListenAddress, Settings, parse_settings

__all__ = ["ListenAddress", "Settings", "build_services", "parse_settings", "serve"]
