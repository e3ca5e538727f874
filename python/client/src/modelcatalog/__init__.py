"""The Python SDK of modelcatalog, a self-hosted model registry with a gRPC API.

``modelcatalog.v1`` holds the messages and service stubs generated from the v1 contract.
"""

from . import v1

__version__ = "0.1.0"

__all__ = ["__version__", "v1"]
