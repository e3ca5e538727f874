"""C library calls that Python does not wrap, looked up once; each is None where it is missing.

They are tunings only (Linux's ``sync_file_range``): where the platform lacks one, the server
behaves the same, only slower.
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


def _function(name: str, *argument_types: Any) -> Callable[..., int] | None:
    """The C function ``name`` returning an int, or None where it is missing."""
    function = None if _C is None else getattr(_C, name, None)
    if function is None:
        return None
    function.argtypes = argument_types
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


#: Linux ``sync_file_range(fd, offset, nbytes, flags)``.
sync_file_range = _function(
    "sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint
)
SYNC_FILE_RANGE_WRITE = 2
