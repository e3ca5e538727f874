"""The C allocator, tuned for a server that moves large buffers (glibc only; elsewhere a no-op).

glibc gives a buffer above its mmap threshold (128 KiB at first) its own mapping, unmapped when
freed, and trims the heap whenever more than its trim threshold is free at the top; so every
1 MiB chunk an upload receives or a download sends is built in fresh memory that the kernel must
map and zero: hundreds of page faults per MiB. With both thresholds raised, such buffers are
reused from the heap (measured: server CPU per MiB 0.64x on SDK downloads, 0.83x on uploads).
The transport's guards return the kept memory to the system after connections close.
"""

from __future__ import annotations

from . import _libc

#: Buffers up to this size come from the heap and are reused: the largest request message
#: (4 MiB + 64 KiB), a download block and their copies in the codec and HTTP/2 layers, with room.
MMAP_THRESHOLD_BYTES = 8 << 20
#: Free memory a heap keeps at its top instead of giving it back at once: a few transfers' worth
#: of buffers, so that they are reused rather than mapped again.
TRIM_THRESHOLD_BYTES = 32 << 20


def tune_allocator() -> bool:
    """Raises glibc's mmap and trim thresholds for this process; False where not glibc."""
    if _libc.mallopt is None:
        return False
    return bool(
        _libc.mallopt(_libc.M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and _libc.mallopt(_libc.M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def return_free_memory() -> None:
    """Gives the allocator's free memory back to the system (glibc's ``malloc_trim``)."""
    if _libc.malloc_trim is not None:
        _libc.malloc_trim(0)
