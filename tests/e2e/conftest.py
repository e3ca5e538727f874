"""Starts the real ``modelcatalog-server`` console script as a process on a free loopback port."""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpclib.client import Channel
from grpclib.encoding.base import CodecBase

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
LISTENING = re.compile(r"listening on (\S+)")


@dataclass
class RunningServer:
    """A server process, the address it listens on, its data directory and its log file."""

    process: subprocess.Popen[bytes]
    address: str
    log_path: Path
    data_dir: Path

    @property
    def ca_cert(self) -> Path:
        """The self-signed certificate the server made; clients use it as their CA."""
        return self.data_dir / "tls" / "server.crt"

    def channel(self, codec: CodecBase | None = None) -> Channel:
        """A raw grpclib channel over TLS that trusts the server, for what the SDK cannot send."""
        context = ssl.create_default_context(cafile=self.ca_cert)
        context.set_alpn_protocols(["h2"])
        host, port = self.address.rsplit(":", 1)
        return Channel(host, int(port), ssl=context, codec=codec)

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
    workdir: Path, *args: str, data_dir: Path | None = None, signing_key: Path | None = None
) -> RunningServer:
    """Starts the server with ``args`` and waits (polling its log) until it listens.

    Tests lower the bcrypt cost and may share one signing key (generating one is slow).
    """
    data_dir = data_dir or workdir / "data"
    log_path = workdir / f"server-{time.monotonic_ns()}.log"
    options = ["--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--bcrypt-cost", "4"]
    if signing_key is not None:
        options += ["--jwt-private-key", str(signing_key)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [server_command(), *options, *args],
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = RunningServer(process, "", log_path, data_dir)
    if not wait_for(lambda: bool(LISTENING.search(server.log())) or process.poll() is not None):
        server.stop(signal.SIGKILL)
        pytest.fail(f"server did not listen within {START_TIMEOUT_SECONDS} s:\n{server.log()}")
    match = LISTENING.search(server.log())
    if match is None:
        pytest.fail(f"server exited with {process.returncode} before listening:\n{server.log()}")
    server.address = match.group(1)
    return server


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One JWT signing key (PKCS#1 PEM, as ssh-keygen -m PEM writes) for the whole session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("jwt") / "jwtRS256.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def server(tmp_path: Path, signing_key: Path) -> Iterator[RunningServer]:
    """A running TLS server for one test; it must exit cleanly on SIGTERM afterwards."""
    running = start_server(tmp_path, signing_key=signing_key)
    yield running
    assert running.stop() == 0, running.log()
