"""The C allocator is tuned for large buffers in the server process (glibc)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Prints whether a fresh 4 MiB buffer (a large upload chunk) lies in the heap, where freed
#: buffers are reused, rather than in a mapping of its own that the kernel must map and zero.
_IN_HEAP = """
def in_heap(buffer):
    address = id(buffer)
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            return low <= address < high
    return False
"""


def run_python(code: str, tmp_path: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", _IN_HEAP + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    return completed.stdout


@pytest.fixture(autouse=True)
def glibc_on_linux() -> None:
    if platform.libc_ver()[0] != "glibc" or not sys.platform.startswith("linux"):
        pytest.skip("the tuning is glibc's, observed through /proc")


def test_tuned_allocator_keeps_large_buffers_in_the_heap(tmp_path: Path) -> None:
    """Untuned, a 4 MiB buffer gets its own mapping; tuned, it comes from the reusable heap."""
    output = run_python(
        """
        from modelcatalog_server.memory import tune_allocator
        print(in_heap(bytes(4 << 20)))
        print(tune_allocator())
        print(in_heap(bytes(4 << 20)))
        """,
        tmp_path,
    )
    assert output.split() == ["False", "True", "True"]


def test_the_server_tunes_the_allocator_before_it_serves(tmp_path: Path) -> None:
    """``modelcatalog-server`` runs with the tuned allocator from the start."""
    output = run_python(
        """
        from modelcatalog_server import __main__ as entry
        from modelcatalog_server import app

        async def serve(settings):
            print(in_heap(bytes(4 << 20)))

        app.serve = serve
        entry.main(["--data-dir", "data"])
        """,
        tmp_path,
    )
    assert output.split() == ["True"]


def test_worker_threads_allocate_in_the_heap_that_trimming_returns(tmp_path: Path) -> None:
    """Tuned, a worker thread's large buffer (a block read for a download) comes from the main
    heap, whose free memory malloc_trim gives back after the clients leave."""
    output = run_python(
        """
        import threading
        from modelcatalog_server.memory import tune_allocator
        tuned = tune_allocator()
        placed = []
        worker = threading.Thread(target=lambda: placed.append(in_heap(bytes(4 << 20))))
        worker.start()
        worker.join()
        print(tuned, placed[0])
        """,
        tmp_path,
    )
    assert output.split() == ["True", "True"]
