"""The C allocator, tuned for a server that moves large buffers (glibc only; elsewhere a no-op).

glibc gives a buffer above its mmap threshold (128 KiB at first) its own mapping, unmapped when
freed, and trims the heap whenever more than its trim threshold is free at the top; so every
1 MiB chunk an upload receives or a download sends is built in fresh memory that the kernel must
map and zero: hundreds of page faults per MiB. With both thresholds raised, such buffers are
reused from the heap (measured: server CPU per MiB 0.64x on SDK downloads, 0.83x on uploads).
The transport's guards return the kept memory to the system after connections close; that
reaches all of it only in the main heap (glibc never trims the free top of a thread's heap), so
every thread allocates there: they hold the GIL when they allocate, so sharing one heap costs
them no waiting.
"""

from __future__ import annotations

from . import _libc

#: Buffers up to this size come from the heap and are reused: the largest request message
#: (4 MiB + 64 KiB), a download block and their copies in the codec and HTTP/2 layers, with room.
MMAP_THRESHOLD_BYTES = 8 << 20
#: Free memory a heap keeps at its top instead of giving it back at once: a few transfers' worth
#: of buffers, so that they are reused rather than mapped again.
TRIM_THRESHOLD_BYTES = 32 << 20


#: Heaps ("arenas") the threads allocate from: the main heap only.
ARENAS = 1


def tune_allocator() -> bool:
    """Tunes glibc's allocator for this process (call before starting threads); False where
    the allocator is not glibc's."""
    if _libc.mallopt is None:
        return False
    return all(
        _libc.mallopt(parameter, value)
        for parameter, value in (
            (_libc.M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            (_libc.M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
            (_libc.M_ARENA_MAX, ARENAS),
        )
    )


def return_free_memory() -> None:
    """Gives the allocator's free memory back to the system (glibc's ``malloc_trim``)."""
    if _libc.malloc_trim is not None:
        _libc.malloc_trim(0)
