"""Health answers SERVING; reflection resolves every symbol of the contract, with comments;
callers without a sign-in keep only a few such streams open at once."""

import contextlib
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.reflection.v1.reflection_grpc import ServerReflectionStub
from grpclib.reflection.v1.reflection_pb2 import (
    ServerReflectionRequest,
    ServerReflectionResponse,
)
from grpclib.reflection.v1alpha.reflection_grpc import (
    ServerReflectionStub as ServerReflectionV1AlphaStub,
)
from grpclib.reflection.v1alpha.reflection_pb2 import (
    ServerReflectionRequest as V1AlphaRequest,
)

from modelcatalog import v1
from modelcatalog_server import rpc
from modelcatalog_server.domain.slots import SlotLimits
from modelcatalog_server.services.reflection import load_descriptor_index

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


def contract_symbols() -> list[str]:
    """Every service, method, message and enum the contract's files declare at top level."""
    image = load_descriptor_index()
    symbols: list[str] = []
    for serialized in image.files.values():
        file = descriptor_pb2.FileDescriptorProto.FromString(serialized)
        if file.package != "modelcatalog.v1":
            continue
        for service in file.service:
            symbols.append(f"{file.package}.{service.name}")
            symbols.extend(f"{file.package}.{service.name}.{m.name}" for m in service.method)
        symbols.extend(f"{file.package}.{m.name}" for m in file.message_type)
        symbols.extend(f"{file.package}.{e.name}" for e in file.enum_type)
    return symbols


async def reflect_v1alpha(channel: Channel, symbol: str) -> list[str]:
    """The names of the files v1alpha reflection answers for ``symbol``."""
    async with ServerReflectionV1AlphaStub(channel).ServerReflectionInfo.open() as stream:
        await stream.send_message(V1AlphaRequest(file_containing_symbol=symbol), end=True)
        response = await stream.recv_message()
    assert response is not None
    return [
        descriptor_pb2.FileDescriptorProto.FromString(blob).name
        for blob in response.file_descriptor_response.file_descriptor_proto
    ]


async def test_every_symbol_resolves_in_v1_and_v1alpha(channel: Channel) -> None:
    """Services, methods, messages and enums of the contract resolve with both protocols."""
    symbols = contract_symbols()
    assert "modelcatalog.v1.ModelService.UploadModelVersion" in symbols
    for symbol in [*symbols, "grpc.health.v1.Health.Check", "google.rpc.ErrorInfo"]:
        response = await reflect(channel, ServerReflectionRequest(file_containing_symbol=symbol))
        assert response.file_descriptor_response.file_descriptor_proto, symbol
        assert await reflect_v1alpha(channel, symbol), symbol


async def test_reflection_serves_comments_and_dependencies(channel: Channel) -> None:
    """A file comes with its comments, and with the files it imports, each once per stream."""
    async with ServerReflectionStub(channel).ServerReflectionInfo.open() as stream:
        names: list[list[str]] = []
        for symbol in ("modelcatalog.v1.GetModelRequest", "modelcatalog.v1.ListModelsRequest"):
            await stream.send_message(ServerReflectionRequest(file_containing_symbol=symbol))
            response = await stream.recv_message()
            assert response is not None
            files = [
                descriptor_pb2.FileDescriptorProto.FromString(blob)
                for blob in response.file_descriptor_response.file_descriptor_proto
            ]
            assert files[0].source_code_info.location
            names.append([file.name for file in files])
        await stream.end()
    assert names[0][0] == "modelcatalog/v1/model_service.proto"
    assert "modelcatalog/v1/resources.proto" in names[0]
    assert names[1] == ["modelcatalog/v1/model_service.proto"]


async def _watching(stream: Any) -> None:
    """Starts a health watch on ``stream`` and waits for its first status."""
    await stream.send_message(HealthCheckRequest(), end=True)
    assert await stream.recv_message() is not None


@pytest.fixture
def few_public_streams(monkeypatch: pytest.MonkeyPatch) -> SlotLimits:
    """Public-stream caps small enough to reach on one in-memory connection (whose streams
    HTTP/2 caps at 100), for the server the test then builds."""
    limits = SlotLimits(total=10, per_user=10, per_peer=4)
    monkeypatch.setattr(rpc, "PUBLIC_STREAM_LIMITS", limits)
    return limits


async def test_an_address_keeps_only_a_few_public_streams_open(
    few_public_streams: SlotLimits, channel: Channel
) -> None:
    """Health watches (which never end by themselves) past the per-address cap are refused
    RESOURCE_EXHAUSTED (OVERLOADED) at once; a watch that ends makes room for another."""
    watch = HealthStub(channel).Watch
    async with contextlib.AsyncExitStack() as open_streams:
        streams = [
            await open_streams.enter_async_context(watch.open())
            for _ in range(few_public_streams.per_peer)
        ]
        for stream in streams:
            await _watching(stream)
        extra = await open_streams.enter_async_context(watch.open())
        with pytest.raises(GRPCError) as refused:
            await _watching(extra)
        assert refused.value.status == Status.RESOURCE_EXHAUSTED
        await streams[0].cancel()
        again = await open_streams.enter_async_context(watch.open())
        await _watching(again)
        for stream in [*streams[1:], again]:
            await stream.cancel()  # a watch ends only when its caller leaves
