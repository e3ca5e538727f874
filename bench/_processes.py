"""The two servers under test as separate processes, and their resident memory.

Our server is started exactly as the end-to-end tests start it (``tests.server_process``); the
grpcio-aio reference (``bench.reference_server``) is started the same way, with our server's
TLS certificate and JWT signing key, so one token and one CA work against both.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.server_process import LISTENING, RunningServer, start_server, wait_for

__all__ = ["RssSampler", "cpu_seconds", "rss_mib", "start_ours", "start_reference"]

#: Our server may run 50+ uploads at once for the memory figure.
UPLOAD_SLOTS = "256"


def start_ours(workdir: Path, signing_key: Path, *args: str) -> RunningServer:
    """Our server, with upload slots for the concurrency figures; ``args`` add flags."""
    workdir.mkdir(parents=True, exist_ok=True)
    return start_server(
        workdir,
        "--max-uploads",
        UPLOAD_SLOTS,
        "--max-uploads-per-user",
        UPLOAD_SLOTS,
        "--max-uploads-per-peer",
        UPLOAD_SLOTS,
        *args,
        signing_key=signing_key,
    )


def start_reference(workdir: Path, ours: RunningServer, signing_key: Path) -> RunningServer:
    """The grpcio-aio reference, serving our server's certificate and trusting its tokens."""
    data_dir = workdir / "data"
    (data_dir / "tls").mkdir(parents=True, exist_ok=True)
    for name in ("server.crt", "server.key"):
        shutil.copyfile(ours.data_dir / "tls" / name, data_dir / "tls" / name)
    log_path = workdir / "reference.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.reference_server",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                "--jwt-key",
                str(signing_key),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = RunningServer(process, "", log_path, data_dir)
    if not wait_for(lambda: bool(LISTENING.search(server.log())) or process.poll() is not None):
        server.stop(signal.SIGKILL)
    match = LISTENING.search(server.log())
    if match is None:
        raise RuntimeError(f"the reference server did not start:\n{server.log()}")
    server.address = match.group(1)
    return server


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process has used so far, every thread's, user and system, from /proc (in
    clock ticks: 10 ms here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


class RssSampler:
    """Samples a process's RSS every 10 ms in a thread; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._peak = rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self._peak = max(self._peak, rss_mib(self._pid))

    def reset(self) -> float:
        """Starts a new peak from the current RSS, which it returns (the idle level)."""
        time.sleep(0.05)
        self._peak = rss_mib(self._pid)
        return self._peak

    @property
    def peak(self) -> float:
        return max(self._peak, rss_mib(self._pid))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
