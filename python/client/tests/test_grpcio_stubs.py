"""The distribution ships standard protobuf and grpcio stubs of the contract in modelcatalog.v1."""

import subprocess
import sys

from modelcatalog import v1
from modelcatalog.v1 import (
    auth_service_pb2,
    error_reason_pb2,
    folder_service_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
)

SERVICE_FILES = {
    "AuthService": auth_service_pb2,
    "FolderService": folder_service_pb2,
    "ModelService": model_service_pb2,
}


def test_protobuf_stubs_declare_the_same_methods_as_the_sdk() -> None:
    """Each service's protobuf descriptor has exactly the methods of the SDK's betterproto base."""
    for service, module in SERVICE_FILES.items():
        descriptor = module.DESCRIPTOR.services_by_name[service]
        declared = {f"/{descriptor.full_name}/{method.name}" for method in descriptor.methods}
        assert declared == set(getattr(v1, f"{service}Base")().__mapping__()), service


def test_error_reasons_agree_between_protobuf_and_betterproto() -> None:
    """ErrorReason has the same names and numbers in both generated forms."""
    protobuf_reasons = dict(error_reason_pb2.ErrorReason.items())
    assert protobuf_reasons == {
        f"ERROR_REASON_{reason.name}": reason.value for reason in v1.ErrorReason
    }


def test_grpcio_stub_has_every_method() -> None:
    """The grpcio stub of ModelService offers each RPC the contract declares."""
    descriptor = model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]
    for method in descriptor.methods:
        assert method.name in model_service_pb2_grpc.ModelServiceServicer.__dict__, method.name


def test_protobuf_stubs_import_without_grpcio() -> None:
    """The *_pb2 modules need only protobuf: they import where grpcio is not installed."""
    code = (
        "import sys; sys.modules['grpc'] = None\n"
        "from modelcatalog.v1 import model_service_pb2\n"
        "print(model_service_pb2.GetModelRequest(model_id='m').model_id)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "m"
