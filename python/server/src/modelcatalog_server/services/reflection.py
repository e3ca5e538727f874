"""gRPC server reflection (v1 and v1alpha) served from the Buf image of our protos.

The image is generated next to the betterproto code (``scripts/generate``), so reflection
describes exactly the contract the server was built from, comments included, and clients
such as ``buf curl`` or ``grpcurl`` need no proto files.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from google.protobuf import descriptor_pb2, descriptor_pool
from grpclib._typing import IServable
from grpclib.health.v1 import health_pb2
from grpclib.reflection.service import ServerReflection
from grpclib.reflection.v1 import reflection_pb2 as reflection_v1_pb2
from grpclib.reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2

IMAGE_PACKAGE = "modelcatalog._gen"
IMAGE_FILE = "modelcatalog.binpb"


def load_descriptor_pool() -> descriptor_pool.DescriptorPool:
    """A pool with our contract, its imports, and the health and reflection protos."""
    image = descriptor_pb2.FileDescriptorSet.FromString(
        resources.files(IMAGE_PACKAGE).joinpath(IMAGE_FILE).read_bytes()
    )
    pool = descriptor_pool.DescriptorPool()
    for file in image.file:
        pool.Add(file)
    for module in (health_pb2, reflection_v1_pb2, reflection_v1alpha_pb2):
        file = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(file)
        pool.Add(file)
    return pool


def with_reflection(services: Sequence[IServable]) -> list[IServable]:
    """``services`` plus the reflection services that describe them."""
    return ServerReflection.extend(services, pool=load_descriptor_pool())
