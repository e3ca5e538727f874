"""Awaiting work that must not be cut off half-way by a caller's cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def run_to_end(
    work: Coroutine[Any, Any, T],
    *,
    undo: Callable[[T], Coroutine[Any, Any, None]] | None = None,
) -> T:
    """What ``work`` returns, run in a task of its own that the caller's cancellation does not
    stop: a transaction, or a request the store may already be carrying out, ends before the
    caller goes on to clean up after it. The caller's cancellation is raised once it has, and,
    when ``work`` succeeded, once ``undo`` of its result (also run to its end) has too: what
    ``work`` began for a caller that is gone must not be left behind."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait((task,))
        if not task.cancelled() and task.exception() is None and undo is not None:
            await run_to_end(undo(task.result()))
        raise
