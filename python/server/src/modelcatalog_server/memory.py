"""The C allocator, tuned for a server that moves large buffers (glibc only; elsewhere a no-op).

Without tuning, every 1 MiB chunk an upload receives or a download sends is built in fresh
memory that the kernel must map and zero (see ``modelcatalog.wire.tune_allocator``); with it,
such buffers are reused from the heap (measured: server CPU per MiB 0.64x on SDK downloads,
0.83x on uploads). The transport's guards return the kept memory to the system after
connections close; that reaches all of it only in the main heap (glibc never trims the free top
of a thread's heap), so every thread allocates there: they hold the GIL when they allocate, so
sharing one heap costs them no waiting.
"""

from __future__ import annotations

from modelcatalog import wire

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
    return wire.tune_allocator(
        mmap_threshold=MMAP_THRESHOLD_BYTES, trim_threshold=TRIM_THRESHOLD_BYTES, arenas=ARENAS
    )
