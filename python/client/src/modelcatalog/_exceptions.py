"""The errors the SDK raises, one class per way an RPC can fail.

Callers catch these instead of grpclib's ``GRPCError`` so that they never depend on the
transport, and branch on ``reason`` (the server's machine-readable ``ErrorReason`` name, for
example ``"USERNAME_TAKEN"``) rather than on message text. The hierarchy::

    ModelCatalogError
    ├── Unauthenticated ........ no, invalid or expired token; wrong username or password
    ├── PermissionDenied ....... no role that allows the RPC (or the resource does not exist)
    ├── NotFound
    ├── AlreadyExists
    ├── InvalidArgument ........ ``field`` names the offending request field
    ├── FailedPrecondition
    ├── ResourceExhausted ...... ``retry_after`` says when a rate limit lifts, if known
    ├── DataLoss
    ├── OutOfRange
    ├── Cancelled
    ├── DeadlineExceeded ....... the per-RPC timeout ran out
    ├── Unavailable ............ the server cannot be reached (refused, TLS failure, reset)
    └── ServerError ............ INTERNAL, UNKNOWN, UNIMPLEMENTED and any other status
"""

from collections.abc import Mapping

from google.rpc.error_details_pb2 import ErrorInfo, RetryInfo
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from ._text import printable

ERROR_DOMAIN = "modelcatalog.v1"
"""The ``ErrorInfo.domain`` of the errors this API's server sends."""


class ModelCatalogError(Exception):
    """Base class of every error the SDK raises, so one ``except`` catches them all.

    ``message`` is the text as the server sent it; ``str(error)`` is the same text with
    control and bidi characters written as escapes (``\\x1b``), so printing an error cannot
    steer the terminal.
    """

    def __init__(
        self,
        status: Status,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(printable(message))
        self.status = status
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.field = self.metadata.get("field")
        self.retry_after = retry_after
        """Seconds to wait before retrying, from the server's ``google.rpc.RetryInfo``."""


class Unauthenticated(ModelCatalogError):
    """The token is missing, invalid or expired, or the credentials are wrong."""


class PermissionDenied(ModelCatalogError):
    """The caller may not do this; the resource may or may not exist."""


class NotFound(ModelCatalogError):
    """A named user or version does not exist."""


class AlreadyExists(ModelCatalogError):
    """The name is already taken."""


class InvalidArgument(ModelCatalogError):
    """A request field is malformed or out of its limits; ``field`` names it."""


class FailedPrecondition(ModelCatalogError):
    """The request is valid but the current state forbids it (e.g. removing the last owner)."""


class ResourceExhausted(ModelCatalogError):
    """A size or rate limit was exceeded."""


class DataLoss(ModelCatalogError):
    """Bytes were damaged on the way; nothing was stored."""


class OutOfRange(ModelCatalogError):
    """An offset lies beyond the end of the data."""


class Cancelled(ModelCatalogError):
    """The RPC was cancelled before it completed."""


class DeadlineExceeded(ModelCatalogError):
    """The RPC did not complete within its timeout."""


class Unavailable(ModelCatalogError):
    """The server could not be reached or the connection broke; retrying later may help."""


class ServerError(ModelCatalogError):
    """The server failed in a way the client did not cause; report it."""


_CLASS_BY_STATUS: dict[Status, type[ModelCatalogError]] = {
    Status.UNAUTHENTICATED: Unauthenticated,
    Status.PERMISSION_DENIED: PermissionDenied,
    Status.NOT_FOUND: NotFound,
    Status.ALREADY_EXISTS: AlreadyExists,
    Status.INVALID_ARGUMENT: InvalidArgument,
    Status.FAILED_PRECONDITION: FailedPrecondition,
    Status.RESOURCE_EXHAUSTED: ResourceExhausted,
    Status.DATA_LOSS: DataLoss,
    Status.OUT_OF_RANGE: OutOfRange,
    Status.CANCELLED: Cancelled,
    Status.DEADLINE_EXCEEDED: DeadlineExceeded,
    Status.UNAVAILABLE: Unavailable,
}


def from_grpc_error(error: GRPCError) -> ModelCatalogError:
    """Convert a grpclib error into the typed error for its status, with reason and field.

    The reason comes from the ``google.rpc.ErrorInfo`` of this API's domain among the status
    details, which grpclib has already decoded into protobuf messages; errors from elsewhere
    (proxies, grpclib itself) carry none and get ``reason=None``. A ``google.rpc.RetryInfo``
    becomes ``retry_after``.
    """
    info = next(
        (
            detail
            for detail in error.details or ()
            if isinstance(detail, ErrorInfo) and detail.domain == ERROR_DOMAIN
        ),
        None,
    )
    retry = next((d for d in error.details or () if isinstance(d, RetryInfo)), None)
    retry_after = retry.retry_delay.ToTimedelta().total_seconds() if retry else None
    error_class = _CLASS_BY_STATUS.get(error.status, ServerError)
    message = error.message or error.status.name
    if info is None:
        return error_class(error.status, message, retry_after=retry_after)
    return error_class(
        error.status, message, reason=info.reason, metadata=info.metadata, retry_after=retry_after
    )
