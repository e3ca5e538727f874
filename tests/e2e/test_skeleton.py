"""The server process answers health checks and reflection over a real socket, and exits cleanly."""

import json
import shutil
import signal
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from modelcatalog import v1

from .conftest import RunningServer, start_server

RPC_TIMEOUT_SECONDS = 10


def contract_methods() -> set[str]:
    """Every 'package.Service/Method' of the generated service bases."""
    bases = (v1.AuthServiceBase(), v1.FolderServiceBase(), v1.ModelServiceBase())
    return {path.strip("/") for base in bases for path in base.__mapping__()}


def test_health_check_answers_serving_to_a_grpcio_client(server: RunningServer) -> None:
    """A stock grpcio health client sees SERVING, overall and for each API service."""
    with grpc.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "modelcatalog.v1.ModelService"):
            response = stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT_SECONDS
            )
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_buf_curl_lists_every_method_without_proto_files(
    server: RunningServer, tmp_path: Path
) -> None:
    """`buf curl --list-methods`, run away from the protos, lists the whole contract and health."""
    buf = shutil.which("buf")
    assert buf, "buf is not installed in this environment"
    result = subprocess.run(
        [
            buf,
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "--list-methods",
            f"http://{server.address}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed = set(result.stdout.split())
    assert listed == contract_methods() | {
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
    }


def test_grpcio_reflection_client_resolves_every_method(server: RunningServer) -> None:
    """grpcio's reflection descriptor database finds every service and method of the contract."""
    with grpc.insecure_channel(server.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        for path in contract_methods():
            service, method = path.split("/")
            assert service in services
            file = database.FindFileContainingSymbol(service)
            declared = {
                m.name
                for s in file.service
                if f"{file.package}.{s.name}" == service
                for m in s.method
            }
            assert method in declared


def test_rpc_not_built_yet_answers_unimplemented(server: RunningServer) -> None:
    """An RPC of the contract whose server side is not built answers UNIMPLEMENTED, not UNKNOWN."""
    buf = shutil.which("buf")
    assert buf
    result = subprocess.run(
        [
            buf,
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "-d",
            json.dumps({"modelId": "m", "version": 1}),
            f"http://{server.address}/modelcatalog.v1.ModelService/GetModelVersion",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert json.loads(result.stderr)["code"] == "unimplemented"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_gracefully(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM and SIGINT stop the server with exit status 0 and a final log line, no traceback."""
    running = start_server(tmp_path)
    assert running.stop(sig) == 0
    log = running.log()
    assert "stopped" in log
    assert "Traceback" not in log


def test_port_in_use_fails_with_a_clear_message(server: RunningServer, tmp_path: Path) -> None:
    """A second server on a busy port exits with status 1 and says why, without a traceback."""
    result = subprocess.run(
        ["modelcatalog-server", "--listen", server.address],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert f"cannot listen on {server.address}" in result.stderr
    assert "Traceback" not in result.stderr
