"""The real ``modelcatalog-server`` process on a free loopback port, for the suites that need it.

Shared by ``tests/e2e`` and ``tests/adversarial``: both start the console script, wait for its
"listening on" log line, talk to it over TLS with its self-signed certificate and stop it.

With ``MODELCATALOG_TEST_SCALEOUT`` set (tox env ``e2e-scaleout``), every server keeps its
metadata in a fresh PostgreSQL database and its blobs under a fresh S3 key prefix (the services
``tests/conftest.py`` starts for the session); a server started again on the same data
directory finds the same database and prefix.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import signal
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpclib.client import Channel
from grpclib.encoding.base import CodecBase

from modelcatalog import v1

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
LISTENING = re.compile(r"listening on (\S+)")
SCALEOUT_VARIABLE = "MODELCATALOG_TEST_SCALEOUT"


def scaled_out() -> bool:
    """Whether servers run on PostgreSQL and S3 in this test session."""
    return bool(os.environ.get(SCALEOUT_VARIABLE))


def scaleout_storage(data_dir: Path) -> dict[str, str]:
    """The settings that put the server on ``data_dir`` on its own database and key prefix:
    new ones the first time, recorded beside the data directory for a restart."""
    # Imported here: the benchmarks use this module outside pytest, without python/testing.
    from services import BLOB_URL_VARIABLE, DATABASE_URL_VARIABLE, new_database

    record = data_dir.parent / f"{data_dir.name}.scaleout.json"
    if record.exists():
        stored: dict[str, str] = json.loads(record.read_text())
        return stored
    storage = {
        "MODELCATALOG_DATABASE_URL": new_database(os.environ[DATABASE_URL_VARIABLE]),
        "MODELCATALOG_BLOB_URL": f"{os.environ[BLOB_URL_VARIABLE].rstrip('/')}/{uuid.uuid4().hex}",
    }
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(storage))
    return storage


@dataclass
class RunningServer:
    """A server process, the address it listens on, its data directory, its log file and the
    blob store it was given (empty: the data directory's)."""

    process: subprocess.Popen[bytes]
    address: str
    log_path: Path
    data_dir: Path
    blob_url: str = ""

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def ca_cert(self) -> Path:
        """The self-signed certificate the server made; clients use it as their CA."""
        return self.data_dir / "tls" / "server.crt"

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the server and negotiates HTTP/2."""
        context = ssl.create_default_context(cafile=self.ca_cert)
        context.set_alpn_protocols(["h2"])
        return context

    def channel(self, codec: CodecBase | None = None) -> Channel:
        """A raw grpclib channel over TLS that trusts the server, for what the SDK cannot send."""
        return Channel(self.host, self.port, ssl=self.tls_context(), codec=codec)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Sends ``sig`` and waits for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def wait_for(condition: Callable[[], bool], within: float = START_TIMEOUT_SECONDS) -> bool:
    """Whether ``condition`` came true within ``within`` seconds, polling every 20 ms."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def server_command() -> str:
    command = shutil.which("modelcatalog-server")
    assert command, "modelcatalog-server is not installed in this environment"
    return command


def start_server(
    workdir: Path,
    *args: str,
    data_dir: Path | None = None,
    signing_key: Path | None = None,
    environment: Mapping[str, str] | None = None,
    open_files_limit: int | None = None,
    prefix: Sequence[str] = (),
) -> RunningServer:
    """Starts the server with ``args`` and waits (polling its log) until it listens.

    Tests lower the bcrypt cost and may share one signing key (generating one is slow).
    ``environment`` adds ``MODELCATALOG_*`` settings; ``open_files_limit`` caps the process's
    file descriptors (soft and hard ``RLIMIT_NOFILE``), as a small ``ulimit -n`` would.
    ``prefix`` is a command that execs the server (for example in its own mount namespace).
    """
    data_dir = data_dir or workdir / "data"
    if scaled_out():
        environment = {**scaleout_storage(data_dir), **(environment or {})}
    log_path = workdir / f"server-{time.monotonic_ns()}.log"
    options = ["--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--bcrypt-cost", "4"]
    if signing_key is not None:
        options += ["--jwt-private-key", str(signing_key)]

    def limit_open_files() -> None:
        if open_files_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files_limit, open_files_limit))

    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*prefix, server_command(), *options, *args],
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})},
            preexec_fn=limit_open_files if open_files_limit is not None else None,
        )
    blob_url = (environment or {}).get("MODELCATALOG_BLOB_URL", "")
    server = RunningServer(process, "", log_path, data_dir, blob_url)
    if not wait_for(lambda: bool(LISTENING.search(server.log())) or process.poll() is not None):
        server.stop(signal.SIGKILL)
        pytest.fail(f"server did not listen within {START_TIMEOUT_SECONDS} s:\n{server.log()}")
    match = LISTENING.search(server.log())
    if match is None:
        pytest.fail(f"server exited with {process.returncode} before listening:\n{server.log()}")
    server.address = match.group(1)
    return server


