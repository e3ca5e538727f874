"""Per-RPC plumbing around every method: authentication, errors, and the access log.

``intercept`` wraps each handler of each service, so that every call is authenticated before
its handler runs, domain errors leave as gRPC statuses (``errors.py``), unexpected ones as
INTERNAL without leaking internals, and exactly one structured log line records the call, as
do its metrics (``metrics``). The call's caller, token and address are handed to the audit
trail (``domain.audit.enter_call``), which also records an audited call's refusal.
Wrapping the handlers (rather than listening to server events) keeps this plumbing identical
under the real server and grpclib's in-memory ``ChannelFor`` used by the unit tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection
from typing import Any

from grpclib._typing import IServable
from grpclib.const import Handler, Status
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.server import Stream

from . import metrics
from .auth.hook import Authenticator, set_current_peer
from .domain import audit
from .domain.audit_trail import AuditTrail
from .domain.errors import CatalogError
from .domain.slots import SlotLimits, Slots
from .errors import internal_error, refusal, to_grpc_error
from .peers import peer_key
from .storage.faults import StorageFault
from .transport import call_bytes

access_log = logging.getLogger("modelcatalog_server.access")
log = logging.getLogger("modelcatalog_server")

MethodFunc = Any

#: Response streams callers may keep open without signing in (Health/Watch, reflection): from
#: one address (IPv6: one /64), and in all. Such a call has no end of its own and holds its
#: request headers while it lasts; one per connection is what a gRPC client with client-side
#: health checking opens, so the caps match the default connection caps.
PUBLIC_STREAM_LIMITS = SlotLimits(total=1000, per_user=1000, per_peer=100)
#: The user that public streams are counted under.
_ANONYMOUS = "-"


class _Intercepted:
    """A service whose handlers all pass through ``_call``."""

    def __init__(
        self,
        service: IServable,
        authenticator: Authenticator,
        trail: AuditTrail,
        public_streams: Slots,
    ) -> None:
        self._service = service
        self._authenticator = authenticator
        self._trail = trail
        self._public_streams = public_streams

    def __mapping__(self) -> dict[str, Handler]:
        return {
            method: handler._replace(func=self._wrap(method, handler))
            for method, handler in self._service.__mapping__().items()
        }

    def _wrap(self, method: str, handler: Handler) -> MethodFunc:
        authenticator = self._authenticator
        trail = self._trail
        public_streams = self._public_streams
        action = method.rpartition("/")[2]
        streaming = handler.cardinality.server_streaming

        async def call(stream: Stream[Any, Any]) -> None:
            started = time.perf_counter()
            status = Status.OK
            user_id = "-"
            address = peer_address(stream)
            host = address[0] if address else None
            set_current_peer(host)
            peer = f"{address[0]}:{address[1]}" if address else "-"
            try:
                metadata = stream.metadata.getall("authorization", []) if stream.metadata else []
                authorization = [value for value in metadata if isinstance(value, str)]
                principal = await authenticator.authenticate(method, authorization)
                audited = audit.Call(action, peer=host)
                if principal is not None:
                    user_id = principal.user_id
                    audited.user_id, audited.token_id = user_id, principal.token_id
                    audited.token_name = principal.access_token_name
                audit.enter_call(audited)
                if principal is not None:
                    authenticator.authorize(method, principal)
                held = (
                    public_streams.taken(_ANONYMOUS, peer_key(host))
                    if principal is None and streaming
                    else contextlib.nullcontext()
                )
                try:
                    with held:
                        await handler.func(stream)
                finally:
                    trail.ended(audited)
            except (CatalogError, StorageFault) as error:
                if isinstance(error, CatalogError):
                    await trail.refused(error)
                grpc_error = to_grpc_error(error)
                status = grpc_error.status
                raise grpc_error from None
            except GRPCError as error:
                status = error.status
                raise
            except NotImplementedError:  # grpclib's answer to a compressed request message
                status = Status.UNIMPLEMENTED
                raise refusal(
                    status,
                    "COMPRESSION_UNSUPPORTED",
                    "compressed request messages are not supported; send them uncompressed",
                ) from None
            except (asyncio.CancelledError, StreamTerminatedError):
                status = Status.CANCELLED
                raise
            except Exception:
                status = Status.INTERNAL
                log.exception("unexpected error in %s", method)
                raise internal_error() from None
            finally:
                asyncio.get_running_loop().call_soon(
                    _record,
                    method,
                    status,
                    time.perf_counter() - started,
                    user_id,
                    peer,
                    *call_bytes(stream),
                )

        return call


def _record(
    method: str, status: Status, seconds: float, user_id: str, peer: str, received: int, sent: int
) -> None:
    """Writes the call's access log line and counts it in the metrics.

    Scheduled when the handler returns rather than run in it: grpclib sends the trailers
    after that, and a call that answered has already scheduled the flush of its connection's
    writes (``CoalescingTransport``), which runs first, so the log's write does not delay the
    answer.
    """
    access_log.info(
        "rpc method=%s status=%s duration_ms=%.1f user=%s peer=%s",
        method,
        status.name,
        seconds * 1000,
        user_id,
        peer,
    )
    metrics.record_call(method, status.name, seconds, received, sent)


def intercept(
    services: Collection[IServable], authenticator: Authenticator, trail: AuditTrail
) -> list[IServable]:
    """``services`` with every method wrapped in authentication, error translation, logging
    and the recording of refusals; response streams that need no sign-in share one set of
    slots (``PUBLIC_STREAM_LIMITS``)."""
    public_streams = Slots("public stream", PUBLIC_STREAM_LIMITS, logged=False)
    return [_Intercepted(service, authenticator, trail, public_streams) for service in services]


def peer_address(stream: Stream[Any, Any]) -> tuple[str, int] | None:
    """The caller's IP address and port, read before the call runs; None once the connection
    is gone (a closed asyncio TLS transport fails ``get_extra_info`` with AttributeError)."""
    try:
        address = stream.peer.addr() if stream.peer else None
    except AttributeError:
        return None
    return (str(address[0]), int(address[1])) if address else None
