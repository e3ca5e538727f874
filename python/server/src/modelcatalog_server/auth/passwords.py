"""bcrypt password hashing, always off the event loop, in two bounded lanes of threads.

Passwords longer than bcrypt's 72-byte limit are rejected before they get here (see
``domain.validation``), never silently truncated. Verification of an unknown user runs against
a dummy hash whose cost the caller matches to the stored hashes' (``use_dummy_cost``), so a
failed sign-in takes the same time either way.

Checks run in one of two lanes, each with its own threads and its own queue bound: the
*suspect* lane takes callers that failed recently or already have checks in flight, the
*clean* lane everyone else. A flood of failing sign-ins fills the suspect lane and is refused
there (OVERLOADED) while the clean lane keeps answering legitimate callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from ..domain.errors import ResourceExhausted

T = TypeVar("T")

#: Password checks queued beyond the clean lane's threads before new ones are refused.
MAX_QUEUED_CHECKS = 64
#: Password checks queued beyond the suspect lane's threads before new ones are refused.
MAX_QUEUED_SUSPECT_CHECKS = 16

#: bcrypt ignores everything past this many bytes; longer passwords are refused upstream.
BCRYPT_MAX_PASSWORD_BYTES = 72

_DUMMY_PASSWORD = b"dummy password"


#: The niceness of bcrypt threads: below the event loop's, so a burst of password checks
#: cannot take the CPU from every other call (on Linux, niceness is per thread).
BCRYPT_THREAD_NICENESS = 10


def _yield_cpu() -> None:
    """Lowers the calling worker thread's CPU priority, where the system allows it."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BCRYPT_THREAD_NICENESS)


class _Lane:
    """A thread pool that refuses work beyond its threads plus ``max_queued`` waiting."""

    def __init__(self, name: str, threads: int, max_queued: int) -> None:
        self.pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix=f"bcrypt-{name}", initializer=_yield_cpu
        )
        self._max_in_flight = threads + max_queued
        self._in_flight = 0

    def refuse_when_full(self) -> None:
        """Refuses (OVERLOADED) work beyond the threads and the queue bound."""
        if self._in_flight >= self._max_in_flight:
            raise ResourceExhausted(
                "the server is checking too many passwords at once; retry in a moment",
                reason="OVERLOADED",
            )

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Runs bcrypt work in the pool; refuses it when the queue is full, so a flood of
        sign-ins is turned away instead of delaying every later one without bound."""
        self.refuse_when_full()
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)
        finally:
            self._in_flight -= 1


class PasswordHasher:
    """Hashes and verifies passwords with bcrypt in two lanes of bounded threads and queues."""

    def __init__(
        self,
        cost: int,
        max_threads: int | None = None,
        max_queued: int = MAX_QUEUED_CHECKS,
        *,
        suspect_threads: int | None = None,
        max_queued_suspect: int = MAX_QUEUED_SUSPECT_CHECKS,
    ) -> None:
        self._cost = cost
        threads = max_threads or min(4, os.cpu_count() or 1)
        self._clean = _Lane("clean", threads, max_queued)
        self._suspect = _Lane(
            "suspect", suspect_threads or max(1, threads // 2), max_queued_suspect
        )
        self._dummy_hashes: dict[int, bytes] = {}
        self._dummy_cost = cost

    @property
    def cost(self) -> int:
        """The configured cost: new hashes get it, and older ones are rehashed to it."""
        return self._cost

    def cost_of(self, password_hash: str) -> int | None:
        """The cost a bcrypt hash was made with, read from its header ("$2b$12$"; the header
        alone is enough); None for anything that is not a bcrypt hash."""
        parts = password_hash.split("$")
        if len(parts) < 3 or not parts[2].isdigit():
            return None
        return int(parts[2])

    async def use_dummy_cost(self, cost: int) -> None:
        """Checks unknown usernames against a hash of ``cost`` from now on."""
        await self._dummy_hash(cost)
        self._dummy_cost = cost

    async def hash(self, password: str, *, suspect: bool = False) -> str:
        """A new salted bcrypt hash of ``password`` at the configured cost."""
        lane = self._suspect if suspect else self._clean
        return (await lane.run(_hash, password.encode(), self._cost)).decode()

    async def verify(
        self, password: str, password_hash: str | None, *, suspect: bool = False
    ) -> bool:
        """Whether ``password`` matches. With no hash (unknown user), or a password bcrypt
        cannot take, it fails after the same bcrypt work, so timing tells nothing."""
        lane = self._suspect if suspect else self._clean
        secret = password.encode()
        fits = len(secret) <= BCRYPT_MAX_PASSWORD_BYTES
        if password_hash is None:
            dummy = await self._dummy_hash(self._dummy_cost)
            await lane.run(bcrypt.checkpw, secret[:BCRYPT_MAX_PASSWORD_BYTES], dummy)
            return False
        matches = await lane.run(
            bcrypt.checkpw, secret[:BCRYPT_MAX_PASSWORD_BYTES], password_hash.encode()
        )
        return matches and fits

    def refuse_when_suspect_lane_full(self) -> None:
        """Refuses (OVERLOADED) at once a check the suspect lane could not take now, so that a
        caller sure to land there is turned away before any other work is done for it."""
        self._suspect.refuse_when_full()

    def close(self) -> None:
        """Stops the worker threads once their current work is done."""
        for lane in (self._clean, self._suspect):
            lane.pool.shutdown(wait=False, cancel_futures=True)

    async def _dummy_hash(self, cost: int) -> bytes:
        """The dummy hash of ``cost``, made once per cost outside the lanes' bounds (it is the
        server's own work, not a caller's)."""
        if cost not in self._dummy_hashes:
            loop = asyncio.get_running_loop()
            dummy = await loop.run_in_executor(self._clean.pool, _hash, _DUMMY_PASSWORD, cost)
            self._dummy_hashes[cost] = dummy
        return self._dummy_hashes[cost]


def _hash(password: bytes, cost: int) -> bytes:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost))
