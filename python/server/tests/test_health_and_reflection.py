"""Health answers SERVING and reflection describes every method of the contract."""

import pytest
from google.protobuf import descriptor_pb2
from grpclib.client import Channel
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.reflection.v1.reflection_grpc import ServerReflectionStub
from grpclib.reflection.v1.reflection_pb2 import (
    ServerReflectionRequest,
    ServerReflectionResponse,
)

from modelcatalog import v1

API_SERVICES = (
    "modelcatalog.v1.AuthService",
    "modelcatalog.v1.FolderService",
    "modelcatalog.v1.ModelService",
)


def contract_methods() -> set[str]:
    """Every '/package.Service/Method' path of the generated service bases."""
    bases = (v1.AuthServiceBase(), v1.FolderServiceBase(), v1.ModelServiceBase())
    return {path for base in bases for path in base.__mapping__()}


async def reflect(channel: Channel, request: ServerReflectionRequest) -> ServerReflectionResponse:
    async with ServerReflectionStub(channel).ServerReflectionInfo.open() as stream:
        await stream.send_message(request, end=True)
        response = await stream.recv_message()
    assert response is not None
    return response


@pytest.mark.parametrize("service", ["", *API_SERVICES])
async def test_health_reports_serving(channel: Channel, service: str) -> None:
    """The overall status and each API service's status is SERVING."""
    response = await HealthStub(channel).Check(HealthCheckRequest(service=service))
    assert response.status == HealthCheckResponse.SERVING


async def test_reflection_lists_every_api_service_and_health(channel: Channel) -> None:
    """list_services names the three API services and the health service."""
    response = await reflect(channel, ServerReflectionRequest(list_services=""))
    names = {service.name for service in response.list_services_response.service}
    assert names >= {*API_SERVICES, "grpc.health.v1.Health"}


async def test_reflection_describes_every_method(channel: Channel) -> None:
    """Each method of the contract resolves to a file descriptor that declares it."""
    for path in sorted(contract_methods()):
        service_name, method_name = path.strip("/").split("/")
        response = await reflect(
            channel, ServerReflectionRequest(file_containing_symbol=service_name)
        )
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(blob)
            for blob in response.file_descriptor_response.file_descriptor_proto
        ]
        declared = {
            f"{file.package}.{service.name}/{method.name}"
            for file in files
            for service in file.service
            for method in service.method
        }
        assert f"{service_name}/{method_name}" in declared


async def test_reflection_answers_not_found_for_unknown_symbols(channel: Channel) -> None:
    """An unknown symbol gets NOT_FOUND in the reflection response, not a broken stream."""
    response = await reflect(
        channel, ServerReflectionRequest(file_containing_symbol="no.such.Service")
    )
    assert response.error_response.error_code == 5
