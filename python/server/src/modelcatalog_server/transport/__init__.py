"""Everything between the socket and a handler: listener, TLS, HTTP/2, codec, request guards.

Handlers never see a malformed, oversized or abusive stream: this package refuses it first,
with the status and ``ErrorInfo`` reason that ``modelcatalog_server.errors`` gives every
refusal. Every grpclib and h2 internal the server relies on is named in ``_upstream``. The
HTTP/2 tuning is the SDK's (``modelcatalog.wire``), shared.
"""

from ._codec import RequestCodec
from ._guards import RequestGuards
from ._limits import MAX_REQUEST_MESSAGE_BYTES, RateLimit, TransportLimits
from ._listener import open_listener, reserve_port
from ._server import Server, server_tls_context
from ._upstream import call_bytes

__all__ = [
    "MAX_REQUEST_MESSAGE_BYTES",
    "RateLimit",
    "RequestCodec",
    "RequestGuards",
    "Server",
    "TransportLimits",
    "call_bytes",
    "open_listener",
    "reserve_port",
    "server_tls_context",
]
