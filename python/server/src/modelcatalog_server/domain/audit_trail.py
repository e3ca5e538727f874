"""Reading the audit trail (``ListAuditEvents``), recording refusals, and pruning.

Folder owners list the events of their folders; every user lists their own (made by them, or
naming their account: a failed sign-in to it, say). Events are kept for the retention period
and pruned in small batches by ``AuditTrail.running``, so no prune holds the database long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from ..storage.faults import StorageFault
from ..storage.metadata import MetadataStore, Transaction, now_us
from ..storage.records import AuditEventRecord, AuditQuery, Role
from . import validation
from .audit import AUDITED_ACTIONS, Call, current_call, record
from .catalog import Page, require_folder
from .errors import CatalogError, InvalidArgument, Unauthenticated
from .events import FeedSignal
from .paging import PageTokens, page_size

log = logging.getLogger("modelcatalog_server")

#: Default retention of recorded events.
RETENTION_SECONDS = 90 * 86_400
#: How often one process prunes, and how many events one prune transaction deletes at most.
PRUNE_INTERVAL_SECONDS = 60.0
PRUNE_BATCH = 1000
#: Longest action and resource filter accepted (the columns' sizes).
_ACTION_MAX = 64
_RESOURCE_MAX = 255


class AuditTrail:
    """Lists recorded events to those who may see them, records refusals, prunes old events."""

    def __init__(
        self,
        store: MetadataStore,
        page_tokens: PageTokens,
        *,
        retention_seconds: int = RETENTION_SECONDS,
        signal: FeedSignal | None = None,
    ) -> None:
        self._store = store
        self._tokens = page_tokens
        self._retention_us = retention_seconds * 1_000_000
        self.signal = signal if signal is not None else FeedSignal()

    def ended(self, call: Call) -> None:
        """Wakes this process's watchers if ``call`` recorded a feed event."""
        if call.fed:
            self.signal.notify()

    async def refused(self, error: CatalogError) -> None:
        """Records the refusal of the current call, if it is an audited one by a signed-in
        caller; a failure to record is logged, never raised over the refusal itself."""
        call = current_call()
        if call is None or call.user_id is None or call.action not in AUDITED_ACTIONS:
            return
        if isinstance(error, Unauthenticated):
            return

        def write(tx: Transaction) -> None:
            record(
                tx,
                call.action,
                call.user_id,
                folder_id=call.folder_id,
                resource=call.resource,
                details=call.details,
                outcome=error.reason,
            )

        try:
            await self._store.write(write)
        except StorageFault as fault:
            log.warning("could not record the refusal of %s: %s", call.action, fault)

    async def list(
        self,
        caller: str,
        folder_id: str,
        *,
        actor: str = "",
        action: str = "",
        resource: str = "",
        since_us: int = 0,
        until_us: int = 0,
        size: int = 0,
        token: str = "",
    ) -> Page[AuditEventRecord]:
        """Recorded events, newest first: of the folder (its owners only) when ``folder_id``
        is given, else the caller's own (made by them, or naming their account)."""
        if folder_id:
            validation.resource_id("folder_id", folder_id)
        if actor:
            validation.username("actor", actor)
        _bounded("action", action, _ACTION_MAX)
        _bounded("resource", resource, _RESOURCE_MAX)
        if since_us and until_us and until_us <= since_us:
            raise InvalidArgument("end_time", "end_time must be after start_time")
        limit = page_size(size)
        scope = json.dumps(["audit", folder_id, actor, action, resource, since_us, until_us])
        before = self._tokens.decode(token, caller=caller, scope=scope)

        def events(tx: Transaction) -> list[AuditEventRecord]:
            if folder_id:
                require_folder(tx, caller, folder_id, Role.OWNER)
            actor_id = None
            if actor:
                credentials = tx.credentials(actor)
                if credentials is None:
                    return []
                actor_id = credentials.user.id
            query = AuditQuery(
                folder_id=folder_id or None,
                own_user=None if folder_id else caller,
                actor_id=actor_id,
                action=action or None,
                resource=resource or None,
                since_us=since_us or None,
                until_us=until_us or None,
            )
            return tx.audit_events(query, before, limit + 1)

        rows = await self._store.read(events)
        if len(rows) <= limit:
            return Page(rows, "")
        items = rows[:limit]
        return Page(items, self._tokens.encode(items[-1].id, caller=caller, scope=scope))

    async def prune(self) -> int:
        """Deletes events older than the retention period, a batch per transaction; returns
        how many (bounded: at most a few batches per call, the next call goes on)."""
        before = now_us() - self._retention_us
        pruned = 0
        for _ in range(10):
            deleted = await self._store.write(lambda tx: tx.prune_audit_events(before, PRUNE_BATCH))
            pruned += deleted
            if deleted < PRUNE_BATCH:
                break
        return pruned

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Prunes old events in the background while the block runs."""
        task = asyncio.create_task(self._prune_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _prune_forever(self) -> None:
        while True:
            try:
                pruned = await self.prune()
                if pruned:
                    log.info("pruned %d audit event(s) past the retention period", pruned)
            except StorageFault as fault:
                log.warning("could not prune audit events: %s", fault)
            await asyncio.sleep(PRUNE_INTERVAL_SECONDS)


def _bounded(name: str, text: str, longest: int) -> None:
    if len(text) > longest or not text.isprintable():
        raise InvalidArgument(name, f"{name} must be at most {longest} printable characters")
