"""The Python SDK of modelcatalog, a self-hosted model registry with a gRPC API.

``Client`` is the entry point for synchronous code and ``AsyncClient`` for asyncio; they have the
same methods, and every error they raise is a ``ModelCatalogError`` (carrying a ``StatusCode``).
``modelcatalog.v1`` holds the messages and service stubs generated from the v1 contract;
``modelcatalog.wire`` encodes and decodes those messages (the SDK's and the server's codec).

The SDK's names are imported on first use (PEP 562 ``__getattr__``): they pull in grpclib,
betterproto, protobuf and the generated code, which the ``modelcatalog`` command line must
not pay for when it only prints its help. ``from modelcatalog import Client`` works as usual.
"""

import typing as _typing
from importlib import import_module as _import_module

if _typing.TYPE_CHECKING:
    from . import v1, wire
    from ._client import AsyncClient, DownloadedFile, ProgressCallback
    from ._exceptions import (
        Aborted,
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
        StatusCode,
        Unauthenticated,
        Unavailable,
    )
    from ._sync_client import Client

__version__ = "0.1.0"

__all__ = [
    "Aborted",
    "AlreadyExists",
    "AsyncClient",
    "Cancelled",
    "Client",
    "DataLoss",
    "DeadlineExceeded",
    "DownloadedFile",
    "FailedPrecondition",
    "InvalidArgument",
    "ModelCatalogError",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "ProgressCallback",
    "ResourceExhausted",
    "ServerError",
    "StatusCode",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "v1",
    "wire",
]

_HOMES = {
    "AsyncClient": "._client",
    "DownloadedFile": "._client",
    "ProgressCallback": "._client",
    "Client": "._sync_client",
}
_HOMES.update(
    (name, "._exceptions") for name in __all__ if name not in {*_HOMES, "__version__", "v1", "wire"}
)
"""The module each lazily imported name of ``__all__`` (except the subpackages) lives in."""


def __getattr__(name: str) -> object:
    """Import an SDK name on first access and keep it, so later lookups are plain globals."""
    if name in {"v1", "wire"}:
        return _import_module(f".{name}", __name__)  # importing binds it on the package itself
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the not yet imported SDK names included."""
    return sorted({*globals(), *__all__})
