"""A private event loop in a daemon thread, so synchronous code can run the async client.

The caller's thread may run an event loop of its own (a notebook, an async program calling a
library), where ``asyncio.run`` refuses to start another; a loop in a thread of its own never
meets the caller's. Calls hand their coroutine to that loop and block until it is done;
interrupting the wait (Ctrl-C) cancels the coroutine, waits for it to clean up, and re-raises.
"""

import asyncio
import concurrent.futures
import signal
import threading
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, TypeVar

_T = TypeVar("_T")


class LoopThread:
    """An event loop running in a daemon thread until ``stop``.

    The thread blocks SIGINT (and so do the worker threads it starts, which inherit its signal
    mask): the kernel then delivers Ctrl-C to a thread that can take it, which wakes the main
    thread from its wait in ``run`` instead of being noticed only once the call is over.
    """

    def __init__(self) -> None:
        started: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]]
        started = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(started,), name="modelcatalog-client", daemon=True
        )
        self._thread.start()
        self._loop, self._stopping = started.result()
        self._stopped = False

    @staticmethod
    def _main(
        started: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]],
    ) -> None:
        if hasattr(signal, "pthread_sigmask"):  # POSIX
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

        async def serve() -> None:
            stopping = asyncio.Event()
            started.set_result((asyncio.get_running_loop(), stopping))
            await stopping.wait()

        # asyncio.run also cancels what is left, closes async generators (an abandoned
        # list iterator) and joins the worker threads of asyncio.to_thread.
        asyncio.run(serve())

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` in the loop and return its result or raise its error.

        An exception that interrupts the wait (``KeyboardInterrupt`` from Ctrl-C) cancels the
        coroutine and is raised once the coroutine has finished cancelling, so its cleanup
        (an upload's stream reset, a download's ``.part`` file closed) is done by then.
        """
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError(
                "a Client method was called from the client's own event loop (e.g. in a"
                " progress callback); use AsyncClient in async code"
            )
        if self._stopped:
            coroutine.close()
            raise RuntimeError("the client is closed")
        outcome: concurrent.futures.Future[_T] = concurrent.futures.Future()
        tasks: list[asyncio.Task[_T]] = []

        def start() -> None:
            task = self._loop.create_task(coroutine)
            task.add_done_callback(lambda task: _settle(outcome, task))
            tasks.append(task)

        def cancel() -> None:
            # The loop runs thread-safe callbacks in order: a scheduled start() has run.
            if tasks:
                tasks[0].cancel()
            else:
                coroutine.close()
                outcome.cancel()

        try:
            self._loop.call_soon_threadsafe(start)
            return outcome.result()
        except BaseException:
            if not outcome.done():  # interrupted while waiting, not an error of the coroutine
                self._loop.call_soon_threadsafe(cancel)
                # Wait for the end of the coroutine (the cancellation itself, as a rule).
                with suppress(concurrent.futures.CancelledError):
                    outcome.exception()
            raise

    def stop(self) -> None:
        """Stop the loop and, unless called from the loop itself, wait for its thread."""
        if self._stopped:
            return
        self._stopped = True
        self._loop.call_soon_threadsafe(self._stopping.set)
        if threading.current_thread() is not self._thread:
            self._thread.join()


def _settle(outcome: concurrent.futures.Future[_T], task: asyncio.Task[_T]) -> None:
    """Pass the task's result, error or cancellation on to the waiting thread."""
    if task.cancelled():
        outcome.cancel()
    elif (error := task.exception()) is not None:
        outcome.set_exception(error)
    else:
        outcome.set_result(task.result())
