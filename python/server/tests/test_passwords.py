"""Password hashing: bounded work, and failures that take the same bcrypt effort."""

from __future__ import annotations

import asyncio

import pytest

from modelcatalog_server.auth.passwords import PasswordHasher
from modelcatalog_server.domain.errors import ResourceExhausted


async def test_a_flood_of_checks_is_turned_away_not_queued_forever() -> None:
    """Beyond the threads plus the queue limit, checks fail at once with OVERLOADED."""
    hasher = PasswordHasher(cost=4, max_threads=1, max_queued=2)
    try:
        stored = await hasher.hash("correct horse")
        results = await asyncio.gather(
            *(hasher.verify("correct horse", stored) for _ in range(10)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, ResourceExhausted)]
        assert results[:3] == [True, True, True]
        assert len(refused) == 7
        assert all(r.reason == "OVERLOADED" for r in refused)
        assert await hasher.verify("correct horse", stored) is True
    finally:
        hasher.close()


async def test_a_full_suspect_lane_leaves_the_clean_lane_answering() -> None:
    """A flood of suspect checks is refused in its own lane; a clean check still runs."""
    hasher = PasswordHasher(
        cost=4, max_threads=1, max_queued=1, suspect_threads=1, max_queued_suspect=2
    )
    try:
        stored = await hasher.hash("correct horse")
        flood = [hasher.verify("wrong horse", stored, suspect=True) for _ in range(10)]
        *suspect, clean = await asyncio.gather(
            *flood, hasher.verify("correct horse", stored), return_exceptions=True
        )
        assert clean is True
        assert suspect[:3] == [False, False, False]
        assert all(
            isinstance(r, ResourceExhausted) and r.reason == "OVERLOADED" for r in suspect[3:]
        )
    finally:
        hasher.close()


async def test_hashes_report_their_cost() -> None:
    """The cost is read from a hash or just its header; anything else has none."""
    hasher = PasswordHasher(cost=4)
    try:
        assert hasher.cost_of(await hasher.hash("correct horse")) == 4
        assert hasher.cost_of("$2b$12$") == 12
        assert hasher.cost_of("plain text") is None
    finally:
        hasher.close()


async def test_wrong_and_unknown_both_fail() -> None:
    """A wrong password, a missing hash and a too-long password all verify as False."""
    hasher = PasswordHasher(cost=4)
    try:
        stored = await hasher.hash("correct horse")
        assert await hasher.verify("wrong horse", stored) is False
        assert await hasher.verify("correct horse", None) is False
        assert await hasher.verify("x" * 100, stored) is False
    finally:
        hasher.close()


@pytest.mark.parametrize("password", ["correct horse", "é" * 36])
async def test_hashes_verify_and_carry_the_cost(password: str) -> None:
    """A new hash is bcrypt at the configured cost and verifies its password."""
    hasher = PasswordHasher(cost=5)
    try:
        stored = await hasher.hash(password)
        assert stored.startswith("$2b$05$")
        assert await hasher.verify(password, stored) is True
    finally:
        hasher.close()
