"""Request streams of uploads that tests hold open, shared by the server's unit tests and the
end-to-end tests (``python/testing`` is on pytest's path)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from modelcatalog import v1


async def stalled_upload(
    model_id: str, sent: asyncio.Event
) -> AsyncIterator[v1.UploadModelVersionRequest]:
    """An upload's messages: a header and 1 MiB; then ``sent`` is set and nothing more comes."""
    yield v1.UploadModelVersionRequest(header=v1.UploadModelVersionHeader(model_id, "f.bin"))
    yield v1.UploadModelVersionRequest(chunk=os.urandom(1 << 20))
    sent.set()
    await asyncio.Event().wait()
