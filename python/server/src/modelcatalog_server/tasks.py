"""Awaiting work that must not be cut off half-way by a caller's cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def run_to_end(work: Coroutine[Any, Any, T]) -> T:
    """What ``work`` returns, run in a task of its own that the caller's cancellation does not
    stop: a transaction, or a request the store may already be carrying out, ends before the
    caller goes on to clean up after it. The caller's cancellation is raised once it has."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait((task,))
        if not task.cancelled():
            task.exception()  # seen; the caller gets its cancellation
        raise
