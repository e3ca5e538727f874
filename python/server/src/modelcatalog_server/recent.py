"""A bounded map whose entries expire: the per-process memory of recent token checks and of
model encodings."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``capacity`` entries, each kept until its own moment; when full, the least
    recently used entry makes room. Not thread-safe: used on the event loop only."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, now: float) -> V | None:
        """The value kept for ``key``; None when there is none or it expired by ``now``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, until = entry
        if now >= until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, until: float) -> None:
        """Keeps ``value`` for ``key`` until the moment ``until`` (on the caller's clock)."""
        self._entries[key] = (value, until)
        self._entries.move_to_end(key)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forgets every entry now."""
        self._entries.clear()

    def discard(self, key: K) -> None:
        """Forgets ``key`` now."""
        self._entries.pop(key, None)
