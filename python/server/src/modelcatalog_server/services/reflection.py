"""gRPC server reflection (v1 and v1alpha) served from the descriptor set of our protos.

The descriptor set is built by Buf next to the betterproto code (``scripts/generate``) and
read through the SDK's ``modelcatalog.v1.file_descriptor_set()``: every
file of the workspace (the contract and the ``google/rpc`` error details its statuses carry)
and the well-known types they import, with their comments. Reflection sends those
``FileDescriptorProto`` bytes exactly as Buf wrote them, so ``grpcurl describe`` and
``buf curl`` show the documentation, and decode an error's ``ErrorInfo`` with no proto files.
grpclib's own reflection service re-serializes descriptors from a ``DescriptorPool``, which
drops the comments and resolves no method symbols; this one indexes every symbol a file
declares (messages, fields, oneofs, enums, enum values, services, methods, extensions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from google.protobuf import descriptor_pb2
from grpclib._typing import IServable
from grpclib.const import Status
from grpclib.health.v1 import health_pb2
from grpclib.reflection.v1 import reflection_grpc as reflection_v1_grpc
from grpclib.reflection.v1 import reflection_pb2 as reflection_v1_pb2
from grpclib.reflection.v1alpha import reflection_grpc as reflection_v1alpha_grpc
from grpclib.reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2
from grpclib.server import Stream

from modelcatalog import v1


@dataclass
class DescriptorIndex:
    """Serialized file descriptors by file name, and the file that declares each symbol."""

    files: dict[str, bytes] = field(default_factory=dict)
    dependencies: dict[str, list[str]] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)
    #: Extension field numbers by the full name of the message they extend, to their file.
    extensions: dict[str, dict[int, str]] = field(default_factory=dict)

    def add(self, serialized: bytes) -> None:
        """Adds one serialized ``FileDescriptorProto`` and indexes what it declares."""
        file = descriptor_pb2.FileDescriptorProto.FromString(serialized)
        if file.name in self.files:
            raise ValueError(f"{file.name} is in the descriptor set twice")
        self.files[file.name] = serialized
        self.dependencies[file.name] = list(file.dependency)
        package = f"{file.package}." if file.package else ""
        for symbol in _declared_symbols(package, file):
            self.symbols[symbol] = file.name
        for extension in _extensions(package, file.message_type, file.extension):
            extendee = extension.extendee.lstrip(".")
            self.extensions.setdefault(extendee, {})[extension.number] = file.name

    def with_dependencies(self, file_name: str, sent: set[str]) -> list[bytes]:
        """``file_name`` first, then each file it imports directly or not, skipping ``sent``."""
        answer: list[bytes] = []
        pending = [file_name]
        while pending:
            name = pending.pop(0)
            if name in sent or name not in self.files:
                continue
            sent.add(name)
            answer.append(self.files[name])
            pending.extend(self.dependencies[name])
        return answer


def _declared_symbols(package: str, file: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    yield from _message_symbols(package, file.message_type)
    yield from _enum_symbols(package, file.enum_type)
    for extension in file.extension:
        yield package + extension.name
    for service in file.service:
        yield package + service.name
        for method in service.method:
            yield f"{package}{service.name}.{method.name}"


def _message_symbols(
    scope: str, messages: Iterable[descriptor_pb2.DescriptorProto]
) -> Iterator[str]:
    for message in messages:
        name = scope + message.name
        yield name
        members = [*message.field, *message.extension]
        yield from (f"{name}.{member.name}" for member in members)
        yield from (f"{name}.{oneof.name}" for oneof in message.oneof_decl)
        yield from _message_symbols(f"{name}.", message.nested_type)
        yield from _enum_symbols(f"{name}.", message.enum_type)


def _enum_symbols(scope: str, enums: Iterable[descriptor_pb2.EnumDescriptorProto]) -> Iterator[str]:
    """Each enum, and its values, which protobuf scopes beside the enum, not inside it."""
    for enum in enums:
        yield scope + enum.name
        for value in enum.value:
            yield scope + value.name


def _extensions(
    scope: str,
    messages: Iterable[descriptor_pb2.DescriptorProto],
    extensions: Iterable[descriptor_pb2.FieldDescriptorProto],
) -> Iterator[descriptor_pb2.FieldDescriptorProto]:
    yield from extensions
    for message in messages:
        yield from _extensions(f"{scope}{message.name}.", message.nested_type, message.extension)


def load_descriptor_index() -> DescriptorIndex:
    """Our descriptor set, plus the health service's file (grpclib's, without comments)."""
    image = descriptor_pb2.FileDescriptorSet.FromString(v1.file_descriptor_set())
    index = DescriptorIndex()
    for file in image.file:
        index.add(file.SerializeToString())
    index.add(health_pb2.DESCRIPTOR.serialized_pb)
    return index


class _Reflection:
    """Answers one reflection stream; ``messages`` is the v1 or the v1alpha generated module."""

    def __init__(self, index: DescriptorIndex, service_names: Sequence[str]) -> None:
        self._index = index
        self._service_names = service_names

    async def answer(self, stream: Stream[Any, Any], messages: ModuleType) -> None:
        sent: set[str] = set()
        async for request in stream:
            response = self._response(request, messages, sent)
            response.valid_host = request.host
            response.original_request.CopyFrom(request)
            await stream.send_message(response)

    def _response(self, request: Any, messages: ModuleType, sent: set[str]) -> Any:
        index = self._index
        asked = request.WhichOneof("message_request")
        if asked == "list_services":
            return messages.ServerReflectionResponse(
                list_services_response=messages.ListServiceResponse(
                    service=[messages.ServiceResponse(name=name) for name in self._service_names]
                )
            )
        if asked == "file_by_filename":
            file_name: str | None = request.file_by_filename
            missing = f"no file {request.file_by_filename}"
        elif asked == "file_containing_symbol":
            file_name = index.symbols.get(request.file_containing_symbol)
            missing = f"no symbol {request.file_containing_symbol}"
        elif asked == "file_containing_extension":
            extendee = request.file_containing_extension.containing_type
            number = request.file_containing_extension.extension_number
            file_name = index.extensions.get(extendee, {}).get(number)
            missing = f"no extension {number} of {extendee}"
        elif asked == "all_extension_numbers_of_type":
            type_name = request.all_extension_numbers_of_type
            if type_name not in index.symbols:
                return _error(messages, Status.NOT_FOUND, f"no type {type_name}")
            return messages.ServerReflectionResponse(
                all_extension_numbers_response=messages.ExtensionNumberResponse(
                    base_type_name=type_name,
                    extension_number=sorted(index.extensions.get(type_name, {})),
                )
            )
        else:
            return _error(messages, Status.INVALID_ARGUMENT, "the request asks for nothing known")
        if file_name is None or file_name not in index.files:
            return _error(messages, Status.NOT_FOUND, missing)
        # A file already sent on this stream is sent again when asked for by name or symbol:
        # only its dependencies are skipped, as the client has them.
        sent.discard(file_name)
        return messages.ServerReflectionResponse(
            file_descriptor_response=messages.FileDescriptorResponse(
                file_descriptor_proto=index.with_dependencies(file_name, sent)
            )
        )


def _error(messages: ModuleType, status: Status, message: str) -> Any:
    return messages.ServerReflectionResponse(
        error_response=messages.ErrorResponse(error_code=status.value, error_message=message)
    )


class ServerReflectionV1(reflection_v1_grpc.ServerReflectionBase):
    """grpc.reflection.v1.ServerReflection."""

    def __init__(self, reflection: _Reflection) -> None:
        self._reflection = reflection

    async def ServerReflectionInfo(  # noqa: N802 - the name of grpclib's generated base
        self,
        stream: Stream[
            reflection_v1_pb2.ServerReflectionRequest, reflection_v1_pb2.ServerReflectionResponse
        ],
    ) -> None:
        await self._reflection.answer(stream, reflection_v1_pb2)


class ServerReflectionV1Alpha(reflection_v1alpha_grpc.ServerReflectionBase):
    """grpc.reflection.v1alpha.ServerReflection, which older clients (grpcurl 1.8) still use."""

    def __init__(self, reflection: _Reflection) -> None:
        self._reflection = reflection

    async def ServerReflectionInfo(  # noqa: N802 - the name of grpclib's generated base
        self,
        stream: Stream[
            reflection_v1alpha_pb2.ServerReflectionRequest,
            reflection_v1alpha_pb2.ServerReflectionResponse,
        ],
    ) -> None:
        await self._reflection.answer(stream, reflection_v1alpha_pb2)


def with_reflection(services: Sequence[IServable]) -> list[IServable]:
    """``services`` plus the reflection services (v1 and v1alpha) that describe them."""
    names = sorted({path.split("/")[1] for service in services for path in service.__mapping__()})
    reflection = _Reflection(load_descriptor_index(), names)
    return [*services, ServerReflectionV1(reflection), ServerReflectionV1Alpha(reflection)]
