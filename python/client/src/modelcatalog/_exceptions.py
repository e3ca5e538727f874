"""The errors the SDK raises, one class per way an RPC can fail.

Callers catch these, never a transport's exception, and branch on ``status`` (the SDK's own
``StatusCode``) and ``reason`` (the server's machine-readable ``ErrorReason`` name, for example
``"USERNAME_TAKEN"``) rather than on message text. The hierarchy::

    ModelCatalogError
    ├── Unauthenticated ........ no, invalid or expired token; wrong username or password
    ├── PermissionDenied ....... no role that allows the RPC (or the resource does not exist)
    ├── NotFound
    ├── AlreadyExists
    ├── InvalidArgument ........ ``field`` names the offending request field
    ├── FailedPrecondition
    ├── Aborted ................ a compare-and-swap lost: ``metadata`` holds the current state
    ├── ResourceExhausted ...... ``retry_after`` says when a rate limit lifts, if known
    ├── DataLoss
    ├── OutOfRange
    ├── Cancelled
    ├── DeadlineExceeded ....... the per-RPC timeout ran out
    ├── Unavailable ............ the server cannot be reached (refused, TLS failure, reset)
    └── ServerError ............ INTERNAL, UNKNOWN, UNIMPLEMENTED and any other status
"""

import enum
from collections.abc import Mapping

from ._text import printable

ERROR_DOMAIN = "modelcatalog.v1"
"""The ``ErrorInfo.domain`` of the errors this API's server sends."""


class StatusCode(enum.IntEnum):
    """The gRPC status codes (their numbers are the wire's), so that errors name their code
    without the SDK's users importing its transport."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    def __str__(self) -> str:
        """The code's name (``PERMISSION_DENIED``), as gRPC tools print it, not its number."""
        return self.name


class ModelCatalogError(Exception):
    """Base class of every error the SDK raises, so one ``except`` catches them all.

    ``message`` is the text as the server sent it; ``str(error)`` is the same text with
    control and bidi characters written as escapes (``\\x1b``), so printing an error cannot
    steer the terminal.
    """

    def __init__(
        self,
        status: StatusCode,
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


class Aborted(ModelCatalogError):
    """A compare-and-swap found another state than it expected (an alias moved meanwhile),
    so nothing changed; ``metadata`` says what the state is now (``"current_version"``)."""


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


_CLASS_BY_STATUS: dict[StatusCode, type[ModelCatalogError]] = {
    StatusCode.UNAUTHENTICATED: Unauthenticated,
    StatusCode.PERMISSION_DENIED: PermissionDenied,
    StatusCode.NOT_FOUND: NotFound,
    StatusCode.ALREADY_EXISTS: AlreadyExists,
    StatusCode.INVALID_ARGUMENT: InvalidArgument,
    StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    StatusCode.ABORTED: Aborted,
    StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    StatusCode.DATA_LOSS: DataLoss,
    StatusCode.OUT_OF_RANGE: OutOfRange,
    StatusCode.CANCELLED: Cancelled,
    StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    StatusCode.UNAVAILABLE: Unavailable,
}


def error_for(
    status: StatusCode,
    message: str,
    *,
    reason: str | None = None,
    metadata: Mapping[str, str] | None = None,
    retry_after: float | None = None,
) -> ModelCatalogError:
    """The typed error for a status: its class (``ServerError`` for codes without one)."""
    error_class = _CLASS_BY_STATUS.get(status, ServerError)
    return error_class(
        status, message or status.name, reason=reason, metadata=metadata, retry_after=retry_after
    )
