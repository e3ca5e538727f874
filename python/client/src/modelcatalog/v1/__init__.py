"""The v1 contract: betterproto messages, enums and stubs, and the standard protobuf stubs.

The betterproto classes the SDK uses (``from modelcatalog.v1 import ModelServiceStub``) are
generated into ``modelcatalog._gen`` and re-exported here, under their stable public name.

Beside this file, ``scripts/generate`` writes the standard protobuf and grpcio stubs for users
of grpcio (``from modelcatalog.v1 import model_service_pb2, model_service_pb2_grpc``): protoc
names their modules after the proto files, so they must live in this package. Every
``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` here is generated and never edited by hand;
this file is the only hand-written one. The ``_pb2`` modules need only protobuf; the
``_pb2_grpc`` modules need grpcio (``pip install 'modelcatalog[grpcio]'``).
"""

from importlib import resources as _resources

from .._gen.modelcatalog.v1 import *  # noqa: F403


def file_descriptor_set() -> bytes:
    """The contract as a serialized ``google.protobuf.FileDescriptorSet``, comments included.

    Every file of the workspace (the v1 protos and the ``google/rpc`` error details) and the
    well-known types they import, as Buf built them: what gRPC server reflection serves and
    what dynamic clients and tools load.
    """
    return _resources.files("modelcatalog._gen").joinpath("modelcatalog.binpb").read_bytes()
