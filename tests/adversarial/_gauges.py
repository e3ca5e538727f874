"""What the attacks are judged by: the server's memory, file descriptors, log and health latency.

Memory and descriptors are read from ``/proc`` (Linux), so no dependency is needed. The health
prober runs in its own thread with grpcio, whose C core does the network work: the attack's
event loop in the test process cannot delay the probes, so the latency measured is the
server's.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..server_process import RunningServer, wait_for

MIB = 1 << 20
#: Time between two health probes, and how long one may take before it counts as failed.
PROBE_INTERVAL_SECONDS = 0.02
PROBE_TIMEOUT_SECONDS = 5.0
#: Probes a Monitor takes at least, so that its p99 means something even for a short attack
#: (the last ones see the attack's aftermath, when the server may still be catching up).
MIN_PROBES = 25
#: The bound the issue sets for every flood: the health check answers within this, at p99.
HEALTH_P99_BOUND_SECONDS = 0.2


def rss_bytes(pid: int) -> int:
    """The resident memory of process ``pid`` (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def open_fds(pid: int) -> list[str]:
    """What each open file descriptor of process ``pid`` points to ('socket:[123]', paths)."""
    targets = []
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        try:
            targets.append(os.readlink(f"{directory}/{name}"))
        except FileNotFoundError:
            continue  # closed while we looked
    return targets


def sqlite_fds(pid: int) -> int:
    """How many descriptors process ``pid`` holds on the catalog database and its WAL files."""
    return sum("catalog.sqlite3" in target for target in open_fds(pid))


TRACEBACK = "Traceback (most recent call last)"


def tracebacks(log: str) -> int:
    return log.count(TRACEBACK)


def first_traceback(log: str, chars: int = 3000) -> str:
    """The log from its first traceback on, cut to ``chars`` characters, for a report."""
    start = log.find(TRACEBACK)
    return log[max(0, log.rfind("\n", 0, start)) :][:chars] if start >= 0 else ""


def p99(samples: list[float]) -> float:
    """The 99th percentile (nearest rank) of ``samples``; infinite without any."""
    ordered = sorted(samples)
    if not ordered:
        return math.inf
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def memory_settles(server: RunningServer, at_most: int, within: float = 15.0) -> bool:
    """Whether the server's RSS comes down to ``at_most`` bytes within ``within`` seconds."""
    return wait_for(lambda: rss_bytes(server.process.pid) <= at_most, within)


@dataclass
class Monitor:
    """Probes health over TLS and samples the server's RSS and descriptors, while it runs.

    Use as ``with Monitor(server) as monitor: <attack>``; then read ``p99``, ``failures``,
    ``peak_rss`` and ``peak_fds``.
    """

    server: RunningServer
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    peak_rss: int = 0
    peak_fds: int = 0
    peak_sqlite_fds: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Monitor:
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)
        self._thread.start()
        self._ready.wait(PROBE_TIMEOUT_SECONDS)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        wait_for(lambda: self.probes >= MIN_PROBES, MIN_PROBES * PROBE_TIMEOUT_SECONDS)
        self._stop.set()
        assert self._thread is not None
        self._thread.join(PROBE_TIMEOUT_SECONDS + 5)

    @property
    def probes(self) -> int:
        return len(self.latencies) + len(self.failures)

    @property
    def p99(self) -> float:
        """Health latency at p99; a failed probe counts as the probe timeout."""
        return p99(self.latencies + [PROBE_TIMEOUT_SECONDS] * len(self.failures))

    def summary(self) -> str:
        return (
            f"health p99 {self.p99 * 1000:.0f} ms over {self.probes} probes, "
            f"{len(self.failures)} failed {self.failures[:3]}; peak RSS "
            f"{self.peak_rss / MIB:.0f} MiB, peak fds {self.peak_fds}"
        )

    def _sample(self) -> None:
        pid = self.server.process.pid
        self.peak_rss = max(self.peak_rss, rss_bytes(pid))
        targets = open_fds(pid)
        self.peak_fds = max(self.peak_fds, len(targets))
        self.peak_sqlite_fds = max(
            self.peak_sqlite_fds, sum("catalog.sqlite3" in target for target in targets)
        )

    def _run(self) -> None:
        credentials = grpc.ssl_channel_credentials(self.server.ca_cert.read_bytes())
        with grpc.secure_channel(self.server.address, credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            # The first call pays for the TLS handshake; only later answers are timed.
            self._probe(stub)
            self.latencies.clear()
            self._ready.set()
            while not self._stop.is_set():
                self._sample()
                self._probe(stub)
                self._stop.wait(PROBE_INTERVAL_SECONDS)
            self._sample()

    def _probe(self, stub: health_pb2_grpc.HealthStub) -> None:
        started = time.perf_counter()
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            # grpcio raises RpcErrors that are also Calls, carrying the status code.
            self.failures.append(cast(grpc.Call, error).code().name)
            return
        if response.status == health_pb2.HealthCheckResponse.SERVING:
            self.latencies.append(time.perf_counter() - started)
        else:
            self.failures.append(f"health status {response.status}")
