"""Small file-system helpers shared by the parts that keep state in the data directory."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

_SYNC_FILE_RANGE_WRITE = 2


def _linux_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range(fd, offset, nbytes, flags)``, which Python does not wrap."""
    try:
        function = ctypes.CDLL(None).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_sync_file_range = _linux_sync_file_range()


def write_private_file(path: Path, data: bytes) -> None:
    """Writes ``data`` readable by the owner only (0600), atomically: all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def start_writeback(descriptor: int, offset: int, length: int) -> bool:
    """Starts writing a just-written range of a file to disk, without waiting for it.

    The kernel otherwise keeps the bytes of a large file in memory until the fsync that makes
    it durable, which then waits for all of them (about 0.3 s per GiB here); started as the
    bytes arrive, that writing overlaps the transfer. Only a hint: durability still comes from
    fsync, and where Linux's ``sync_file_range`` is missing or refuses the file nothing happens.
    Returns whether the writing was started.
    """
    if _sync_file_range is None:
        return False
    return _sync_file_range(descriptor, offset, length, _SYNC_FILE_RANGE_WRITE) == 0