def leftover_uploads(server: RunningServer) -> list[str]:
    """What uploads in progress (or abandoned) hold in the server's blob store: temporary files
    in a local one; multipart uploads and temporary objects on S3."""
    blob_url = urlsplit(server.blob_url)
    if blob_url.scheme != "s3":
        return sorted(path.name for path in (_blob_directory(server) / "tmp").iterdir())
    with _s3_client() as client:
        bucket, prefix = blob_url.netloc, f"{blob_url.path.strip('/')}/"
        uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}uploads/")
        objects = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}uploads/")
    return sorted(
        [upload["Key"] for upload in uploads.get("Uploads", [])]
        + [item["Key"] for item in objects.get("Contents", [])]
    )


def stored_blobs(server: RunningServer) -> set[str]:
    """The SHA-256 digests of the blobs in the server's blob store: files in a local one,
    objects under ``sha256/`` on S3."""
    blob_url = urlsplit(server.blob_url)
    if blob_url.scheme != "s3":
        return {
            path.name for path in (_blob_directory(server) / "sha256").rglob("*") if path.is_file()
        }
    with _s3_client() as client:
        bucket, prefix = blob_url.netloc, f"{blob_url.path.strip('/')}/sha256/"
        objects = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {item["Key"].rsplit("/", 1)[1] for item in objects.get("Contents", [])}


def _blob_directory(server: RunningServer) -> Path:
    return Path(urlsplit(server.blob_url).path) if server.blob_url else server.data_dir / "blobs"


@contextmanager
def _s3_client() -> Iterator[Any]:
    """A client of the scale-out leg's S3 service (botocore makes its S3 methods at run time:
    typed as Any here)."""
    # Imported here: only the scale-out leg has an S3 service to ask.
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]
    )
    try:
        yield client
    finally:
        client.close()


async def kill_during_upload(server: RunningServer, token: str | None, model_id: str) -> None:
    """SIGKILLs ``server`` in the middle of an upload (12 MiB of a declared 64, past one part
    of an S3 multipart upload), once its bytes have reached the blob store."""
    half_sent = asyncio.Event()

    async def messages() -> AsyncIterator[v1.UploadModelVersionRequest]:
        header = v1.UploadModelVersionHeader(model_id, "big.bin", size_bytes=64 * (1 << 20))
        yield v1.UploadModelVersionRequest(header=header)
        for _ in range(12):
            yield v1.UploadModelVersionRequest(chunk=os.urandom(1 << 20))
        half_sent.set()
        await asyncio.Event().wait()

    channel = server.channel()
    stub = v1.ModelServiceStub(channel, metadata={"authorization": f"Bearer {token}"})
    upload = asyncio.create_task(stub.upload_model_version(messages()))
    try:
        await half_sent.wait()
        reached = await asyncio.to_thread(wait_for, lambda: bool(leftover_uploads(server)))
        assert reached, "the upload never reached the server's blob store"
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        if server.process.poll() is None:  # the test failed before the kill: no server left
            server.stop(signal.SIGKILL)
        upload.cancel()
        await asyncio.gather(upload, return_exceptions=True)
        channel.close()


def write_signing_key(path: Path) -> Path:
    """Writes a new JWT signing key (PKCS#1 PEM, as ``ssh-keygen -m PEM`` does) to ``path``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path
