"""Domain errors: what went wrong, in the API's own reasons, with no knowledge of gRPC.

``modelcatalog_server.errors`` is the one place that turns them into gRPC statuses::

    CatalogError
    ├── InvalidArgument      a request field is malformed (names the field)
    ├── Unauthenticated      no, bad or expired token; wrong credentials
    ├── PermissionDenied     no role that allows it (same for missing resources)
    ├── NotFound             a named user, version or alias does not exist
    ├── AlreadyExists        a unique name is taken
    ├── FailedPrecondition   the change would break an invariant (last owner, not empty)
    ├── Aborted              a compare-and-swap found another value than expected
    ├── ResourceExhausted    a size or rate limit was exceeded (maybe with a time to wait)
    ├── DataLoss             uploaded bytes do not match their declared digest
    ├── OutOfRange           a download offset is past the end
    └── DeadlineExceeded     a client stopped sending in the middle of a stream
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base of every error a client can cause.

    ``reason`` is the name of an ErrorReason value, which the client receives in the error's
    ErrorInfo. Every raise names one: there is no default, so no error can leave without a
    declared reason (tests/test_error_reasons.py checks each name the server uses).
    ``metadata`` goes into the ErrorInfo too: what the client needs to decide again (where an
    alias points now, which aliases hold a version).
    """

    def __init__(
        self, message: str, *, reason: str, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}


class InvalidArgument(CatalogError):
    """A request field is malformed or out of its limits (reason INVALID_FIELD unless said)."""

    def __init__(self, field: str, message: str, *, reason: str = "INVALID_FIELD") -> None:
        super().__init__(message, reason=reason)
        self.field = field


class Unauthenticated(CatalogError):
    """The caller could not be identified."""


class PermissionDenied(CatalogError):
    """The caller may not do this, or the resource does not exist; the two are not told apart."""


class NotFound(CatalogError):
    """A resource the caller may know about does not exist."""


class AlreadyExists(CatalogError):
    """A unique name is already taken."""


class FailedPrecondition(CatalogError):
    """The request is well-formed but the current state does not allow it; ``metadata`` says
    what the state is, when the client needs that to go on."""


class Aborted(CatalogError):
    """A conditional change found the state other than the caller expected; nothing changed.
    ``metadata`` tells the client what the state is now, so that it can decide again."""


class ResourceExhausted(CatalogError):
    """A size or rate limit was exceeded; ``retry_after_seconds`` says when a rate limit
    lets the same call through again, when that is known."""

    def __init__(
        self, message: str, *, reason: str, retry_after_seconds: int | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds


class DataLoss(CatalogError):
    """Bytes were damaged on the way; nothing was stored."""


class OutOfRange(CatalogError):
    """A position lies beyond the end of the data."""


class DeadlineExceeded(CatalogError):
    """A client went quiet for longer than the server waits."""
