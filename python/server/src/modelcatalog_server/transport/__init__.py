"""Everything between the socket and a handler: listener, TLS, HTTP/2, codec, request guards.

Handlers never see a malformed, oversized or abusive stream: this package refuses it first,
with the status and ``ErrorInfo`` reason that ``modelcatalog_server.errors`` gives every
refusal. Every grpclib and h2 internal the server relies on is named in ``_upstream``.
"""

from ._codec import RequestCodec
from ._guards import MAX_REQUEST_MESSAGE_BYTES, guard_requests
from ._listener import open_listener
from ._server import create_server, server_tls_context

__all__ = [
    "MAX_REQUEST_MESSAGE_BYTES",
    "RequestCodec",
    "create_server",
    "guard_requests",
    "open_listener",
    "server_tls_context",
]
