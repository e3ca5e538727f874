"""Sign-in throttling: failed sign-ins are rows in the database, counted over a sliding window.

Every failure is recorded for the username as typed (whether or not an account has it, so
throttling says nothing about which usernames exist) and for the caller's network address
(IPv6 addresses by their /64 network, which one subscriber usually holds whole). Within the
window a sign-in is refused with SIGN_IN_THROTTLED, before any bcrypt work, when

- the username has ``max_failures_per_account`` failures *from this address*,
- the username has ``ACCOUNT_WIDE_FACTOR`` times as many failures from all addresses, or
- the address has ``max_failures_per_peer`` failures for any usernames.

Counting the per-account limit per address means one attacker cannot lock an account's owner
out by failing on purpose; only many addresses together reach the looser account-wide limit,
and even then only for the window. Refused attempts are not recorded, so retrying while
refused does not make the wait longer. A successful sign-in forgets the failures of that
username from that address only: it does not reset what the address did to other usernames,
nor what other addresses did to this one.

The same records choose the bcrypt lane (``auth.passwords``): an address with recent failures,
or with several password checks already in flight, is *suspect*; while the suspect lane is
full, such an address is refused (OVERLOADED) before its database read.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..peers import peer_key
from ..storage.metadata import MetadataStore, Transaction, now_us
from .errors import ResourceExhausted

#: The account-wide limit is this many times the per-account, per-address limit.
ACCOUNT_WIDE_FACTOR = 10
#: From this many password checks in flight for one address on, its next ones are suspect.
SUSPECT_IN_FLIGHT_PER_PEER = 2
#: The retry hint when attempts still being checked, not recorded failures, fill a limit.
UNSETTLED_RETRY_SECONDS = 1
#: Attempts in flight may reach this many times a limit before they alone throttle: they may
#: all be right (a CI matrix signing in at once), but a burst of guesses stays bounded.
UNSETTLED_LIMIT_FACTOR = 2
#: Expired failures are deleted at most this often by one process.
PRUNE_INTERVAL_US = 60_000_000


@dataclass(frozen=True)
class SignInLimits:
    """How many failures are tolerated within ``window_seconds``."""

    max_failures_per_account: int = 10
    max_failures_per_peer: int = 50
    window_seconds: int = 900

    @property
    def max_failures_per_account_everywhere(self) -> int:
        """The account-wide limit, over all addresses together."""
        return self.max_failures_per_account * ACCOUNT_WIDE_FACTOR


@dataclass(frozen=True)
class Attempt:
    """An admitted sign-in: whom it is counted against, and its bcrypt lane."""

    account_key: str
    peer_key: str
    suspect: bool
    failed_before: bool
    """Whether this username has failures from this address to forget if it succeeds."""


def account_key(username: str) -> str:
    """A fixed-size key for a username as typed, however long or strange it is."""
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


def _throttled(seconds: int, which: str) -> ResourceExhausted:
    return ResourceExhausted(
        f"too many failed sign-ins {which}; retry in {seconds} s",
        reason="SIGN_IN_THROTTLED",
        retry_after_seconds=seconds,
    )


#: Whose failures a throttle counts: (account, peer), (account, None) or (None, peer).
_Key = tuple[str | None, str | None]


def _pending_keys(attempt: Attempt) -> tuple[_Key, ...]:
    return (
        (attempt.account_key, attempt.peer_key),
        (attempt.account_key, None),
        (None, attempt.peer_key),
    )


class SignInGuard:
    """Admits or throttles sign-ins, records their outcome, and picks their bcrypt lane."""

    def __init__(
        self,
        store: MetadataStore,
        limits: SignInLimits,
        *,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._store = store
        self._limits = limits
        self._clock = clock
        self._window_us = limits.window_seconds * 1_000_000
        self._in_flight: Counter[str] = Counter()
        # Attempts admitted but not yet settled, by the same keys as recorded failures: a
        # burst of concurrent guesses counts before any of them has failed.
        self._pending: Counter[_Key] = Counter()
        self._last_prune_us = 0

    def reserve(self, username: str, peer: str | None) -> Attempt:
        """Counts an attempt as pending before any database work, or throttles it at once when
        attempts still being checked already fill a limit: a burst of concurrent guesses is
        refused without a query each, and cannot all slip past while the first are checked.

        The caller must ``settle`` the attempt however it ends.
        """
        account, address = account_key(username), peer_key(peer)
        for key, limit, which in self._limits_for(account, address):
            if self._pending[key] >= UNSETTLED_LIMIT_FACTOR * limit:
                raise _throttled(UNSETTLED_RETRY_SECONDS, which)
        attempt = Attempt(account, address, suspect=False, failed_before=False)
        for key in _pending_keys(attempt):
            self._pending[key] += 1
        return attempt

    def admit(self, tx: Transaction, attempt: Attempt) -> Attempt:
        """The reserved attempt with its bcrypt lane, or ResourceExhausted (SIGN_IN_THROTTLED)
        with the time to wait when recorded failures, with the attempts pending, fill a limit.

        Runs inside the caller's read transaction, off the event loop: it only reads the
        pending counts, which the event loop changes."""
        account, address = attempt.account_key, attempt.peer_key
        now = self._clock()
        since = now - self._window_us
        counts = tx.sign_in_failure_counts(account, address, since)
        recorded = {
            (account, address): counts.account_from_peer,
            (account, None): counts.account,
            (None, address): counts.peer,
        }
        waits: list[tuple[int, str]] = []
        for key, limit, which in self._limits_for(account, address):
            if recorded[key] >= limit:
                by_account, by_peer = key
                oldest_counted = tx.nth_latest_sign_in_failure(
                    limit, since, account_key=by_account, peer_key=by_peer
                )
                lifted = (oldest_counted or now) + self._window_us
                waits.append((max(1, math.ceil((lifted - now) / 1_000_000)), which))
            elif recorded[key] + self._pending[key] > UNSETTLED_LIMIT_FACTOR * limit:
                waits.append((UNSETTLED_RETRY_SECONDS, which))
        if waits:
            raise _throttled(*max(waits))
        return replace(attempt, suspect=counts.peer > 0, failed_before=counts.account_from_peer > 0)

    def _limits_for(self, account: str, address: str) -> tuple[tuple[_Key, int, str], ...]:
        """Each throttle: whose failures it counts, how many it tolerates, and how it is named."""
        limits = self._limits
        return (
            (
                (account, address),
                limits.max_failures_per_account,
                "for this username from your address",
            ),
            ((account, None), limits.max_failures_per_account_everywhere, "for this username"),
            ((None, address), limits.max_failures_per_peer, "from your address"),
        )

    def settle(self, attempt: Attempt) -> None:
        """Stops counting an admitted attempt as pending; call once, however it ended."""
        for key in _pending_keys(attempt):
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key]

    def crowded(self, peer: str) -> bool:
        """Whether ``peer`` (a key) has so many password checks in flight that its next one
        belongs in the suspect lane, whatever its record."""
        return self._in_flight[peer] >= SUSPECT_IN_FLIGHT_PER_PEER

    @contextmanager
    def checking(self, peer: str) -> Iterator[bool]:
        """Counts a password check in flight for ``peer`` (a key) while the block runs; yields
        whether the address already had so many that this one belongs in the suspect lane."""
        crowded = self.crowded(peer)
        self._in_flight[peer] += 1
        try:
            yield crowded
        finally:
            self._in_flight[peer] -= 1
            if not self._in_flight[peer]:
                del self._in_flight[peer]

    async def failed(self, attempt: Attempt, also: Callable[[Transaction], None]) -> None:
        """Records a failure, and runs ``also`` (the audit trail's record of it) in the same
        transaction; now and then also forgets the failures that no longer count."""
        now = self._clock()
        prune = now - self._last_prune_us >= PRUNE_INTERVAL_US

        def record(tx: Transaction) -> None:
            tx.insert_sign_in_failure(attempt.account_key, attempt.peer_key, now)
            also(tx)
            if prune:
                tx.prune_sign_in_failures(now - self._window_us)

        await self._store.write(record)
        if prune:
            self._last_prune_us = now

    async def succeeded(self, attempt: Attempt, also: Callable[[Transaction], None]) -> None:
        """Forgets this username's failures from this address (and nothing else), and runs
        ``also`` (the audit trail's record of the sign-in) in the same transaction."""

        def record(tx: Transaction) -> None:
            if attempt.failed_before:
                tx.delete_sign_in_failures(attempt.account_key, attempt.peer_key)
            also(tx)

        await self._store.write(record)
