"""AuditService: the audit trail (ListAuditEvents) and the event stream (WatchEvents)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import datetime

from grpclib.const import Handler
from grpclib.server import Stream

from modelcatalog import v1, wire

from ..auth.hook import current_peer, current_principal
from ..auth.tokens import Principal
from ..domain.audit_trail import AuditTrail
from ..domain.events import EventFeed
from . import _convert

_WATCH = "/modelcatalog.v1.AuditService/WatchEvents"


class AuditService(v1.AuditServiceBase):
    def __init__(
        self,
        trail: AuditTrail,
        feed: EventFeed,
        still_stands: Callable[[Principal], Awaitable[None]],
    ) -> None:
        self._trail = trail
        self._feed = feed
        self._still_stands = still_stands

    async def list_audit_events(
        self, list_audit_events_request: v1.ListAuditEventsRequest
    ) -> v1.ListAuditEventsResponse:
        request = list_audit_events_request
        page = await self._trail.list(
            current_principal().user_id,
            request.folder_id,
            actor=request.actor,
            action=request.action,
            resource=request.resource,
            since_us=_microseconds(request.start_time),
            until_us=_microseconds(request.end_time),
            size=request.page_size,
            token=request.page_token,
        )
        return wire.new(
            v1.ListAuditEventsResponse,
            events=[_convert.audit_event(event) for event in page.items],
            next_page_token=page.next_page_token,
        )

    def __mapping__(self) -> dict[str, Handler]:
        mapping = super().__mapping__()
        mapping[_WATCH] = mapping[_WATCH]._replace(func=self._watch)
        return mapping

    async def _watch(self, stream: Stream[v1.WatchEventsRequest, v1.WatchEventsResponse]) -> None:
        """Sends feed items on the stream itself, one at a time: the next poll waits until the
        client has taken the last message, and the watcher ends with the call."""
        request = await stream.recv_message()
        assert request is not None  # the transport's guard answers a call without a message
        principal = current_principal()

        async def still_allowed() -> None:
            await self._still_stands(principal)

        items = self._feed.watch(
            principal.user_id,
            folder_id=request.folder_id,
            alias=request.alias,
            after=request.after_event_id,
            peer=current_peer() or "-",
            still_allowed=still_allowed,
        )
        async with aclosing(items):
            async for item in items:
                await stream.send_message(_convert.feed_item(item))


def _microseconds(moment: datetime | None) -> int:
    """A request's time bound in microseconds since the epoch; 0 when it is unset."""
    if moment is None:
        return 0
    return max(0, (moment - _convert.EPOCH) // _convert.MICROSECOND)
