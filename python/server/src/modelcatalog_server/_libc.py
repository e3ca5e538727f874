"""C library calls that Python does not wrap, looked up once; each is None where it is missing.

They are tunings only: glibc's allocator controls and Linux's ``sync_file_range``. Where the
platform lacks one, the server behaves the same, only with more page faults or a longer fsync.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any


def _c_library() -> ctypes.CDLL | None:
    """The C library's functions (``dlopen(NULL)``: the symbols the process already has)."""
    try:
        return ctypes.CDLL(None)
    except OSError:  # a platform without a C library to open
        return None


_C = _c_library()


def _function(
    name: str, *argument_types: Any, glibc_only: bool = False
) -> Callable[..., int] | None:
    """The C function ``name`` returning an int, or None where it (or glibc) is missing."""
    if _C is None or (glibc_only and not hasattr(_C, "gnu_get_libc_version")):
        return None
    function = getattr(_C, name, None)
    if function is None:
        return None
    function.argtypes = argument_types
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


#: glibc ``mallopt(parameter, value)``; the parameter numbers below are glibc's own.
mallopt = _function("mallopt", ctypes.c_int, ctypes.c_int, glibc_only=True)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

#: glibc ``malloc_trim(pad)``: returns free heap memory to the system.
malloc_trim = _function("malloc_trim", ctypes.c_size_t, glibc_only=True)

#: Linux ``sync_file_range(fd, offset, nbytes, flags)``.
sync_file_range = _function(
    "sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint
)
SYNC_FILE_RANGE_WRITE = 2
