"""``--workers N``: N server processes on one port, run by one supervisor process.

The supervisor does the start-up work that must happen once, before any worker serves: it
holds the data-directory lock for all of them when storage lives there (workers never take
it), creates the signing key and the self-signed certificate if they are missing (two workers
racing to create them would make two different keys), and prepares storage
(``app.prepare_storage``: migrations, and a clear error if a store cannot be opened). Then it
starts the workers, says ``listening on`` once all of them accept, restarts one that exits
unexpectedly, and on SIGTERM or SIGINT passes the signal on, waits a bounded time for every
worker to drain and exit, and kills what is left.

Each worker opens its own listening socket with SO_REUSEPORT; the supervisor only holds the
port with a bound socket that does not listen (``transport.reserve_port``), which also fixes
the one port all workers use when ``--listen`` asks for port 0. With SO_REUSEPORT every worker
has its own accept queue and the kernel spreads new connections evenly over them by a hash of
the addresses. One listening socket shared by all workers would put every connection in one
queue that the workers' event loops race for: each connection wakes every idle worker's epoll
(or, with EPOLLEXCLUSIVE, the one that went idle last), so the workers that are idle most often
take most connections, and a worker busy with a burst of work keeps connections it accepted
while others sit idle. The price of SO_REUSEPORT: connections still waiting in the queue of a
worker that dies are reset, and a stalled worker's queue is not served by the others; gRPC
clients reconnect, and one connection carries many calls.

Workers are started with multiprocessing's "spawn" method: a fresh interpreter per worker, so
that each one tunes its own allocator and runs its own uvloop, and nothing of the
supervisor's threads or locks is inherited (forking a process with threads is unsafe). The
settings arrive as the validated object (no second parse), the readiness report comes over a
pipe, and a worker notices its supervisor's death through multiprocessing's parent sentinel
and drains. Spawn also starts multiprocessing's small resource-tracker process.

With ``--metrics-listen`` the supervisor serves the metrics of all workers, summed: they keep
them in a directory it creates before it starts them (``metrics.shared_by_workers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from . import metrics
from .app import (
    StartupError,
    data_dir_claimed,
    load_tls,
    load_token_service,
    metrics_served,
    prepare_storage,
    run_on_event_loop,
    serve_until_stopped,
    set_up_process,
)
from .config import ListenAddress, Settings
from .transport import reserve_port

log = logging.getLogger("modelcatalog_server.workers")

#: How long workers have to drain and exit after a signal, beyond the drain period.
STOP_TIMEOUT_SECONDS = 10.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerFailure(Exception):
    """The workers could not be kept running or stopped cleanly; the message says why."""


@dataclass(frozen=True)
class RestartPolicy:
    """How a worker that exited unexpectedly is restarted."""

    #: Wait before the first restart; each further one in a row waits twice as long.
    first_delay: float = 0.5
    max_delay: float = 30.0
    #: A worker that ran this long before it exited starts the delays over.
    stable_after: float = 60.0
    #: Give up after this many workers in a row of one slot exit before they serve.
    max_failed_starts: int = 5


class Restarts:
    """The restart decisions for one worker slot: a backoff, and when to give up."""

    def __init__(self, policy: RestartPolicy) -> None:
        self._policy = policy
        self._delays = 0
        self._failed_starts = 0

    def after_exit(self, *, served: bool, ran_for: float) -> float | None:
        """Seconds to wait before starting the slot's next worker, or None to give up: the
        worker exited after ``ran_for`` seconds, having (``served``) or not accepted calls."""
        policy = self._policy
        if ran_for >= policy.stable_after:
            self._delays = 0
        self._failed_starts = 0 if served else self._failed_starts + 1
        if self._failed_starts >= policy.max_failed_starts:
            return None
        delay = min(policy.max_delay, policy.first_delay * 2.0**self._delays)
        self._delays += 1
        return delay


def supervise(settings: Settings) -> None:
    """Runs ``settings.workers`` workers until SIGINT/SIGTERM; StartupError when they cannot
    start, WorkerFailure when a slot keeps failing or workers had to be killed."""
    if not sys.platform.startswith("linux"):
        raise StartupError(
            "--workers above 1 needs Linux, whose SO_REUSEPORT spreads connections over the "
            "processes; elsewhere run one process per port behind a load balancer"
        )
    asyncio.run(_Supervisor(settings, RestartPolicy()).run())


@dataclass
class _Worker:
    number: int
    process: BaseProcess
    report: Connection
    started: float
    served: bool = False


class _Supervisor:
    def __init__(self, settings: Settings, policy: RestartPolicy) -> None:
        self._settings = settings
        self._policy = policy
        self._worker_settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._slots = range(1, settings.workers + 1)
        self._restarts = {number: Restarts(policy) for number in self._slots}
        self._running: dict[int, _Worker] = {}
        self._restart_timers: dict[int, asyncio.TimerHandle] = {}
        self._failure: str | None = None
        self._shared_metrics: metrics.SharedByWorkers | None = None
        self._all_serving = asyncio.Event()
        self._stopping = asyncio.Event()
        self._all_exited = asyncio.Event()

    async def run(self) -> None:
        settings = self._settings
        with data_dir_claimed(settings):
            load_token_service(settings)
            _, tls_note = load_tls(settings)
            await prepare_storage(settings)
            try:
                reserved = reserve_port(settings.listen.host, settings.listen.port)
            except OSError as error:
                raise StartupError(
                    f"cannot listen on {settings.listen}: {error.strerror or error}"
                ) from error
            with reserved, self._metrics_of_workers():
                bound = ListenAddress(settings.listen.host, reserved.getsockname()[1])
                self._worker_settings = replace(settings, listen=bound)
                await self._serve(bound, tls_note)
        if self._failure is not None:
            raise WorkerFailure(self._failure)
        log.info("stopped")

    @contextlib.contextmanager
    def _metrics_of_workers(self) -> Iterator[None]:
        """With an address for metrics: the workers' shared metrics, served summed."""
        listen = self._settings.metrics_listen
        if listen is None:
            yield
            return
        with metrics.shared_by_workers() as shared, metrics_served(listen, shared.registry):
            self._shared_metrics = shared
            try:
                yield
            finally:
                self._shared_metrics = None

    async def _serve(self, bound: ListenAddress, tls_note: str) -> None:
        loop = asyncio.get_running_loop()
        for signal_number in _STOP_SIGNALS:
            loop.add_signal_handler(signal_number, self._stop, signal_number)
        try:
            for number in self._slots:
                self._start(number)
            serving = asyncio.ensure_future(self._all_serving.wait())
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait((serving, stopping), return_when=asyncio.FIRST_COMPLETED)
            serving.cancel()
            if not self._stopping.is_set():
                log.info(
                    "listening on %s (%s; event loop %s; %d workers)",
                    bound,
                    tls_note,
                    self._settings.event_loop,
                    self._settings.workers,
                )
            await stopping
            await self._wait_for_exits()
        finally:
            for signal_number in _STOP_SIGNALS:
                loop.remove_signal_handler(signal_number)

    def _start(self, number: int) -> None:
        self._restart_timers.pop(number, None)
        report, reporter = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=work,
            args=(self._worker_settings, reporter),
            name=f"modelcatalog-worker-{number}",
        )
        process.start()
        reporter.close()
        worker = _Worker(number, process, report, time.monotonic())
        self._running[number] = worker
        loop = asyncio.get_running_loop()
        loop.add_reader(report.fileno(), self._reported, worker)
        loop.add_reader(process.sentinel, self._exited, worker)
        log.info("worker %d started (pid %d)", number, process.pid)

    def _reported(self, worker: _Worker) -> None:
        """The worker accepts connections (or its end of the pipe closed: it is exiting)."""
        asyncio.get_running_loop().remove_reader(worker.report.fileno())
        try:
            worker.report.recv_bytes()
        except EOFError:
            return
        worker.served = True
        if self._all_serving.is_set():
            log.info("worker %d (pid %d) accepts connections", worker.number, worker.process.pid)
        if len(self._running) == len(self._slots) and all(
            running.served for running in self._running.values()
        ):
            self._all_serving.set()

    def _exited(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.process.sentinel)
        if not worker.report.closed:
            loop.remove_reader(worker.report.fileno())
            worker.report.close()
        worker.process.join()
        del self._running[worker.number]
        if self._shared_metrics is not None and worker.process.pid is not None:
            self._shared_metrics.process_exited(worker.process.pid)
        if self._stopping.is_set():
            if not self._running:
                self._all_exited.set()
            return
        ran_for = time.monotonic() - worker.started
        how = _exit_description(worker.process.exitcode)
        delay = self._restarts[worker.number].after_exit(served=worker.served, ran_for=ran_for)
        if delay is None:
            self._failure = (
                f"worker {worker.number} {how} before it could serve, "
                f"{self._policy.max_failed_starts} times in a row; giving up (the lines "
                "above say why)"
            )
            self._stop(signal.SIGTERM)
            return
        log.warning(
            "worker %d (pid %d) %s after %.1f s; starting another in %.1f s",
            worker.number,
            worker.process.pid,
            how,
            ran_for,
            delay,
        )
        self._restart_timers[worker.number] = loop.call_later(delay, self._start, worker.number)

    def _stop(self, signal_number: int) -> None:
        """Tells every worker to stop (SIGTERM) on the first stop signal (``signal_number``,
        which is logged); later ones change nothing."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for timer in self._restart_timers.values():
            timer.cancel()
        self._restart_timers.clear()
        for worker in self._running.values():
            _send(worker.process, signal.SIGTERM)
        if not self._running:
            self._all_exited.set()

    async def _wait_for_exits(self) -> None:
        """Waits for the workers to drain; kills those still running after the bound."""
        bound = self._settings.drain_period + STOP_TIMEOUT_SECONDS
        try:
            await asyncio.wait_for(self._all_exited.wait(), bound)
        except TimeoutError:
            stuck = sorted(self._running)
            for number in stuck:
                _send(self._running[number].process, signal.SIGKILL)
            await self._all_exited.wait()
            self._failure = self._failure or (
                f"worker(s) {', '.join(map(str, stuck))} did not stop within {bound:.0f} s "
                "of the signal and were killed"
            )


def _exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _send(process: BaseProcess, signal_number: int) -> None:
    if process.pid is not None:
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.kill(process.pid, signal_number)


def work(settings: Settings, report: Connection) -> None:
    """A worker process: serves on its own SO_REUSEPORT listener until a signal, or until the
    supervisor is gone; says on ``report`` when it accepts connections."""
    # A terminal's Ctrl-C reaches the whole process group: the supervisor alone answers it,
    # and tells the workers to stop with SIGTERM (no KeyboardInterrupt in a closing worker).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_up_process(settings)
    try:
        run_on_event_loop(settings.event_loop, _serve_as_worker(settings, report))
    except StartupError as error:
        log.error("%s", error)
        raise SystemExit(1) from None


async def _serve_as_worker(settings: Settings, report: Connection) -> None:
    loop = asyncio.get_running_loop()
    supervisor = multiprocessing.parent_process()
    if supervisor is not None and supervisor.sentinel is not None:
        sentinel = supervisor.sentinel

        def supervisor_gone() -> None:
            loop.remove_reader(sentinel)
            log.error("the supervisor is gone; stopping")
            os.kill(os.getpid(), signal.SIGTERM)

        loop.add_reader(sentinel, supervisor_gone)

    def listening(bound: ListenAddress, tls_note: str, event_loop: str) -> None:
        report.send_bytes(b"listening")
        report.close()

    async with metrics.gauges_sampled():
        await serve_until_stopped(
            settings, on_listening=listening, reuse_port=True, stop_signals=(signal.SIGTERM,)
        )
