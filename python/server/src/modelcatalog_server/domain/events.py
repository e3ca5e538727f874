"""The event feed (``WatchEvents``): changes in the folders a caller may see, in order, resumable.

Feed events are audit events recorded with a ``FeedKind`` (``audit.record``): new versions,
alias moves, grants and revocations, deletions. Each has a feed position given in commit order
(``storage.schema.event_feed``), so a watcher that has read every visible event up to position
N has missed none below it, in whichever server process they were recorded: a client that
reconnects with the last position it received gets everything after it, once.

A watcher polls the database: at most ``SCAN_WINDOW`` positions and ``BATCH`` events per
query, again at once while it is behind, else after the poll interval, or sooner when this
process records a feed event (``FeedSignal``). It sends one message at a time and polls again
only once the client has taken it (HTTP/2 flow control), so a slow client makes it wait instead
of buffering. What a caller may see is decided in every query, so a revoked role takes effect
on the next poll. Watchers hold slots (``slots``), per user and per address.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from ..storage.metadata import MetadataStore, Transaction
from ..storage.records import AuditEventRecord, FeedKind, Role
from . import validation
from .catalog import require_folder
from .errors import InvalidArgument, OutOfRange
from .slots import SlotLimits, Slots

#: Feed positions one query looks at, and feed events it returns, at most.
SCAN_WINDOW = 1000
BATCH = 100
#: A quiet stream gets a heartbeat this often, carrying the position it may resume from.
HEARTBEAT_SECONDS = 15.0
#: Default poll interval, and watchers at once: in all, per user, per address.
POLL_INTERVAL_SECONDS = 1
MAX_WATCHERS = 256
MAX_WATCHERS_PER_USER = 16
MAX_WATCHERS_PER_PEER = 16
DEFAULT_LIMITS = SlotLimits(MAX_WATCHERS, MAX_WATCHERS_PER_USER, MAX_WATCHERS_PER_PEER)


@dataclass(frozen=True)
class FeedItem:
    """What a watcher sends: an event, or (``event`` None) a heartbeat; ``position`` is where
    the client resumes from after it."""

    position: int
    event: AuditEventRecord | None


class FeedSignal:
    """Wakes this process's watchers when a feed event has committed here (others' events
    reach them by polling)."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Returns once notified, or after ``seconds``."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await changed.wait()


def model_of(event: AuditEventRecord) -> str:
    """The id of the model an event is about ('' for a folder's own events)."""
    parts = event.resource.split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "models" else ""


class EventFeed:
    """Streams feed events to watchers."""

    def __init__(
        self,
        store: MetadataStore,
        signal: FeedSignal,
        *,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        limits: SlotLimits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._signal = signal
        self._poll_interval = poll_interval
        self._watchers = Slots("watcher", limits)
        self._clock = clock

    @property
    def watchers(self) -> int:
        return self._watchers.in_use

    async def watch(
        self,
        caller: str,
        *,
        folder_id: str,
        alias: str,
        after: int | None,
        peer: str,
        still_allowed: Callable[[], Awaitable[None]],
    ) -> AsyncGenerator[FeedItem, None]:
        """Feed items for ``caller``: a heartbeat first (the position the stream starts from:
        ``after``, or the newest position when None), then each visible event past it, in
        order. Only ``folder_id``'s events when given (the caller needs a role in it), only
        the moves of ``alias`` when given. ``still_allowed`` raises once the caller's token no
        longer stands; it is asked before every poll."""
        if folder_id:
            validation.resource_id("folder_id", folder_id)
        if alias:
            validation.alias_name("alias", alias)
        if after is not None and after < 0:
            raise InvalidArgument("after_event_id", "after_event_id must not be negative")
        with self._watchers.taken(caller, peer):
            position = await self._store.read(lambda tx: self._start(tx, caller, folder_id, after))
            yield FeedItem(position, None)
            quiet_since = self._clock()
            while True:
                await still_allowed()
                head, through, events = await self._store.read(
                    functools.partial(
                        self._next, caller=caller, folder_id=folder_id, position=position
                    )
                )
                for event in events:
                    position = event.feed_position
                    if _wanted(event, alias):
                        yield FeedItem(position, event)
                        quiet_since = self._clock()
                if len(events) < BATCH:
                    position = through
                if self._clock() - quiet_since >= HEARTBEAT_SECONDS:
                    yield FeedItem(position, None)
                    quiet_since = self._clock()
                if position >= head:
                    await self._signal.wait(self._poll_interval)

    @staticmethod
    def _start(tx: Transaction, caller: str, folder_id: str, after: int | None) -> int:
        if folder_id:
            require_folder(tx, caller, folder_id, Role.VIEWER)
        head, pruned = tx.feed_head()
        if after is None:
            return head
        if after > head:
            raise InvalidArgument(
                "after_event_id", f"after_event_id {after} is past the newest event ({head})"
            )
        if after < pruned:
            raise OutOfRange(
                f"events after {after} are no longer kept (the server keeps them for its "
                "audit retention period); watch again without after_event_id",
                reason="EVENTS_EXPIRED",
            )
        return after

    @staticmethod
    def _next(
        tx: Transaction, caller: str, folder_id: str, position: int
    ) -> tuple[int, int, list[AuditEventRecord]]:
        """The newest position, the end of the next scan window past ``position``, and the
        visible events in that window (at most ``BATCH``), read in one snapshot."""
        head, _ = tx.feed_head()
        through = min(head, position + SCAN_WINDOW)
        if through <= position:
            return head, position, []
        return head, through, tx.feed_events(caller, position, through, folder_id or None, BATCH)


def _wanted(event: AuditEventRecord, alias: str) -> bool:
    if not alias:
        return True
    return event.feed_kind in (FeedKind.ALIAS_SET, FeedKind.ALIAS_DELETED) and (
        event.details.get("alias") == alias
    )
