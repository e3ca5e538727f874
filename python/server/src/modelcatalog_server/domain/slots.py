"""Slots: how many transfers of one kind run at once, in all, per user and per address.

Counted per user and per network address, so that neither many accounts nor many addresses let
one party take every slot. Each start and refusal logs the slots in use. A slot is this
process's: every server process has its own (they bound its own memory and files).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import ResourceExhausted

log = logging.getLogger("modelcatalog_server")


@dataclass(frozen=True)
class SlotLimits:
    """Transfers of one kind at once: in all, per user, per address."""

    total: int
    per_user: int
    per_peer: int


class Slots:
    """Hands out the slots of one kind of transfer (``name``: "upload", "download")."""

    def __init__(self, name: str, limits: SlotLimits, *, logged: bool = True) -> None:
        """``logged``: whether each start and refusal logs the slots in use (the access log
        already has a line for every call; slots anyone may take log nothing more)."""
        self._name = name
        self._limits = limits
        self._logged = logged
        self._in_use = 0
        self._by_user: Counter[str] = Counter()
        self._by_peer: Counter[str] = Counter()

    @property
    def in_use(self) -> int:
        """Slots held now, in all."""
        return self._in_use

    @contextmanager
    def taken(self, user: str, peer: str) -> Iterator[None]:
        """Holds a slot for ``user`` at ``peer`` while the block runs; OVERLOADED without one."""
        limits = self._limits
        if (
            self._in_use >= limits.total
            or self._by_user[user] >= limits.per_user
            or self._by_peer[peer] >= limits.per_peer
        ):
            if self._logged:
                log.warning("%s refused, no slot free: %s", self._name, self._use(user, peer))
            raise ResourceExhausted(
                f"too many {self._name}s are in progress; retry when one has finished",
                reason="OVERLOADED",
            )
        self._in_use += 1
        self._by_user[user] += 1
        self._by_peer[peer] += 1
        if self._logged:
            log.info("%s started, slots in use: %s", self._name, self._use(user, peer))
        try:
            yield
        finally:
            self._in_use -= 1
            for counter, key in ((self._by_user, user), (self._by_peer, peer)):
                counter[key] -= 1
                if not counter[key]:
                    del counter[key]

    def _use(self, user: str, peer: str) -> str:
        name, limits = self._name, self._limits
        return (
            f"{name}s={self._in_use}/{limits.total} user={user} "
            f"user_{name}s={self._by_user[user]}/{limits.per_user} "
            f"peer={peer} peer_{name}s={self._by_peer[peer]}/{limits.per_peer}"
        )
