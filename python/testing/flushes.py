"""The syncs of files that transfers write while they grow (``modelcatalog.wire.SyncAhead``),
recorded: shared by the SDK's and the server's unit tests (``python/testing`` is on pytest's
path)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

import pytest

from modelcatalog.wire import _sync_ahead

needs_fdatasync = pytest.mark.skipif(
    not hasattr(os, "fdatasync"), reason="where fdatasync is missing, steps are synced with fsync"
)


def sync_every(monkeypatch: pytest.MonkeyPatch, step_bytes: int) -> None:
    """Files written from now on are synced every ``step_bytes``, so small ones take steps."""
    monkeypatch.setattr(_sync_ahead, "SYNC_STEP_BYTES", step_bytes)


def record_flushes(
    monkeypatch: pytest.MonkeyPatch, fdatasync: Callable[[int], None] | None = None
) -> list[tuple[str, int]]:
    """Records each os.fdatasync and os.fsync of a regular file, with the file's size then, in
    order; ``fdatasync``, if given, then runs instead of the real one."""
    calls: list[tuple[str, int]] = []

    def recording(name: str, real: Callable[[int], None]) -> Callable[[int], None]:
        def flush(descriptor: int) -> None:
            status = os.fstat(descriptor)
            if stat.S_ISREG(status.st_mode):
                calls.append((name, status.st_size))
            real(descriptor)

        return flush

    monkeypatch.setattr(os, "fdatasync", recording("fdatasync", fdatasync or os.fdatasync))
    monkeypatch.setattr(os, "fsync", recording("fsync", os.fsync))
    return calls
