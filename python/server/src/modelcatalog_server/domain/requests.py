"""Retry-safe mutations: a client-chosen ``request_id`` makes a retried create count once.

A mutation that carries a request id records, in the transaction that makes its change, what
it made (``request_results``, keyed by user and id, with a digest of the method and its
arguments). The same request again within the retention period makes nothing and answers
with what the first one made, as it is now; the same id with other arguments is refused
(REQUEST_ID_REUSED). Rows live in the database, so a retry that reaches another server process,
or this one after a restart, is recognised too. Two copies of one request racing each other
both try to record the id: the second to commit collides with the first (``UniqueViolation``),
its transaction is rolled back, and it runs once more, now answered by the first's record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..storage.metadata import MetadataStore, Transaction, UniqueViolation, now_us
from . import validation
from .errors import InvalidArgument

T = TypeVar("T")

#: How long a request id is remembered by default: the issue's "at least 24 h".
DEFAULT_RETENTION_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class Request:
    """One mutation's request id, the field it came in, and a digest of what it asks for."""

    id: str
    field: str
    fingerprint: str


class RequestResults:
    """Recognises repeated requests by their id, for every process sharing the database."""

    def __init__(
        self,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._retention_us = int(retention_seconds * 1_000_000)
        self._clock = clock

    def request(
        self, field: str, request_id: str, method: str, *arguments: object
    ) -> Request | None:
        """The checked request for ``request_id`` (None when the client gave none); the
        arguments are what makes two requests the same one (JSON-serialisable values)."""
        checked = validation.request_id(field, request_id)
        if not checked:
            return None
        what = json.dumps([method, *arguments], sort_keys=True, ensure_ascii=False)
        return Request(checked, field, hashlib.sha256(what.encode()).hexdigest())

    def earlier(self, tx: Transaction, caller: str, request: Request | None) -> str | None:
        """What an earlier call of this very request made (its ``resource``), or None when
        there was none (or no request id); INVALID_ARGUMENT (REQUEST_ID_REUSED) when the id
        was used for another request."""
        if request is None:
            return None
        found = tx.request_result(caller, request.id, self._clock() - self._retention_us)
        if found is None:
            return None
        fingerprint, resource = found
        if fingerprint != request.fingerprint:
            raise reused(request)
        return resource

    def remember(
        self, tx: Transaction, caller: str, request: Request | None, resource: str
    ) -> None:
        """Records that this request made ``resource``, in the transaction that made it."""
        if request is None:
            return
        tx.prune_request_results(self._clock() - self._retention_us)
        tx.insert_request_result(caller, request.id, request.fingerprint, resource)

    async def write(
        self, store: MetadataStore, request: Request | None, work: Callable[[Transaction], T]
    ) -> T:
        """``store.write(work)``; when a copy of the request committed first (the insert of
        the request id, or of what the request makes, collides), once more, so that ``work``
        finds the copy's record with ``earlier`` and answers with it."""
        try:
            return await store.write(work)
        except UniqueViolation:
            if request is None:
                raise
        return await store.write(work)


def reused(request: Request) -> InvalidArgument:
    """The error for a request id that was used for another request."""
    return InvalidArgument(
        request.field,
        f"{request.field} {request.id} was used for a different request; nothing was "
        "changed: use a new request id for every new request",
        reason="REQUEST_ID_REUSED",
    )
