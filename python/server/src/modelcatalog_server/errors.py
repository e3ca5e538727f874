"""The one place where domain errors become gRPC statuses with machine-readable details.

Every error carries a ``google.rpc.ErrorInfo`` (domain ``modelcatalog.v1``, the ErrorReason
name), for invalid fields a ``google.rpc.BadRequest`` naming the field, and for rate limits
that know when they lift a ``google.rpc.RetryInfo``. Domain errors and storage faults (a full
disk, a locked database) come through ``to_grpc_error``; refusals made before a handler runs
(``transport``) through ``refusal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from .domain import errors
from .storage.faults import StorageFault, StorageFull, StorageUnavailable

ERROR_DOMAIN = "modelcatalog.v1"
#: Longest message sent: status messages travel in an HTTP/2 trailer, whose encoding cost
#: grows faster than its length.
MESSAGE_MAX_CHARS = 1024

_STATUS: dict[type[errors.CatalogError], Status] = {
    errors.InvalidArgument: Status.INVALID_ARGUMENT,
    errors.Unauthenticated: Status.UNAUTHENTICATED,
    errors.PermissionDenied: Status.PERMISSION_DENIED,
    errors.NotFound: Status.NOT_FOUND,
    errors.AlreadyExists: Status.ALREADY_EXISTS,
    errors.FailedPrecondition: Status.FAILED_PRECONDITION,
    errors.Aborted: Status.ABORTED,
    errors.ResourceExhausted: Status.RESOURCE_EXHAUSTED,
    errors.DataLoss: Status.DATA_LOSS,
    errors.OutOfRange: Status.OUT_OF_RANGE,
    errors.DeadlineExceeded: Status.DEADLINE_EXCEEDED,
}

#: What a client learns of a storage fault: not its doing, so what it can do about it. The
#: cause (which file, which SQLite error) is only in the server log.
_FAULTS: dict[type[StorageFault], tuple[Status, str, str]] = {
    StorageFull: (
        Status.RESOURCE_EXHAUSTED,
        "STORAGE_FULL",
        "the server's storage is full, so nothing was stored; retry after its operator has "
        "made room",
    ),
    StorageUnavailable: (
        Status.UNAVAILABLE,
        "STORAGE_UNAVAILABLE",
        "the server's storage did not answer in time, so nothing was changed; retry in a moment",
    ),
}


def refusal(
    status: Status,
    reason: str,
    message: str,
    *,
    field: str | None = None,
    metadata: Mapping[str, str] | None = None,
    extra: Sequence[Message] = (),
) -> GRPCError:
    """A gRPC error carrying ``reason`` and ``metadata`` in an ErrorInfo, and the field at
    fault if one is."""
    message = message[:MESSAGE_MAX_CHARS]
    metadata = dict(metadata or {})
    details: list[Message] = []
    if field is not None:
        metadata["field"] = field
        details.append(
            BadRequest(
                field_violations=[BadRequest.FieldViolation(field=field, description=message)]
            )
        )
    details.insert(0, ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata))
    return GRPCError(status, message, [*details, *extra])


def to_grpc_error(error: errors.CatalogError | StorageFault) -> GRPCError:
    """The status, message and details a client receives for ``error``."""
    if isinstance(error, StorageFault):
        status, reason, message = next(f for cls, f in _FAULTS.items() if isinstance(error, cls))
        return refusal(status, reason, message)
    status = next(s for cls, s in _STATUS.items() if isinstance(error, cls))
    field = error.field if isinstance(error, errors.InvalidArgument) else None
    extra: list[Message] = []
    if isinstance(error, errors.ResourceExhausted) and error.retry_after_seconds is not None:
        extra.append(RetryInfo(retry_delay=Duration(seconds=error.retry_after_seconds)))
    return refusal(
        status, error.reason, error.message, field=field, metadata=error.metadata, extra=extra
    )


def internal_error() -> GRPCError:
    """What a client sees for a server fault; the cause is only in the server log."""
    return refusal(
        Status.INTERNAL, "INTERNAL", "internal server error; the server log has the details"
    )
