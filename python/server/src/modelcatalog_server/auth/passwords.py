"""bcrypt password hashing, always off the event loop in a bounded thread pool.

Passwords longer than bcrypt's 72-byte limit are rejected before they get here (see
``domain.validation``), never silently truncated. Verification of an unknown user runs against
a dummy hash of the same cost, so a failed sign-in takes the same time either way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from ..domain.errors import ResourceExhausted

T = TypeVar("T")

#: Password checks queued beyond the worker threads before new ones are refused (OVERLOADED).
MAX_QUEUED_CHECKS = 64

#: bcrypt ignores everything past this many bytes; longer passwords are refused upstream.
BCRYPT_MAX_PASSWORD_BYTES = 72


class PasswordHasher:
    """Hashes and verifies passwords with bcrypt in at most ``max_threads`` threads at once."""

    def __init__(
        self, cost: int, max_threads: int | None = None, max_queued: int = MAX_QUEUED_CHECKS
    ) -> None:
        self._cost = cost
        threads = max_threads or min(4, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bcrypt")
        self._max_in_flight = threads + max_queued
        self._in_flight = 0
        self._dummy_hash: bytes | None = None

    async def warm_up(self) -> bytes:
        """The dummy hash, computed once; called at start so no sign-in pays for it."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._run(_hash, b"dummy password", self._cost)
        return self._dummy_hash

    async def hash(self, password: str) -> str:
        """A new salted bcrypt hash of ``password`` at the configured cost."""
        return (await self._run(_hash, password.encode(), self._cost)).decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Whether ``password`` matches. With no hash (unknown user), or a password bcrypt
        cannot take, it fails after the same bcrypt work, so timing tells nothing."""
        secret = password.encode()
        if password_hash is None or len(secret) > BCRYPT_MAX_PASSWORD_BYTES:
            dummy = await self.warm_up()
            await self._run(bcrypt.checkpw, secret[:BCRYPT_MAX_PASSWORD_BYTES], dummy)
            return False
        return await self._run(bcrypt.checkpw, secret, password_hash.encode())

    def close(self) -> None:
        """Stops the worker threads once their current work is done."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        """Runs bcrypt work in the pool; refuses it when the queue is full, so a flood of
        sign-ins is turned away instead of delaying every later one without bound."""
        if self._in_flight >= self._max_in_flight:
            raise ResourceExhausted(
                "the server is checking too many passwords at once; retry in a moment",
                reason="OVERLOADED",
            )
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
        finally:
            self._in_flight -= 1


def _hash(password: bytes, cost: int) -> bytes:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost))
