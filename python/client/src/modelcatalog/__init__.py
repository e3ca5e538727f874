"""The Python SDK of modelcatalog, a self-hosted model registry with a gRPC API.

``Client`` is the async entry point; every error it raises is a ``ModelCatalogError``.
``modelcatalog.v1`` holds the messages and service stubs generated from the v1 contract.
"""

from . import v1
from ._client import Client, ProgressCallback
from ._exceptions import (
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ModelCatalogError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    ServerError,
    Unauthenticated,
    Unavailable,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "Client",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "ModelCatalogError",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ProgressCallback",
    "ResourceExhausted",
    "ServerError",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "v1",
]
