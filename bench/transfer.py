"""Transfer benchmark: throughput, server memory and RPC latency while a large file moves.

Starts a real server, uploads and downloads one file through the SDK over TLS, and samples
the server's resident memory (VmRSS) throughout. Baselines measured in the same run on the
same file: a local file copy and a SHA-256 pass, so results are reported as ratios that hold
on a noisy machine. Meanwhile a second client times unary RPCs, to show that the event loop
keeps answering during a transfer.

    python bench/transfer.py [--size-mib 1024] [--json results.json]

Exits 1 when the server's memory grows by more than --max-rss-growth-mib (default 100) above
idle during a transfer, or the file does not come back byte-identical.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from modelcatalog import Client

MiB = 1 << 20
PASSWORD = "benchmark password"


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


class RssSampler:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, rss_mib(self._pid))

    def reset(self) -> None:
        self._peak = rss_mib(self._pid)

    @property
    def peak(self) -> float:
        return self._peak

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    log = data_dir.parent / "server.log"
    server = shutil.which("modelcatalog-server")
    assert server, "install python/server first (pip install ./python/client ./python/server)"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                server,
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                "--bcrypt-cost",
                "4",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on (\S+)", log.read_text())
        if match:
            return process, match.group(1), data_dir / "tls" / "server.crt"
        if process.poll() is not None:
            sys.exit(f"server exited:\n{log.read_text()}")
        time.sleep(0.05)
    process.kill()
    sys.exit("server did not start within 60 s")


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


async def latencies_during(client: Client, transfer: Awaitable[Any]) -> tuple[Any, list[float]]:
    """Runs ``transfer`` while timing GetCurrentUser calls back to back on another client."""
    task = asyncio.ensure_future(transfer)
    samples: list[float] = []
    while not task.done():
        started = time.perf_counter()
        await client.get_current_user()
        samples.append(time.perf_counter() - started)
    return await task, samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "calls": len(ordered),
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


async def run(size_mib: int, work: Path) -> dict[str, Any]:
    source = work / "model.bin"
    with source.open("wb") as file:
        for _ in range(size_mib):
            file.write(os.urandom(MiB))
    copy_seconds = timed(lambda: shutil.copyfile(source, work / "copy.bin"))
    (work / "copy.bin").unlink()
    hash_seconds = timed(lambda: hashlib.file_digest(source.open("rb"), "sha256"))

    process, address, ca_cert = start_server(work / "data")
    sampler = RssSampler(process.pid)
    try:
        async with (
            Client(address, ca_cert=ca_cert) as uploader,
            Client(address, ca_cert=ca_cert) as prober,
        ):
            await uploader.sign_up("bench", PASSWORD)
            await uploader.sign_in("bench", PASSWORD)
            prober.token = uploader.token
            folder = await uploader.create_folder("bench")
            model = await uploader.create_model(folder.id, "big")
            _, idle_latency = await latencies_during(prober, asyncio.sleep(2))
            idle_rss = rss_mib(process.pid)

            sampler.reset()
            started = time.perf_counter()
            version, upload_latency = await latencies_during(
                prober, uploader.upload(model.id, source)
            )
            upload_seconds = time.perf_counter() - started
            upload_peak = sampler.peak

            target = work / "downloaded.bin"
            sampler.reset()
            started = time.perf_counter()
            _, download_latency = await latencies_during(
                prober, uploader.download(model.id, version.version, target)
            )
            download_seconds = time.perf_counter() - started
            download_peak = sampler.peak
        identical = hashlib.file_digest(target.open("rb"), "sha256").hexdigest() == version.sha256
    finally:
        sampler.close()
        process.terminate()
        process.wait(timeout=30)

    mib = float(size_mib)
    return {
        "size_mib": size_mib,
        "byte_identical": identical,
        "baseline": {"copy_mib_s": mib / copy_seconds, "sha256_mib_s": mib / hash_seconds},
        "upload": {
            "mib_s": mib / upload_seconds,
            "ratio_to_copy": copy_seconds / upload_seconds,
            "server_rss_growth_mib": upload_peak - idle_rss,
            "rpc_latency": summary(upload_latency),
        },
        "download": {
            "mib_s": mib / download_seconds,
            "ratio_to_copy": copy_seconds / download_seconds,
            "server_rss_growth_mib": download_peak - idle_rss,
            "rpc_latency": summary(download_latency),
        },
        "server_idle_rss_mib": idle_rss,
        "idle_rpc_latency": summary(idle_latency),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--max-rss-growth-mib", type=float, default=100.0)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelcatalog-bench-") as work:
        results = asyncio.run(run(args.size_mib, Path(work)))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    growth = max(
        results["upload"]["server_rss_growth_mib"], results["download"]["server_rss_growth_mib"]
    )
    if not results["byte_identical"] or growth > args.max_rss_growth_mib:
        sys.exit(1)


if __name__ == "__main__":
    main()
