"""The server process answers health checks and reflection over a real socket, and exits cleanly."""

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpclib.const import Cardinality, Status
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError

from modelcatalog import v1

from .conftest import RunningServer, start_server

RPC_TIMEOUT_SECONDS = 10


def contract_methods() -> set[str]:
    """Every 'package.Service/Method' of the generated service bases."""
    bases = (
        v1.AuthServiceBase(),
        v1.FolderServiceBase(),
        v1.ModelServiceBase(),
        v1.AuditServiceBase(),
    )
    return {path.strip("/") for base in bases for path in base.__mapping__()}


def tls_channel(server: RunningServer) -> grpc.Channel:
    """A grpcio channel that trusts the server's self-signed certificate."""
    credentials = grpc.ssl_channel_credentials(server.ca_cert.read_bytes())
    return grpc.secure_channel(server.address, credentials)


def buf_curl(
    server: RunningServer, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``buf curl`` over TLS against ``server``, trusting its certificate."""
    buf = shutil.which("buf")
    assert buf, "buf is not installed in this environment"
    return subprocess.run(
        [buf, "curl", "--protocol", "grpc", "--cacert", str(server.ca_cert), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_health_check_answers_serving_to_a_grpcio_client(server: RunningServer) -> None:
    """A stock grpcio health client sees SERVING, overall and for each API service."""
    with tls_channel(server) as channel:
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
    result = buf_curl(server, "--list-methods", f"https://{server.address}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = set(result.stdout.split())
    assert listed == contract_methods() | {
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
    }


def test_grpcio_reflection_client_resolves_every_method(server: RunningServer) -> None:
    """grpcio's reflection descriptor database finds every service and method of the contract."""
    with tls_channel(server) as channel:
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


def test_plaintext_client_cannot_talk_to_the_tls_server(server: RunningServer) -> None:
    """TLS is on by default: a plaintext HTTP/2 client gets no answer from the server."""
    result = buf_curl(
        server,
        "--http2-prior-knowledge",
        "--list-methods",
        f"http://{server.address}",
    )
    assert result.returncode != 0


def test_insecure_flag_serves_plaintext(tmp_path: Path, signing_key: Path) -> None:
    """With --insecure the server answers plaintext HTTP/2 and says so in its log."""
    running = start_server(tmp_path, "--insecure", signing_key=signing_key)
    try:
        with grpc.insecure_channel(running.address) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_SECONDS
            )
        assert response.status == health_pb2.HealthCheckResponse.SERVING
        assert "plaintext, --insecure" in running.log()
    finally:
        assert running.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_gracefully(
    tmp_path: Path, signing_key: Path, sig: signal.Signals
) -> None:
    """SIGTERM and SIGINT stop the server with exit status 0 and a final log line, no traceback."""
    running = start_server(tmp_path, signing_key=signing_key)
    assert running.stop(sig) == 0
    log = running.log()
    assert "stopped" in log
    assert "Traceback" not in log


def test_port_in_use_fails_with_a_clear_message(server: RunningServer, tmp_path: Path) -> None:
    """A second server on a busy port exits with status 1 and says why, without a traceback."""
    result = subprocess.run(
        ["modelcatalog-server", "--listen", server.address, "--data-dir", str(tmp_path / "other")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert f"cannot listen on {server.address}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("option", "value", "environment", "message"),
    [
        pytest.param(
            "--database-url",
            "postgresql+asyncpg://catalog:secret-word@127.0.0.1:1/catalog",
            {},
            "cannot open the database postgresql+asyncpg://catalog:***@127.0.0.1:1/catalog",
            id="database-unreachable",
        ),
        pytest.param(
            "--database-url",
            "sqlite:////",
            {},
            "cannot open the database sqlite+pysqlite:////: unable to open database file",
            id="database-a-directory",
        ),
        pytest.param(
            "--blob-url",
            "s3://models/catalog",
            {
                "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
                "AWS_ACCESS_KEY_ID": "key",
                "AWS_SECRET_ACCESS_KEY": "secret",
            },
            "the blob store s3://models/catalog cannot store files",
            id="blob-store-unreachable",
        ),
    ],
)
def test_unusable_storage_stops_the_start_with_the_reason(
    tmp_path: Path, option: str, value: str, environment: dict[str, str], message: str
) -> None:
    """A database or blob store that cannot be used stops the start (status 1) with a line
    that names it and why — a password never shown — instead of listening and failing calls."""
    result = subprocess.run(
        ["modelcatalog-server", "--listen", "127.0.0.1:0", "--data-dir", "data", option, value],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, **environment},
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "listening on" not in result.stderr
    assert "secret-word" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.embedded_only("the data directory is locked only while storage lives in it")
def test_second_server_on_the_same_data_directory_is_refused(
    server: RunningServer, tmp_path: Path
) -> None:
    """Two servers never share a data directory: the second exits with status 1 and says why."""
    result = subprocess.run(
        ["modelcatalog-server", "--listen", "127.0.0.1:0", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "already using the data directory" in result.stderr
    assert "Traceback" not in result.stderr


class RawBytes(CodecBase):
    """Sends bytes as they are, to put malformed messages on the wire."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return data


async def test_malformed_request_bytes_are_invalid_argument(server: RunningServer) -> None:
    """A request that is not valid protobuf gets INVALID_ARGUMENT, never UNKNOWN or INTERNAL."""
    channel = server.channel(RawBytes())
    try:
        async with channel.request(
            "/modelcatalog.v1.AuthService/SignUp", Cardinality.UNARY_UNARY, bytes, bytes
        ) as stream:
            await stream.send_message(b"\x0a\x02\xff\xfe", end=True)
            with pytest.raises(GRPCError) as caught:
                await stream.recv_message()
    finally:
        channel.close()
    assert caught.value.status == Status.INVALID_ARGUMENT
    assert "SignUpRequest" in (caught.value.message or "")


@pytest.mark.embedded_only("checks the modes of the SQLite file and blob directories")
def test_data_directory_is_private_to_the_server_user(server: RunningServer) -> None:
    """The database, blobs, keys and their folders are not readable by other local users."""
    assert (server.data_dir / "catalog.sqlite3").exists()
    for path in [server.data_dir, *server.data_dir.rglob("*")]:
        if path.name == "server.crt":
            continue
        assert path.stat().st_mode & 0o077 == 0, path


def test_corrupt_certificate_stops_the_start_with_a_hint(tmp_path: Path, signing_key: Path) -> None:
    """A damaged self-signed certificate is reported in one line that says how to recover."""
    data_dir = tmp_path / "data"
    (data_dir / "tls").mkdir(parents=True)
    (data_dir / "tls" / "server.crt").write_text("not a certificate")
    (data_dir / "tls" / "server.key").write_text("not a key")
    result = subprocess.run(
        [
            "modelcatalog-server",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            "--jwt-private-key",
            str(signing_key),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "is not a PEM certificate" in result.stderr
    assert "Traceback" not in result.stderr
