"""glibc's allocator tuned for processes that move large buffers; elsewhere a no-op.

glibc gives a buffer above its mmap threshold (128 KiB at first) its own mapping, unmapped when
freed, and gives free memory above its trim threshold back at once; so every MiB-sized buffer
of a transfer (file block, message, HTTP/2 frame, TLS records) is built in fresh memory that the
kernel must map and zero: hundreds of page faults per MiB, about a third of a transfer's CPU.
With both thresholds raised, freed buffers serve the next ones. The SDK and the server each
choose their thresholds.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter numbers (``malloc.h``)."""


def _glibc_function(name: str, *argument_types: Any) -> Callable[..., int] | None:
    """glibc's function ``name`` returning an int, or None where the C library is not glibc."""
    try:
        library = ctypes.CDLL(None)  # dlopen(NULL): the symbols the process already has
    except OSError:
        return None
    if not hasattr(library, "gnu_get_libc_version") or not hasattr(library, name):
        return None
    function = getattr(library, name)
    function.argtypes = argument_types
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_mallopt = _glibc_function("mallopt", ctypes.c_int, ctypes.c_int)
_malloc_trim = _glibc_function("malloc_trim", ctypes.c_size_t)


def tune_allocator(*, mmap_threshold: int, trim_threshold: int, arenas: int | None = None) -> bool:
    """Sets glibc's mmap and trim thresholds (and, given, the number of heaps threads share);
    False where the allocator is not glibc's or refused a setting. Call before starting
    threads."""
    if _mallopt is None:
        return False
    settings = [(_M_MMAP_THRESHOLD, mmap_threshold), (_M_TRIM_THRESHOLD, trim_threshold)]
    if arenas is not None:
        settings.append((_M_ARENA_MAX, arenas))
    applied = [_mallopt(parameter, value) for parameter, value in settings]
    return all(applied)


def return_free_memory() -> None:
    """Gives the allocator's free memory back to the system (glibc's ``malloc_trim``)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
