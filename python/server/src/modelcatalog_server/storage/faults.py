"""Storage faults: the disk or the database cannot do the work right now.

Neither the client's fault nor a bug, so never INTERNAL: ``modelcatalog_server.errors`` turns
them into RESOURCE_EXHAUSTED (full) and UNAVAILABLE (busy) for the client, while the server
keeps serving whatever does not need the missing space or lock::

    StorageFault
    ├── StorageFull         no space or quota left for a file or the database
    └── StorageUnavailable  the database stayed locked or busy past its wait limit
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("modelcatalog_server.storage")

#: errno values meaning "no space left": the file system is full, or the user's quota is.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class StorageFault(Exception):
    """Storage cannot do this now; the message says why, for the server's log."""


class StorageFull(StorageFault):
    """There is no space left to store the data."""


class StorageUnavailable(StorageFault):
    """Storage did not answer within its wait limit (locked by another process, or busy)."""


@contextmanager
def disk_full_is_a_fault(action: str) -> Iterator[None]:
    """Turns "no space left" while ``action`` into StorageFull; other errors pass unchanged."""
    try:
        yield
    except OSError as error:
        if error.errno not in _FULL_ERRNOS:
            raise
        log.warning("storage is full while %s: %s", action, error)
        raise StorageFull(f"no space left while {action}: {error.strerror}") from error
