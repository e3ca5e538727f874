"""The request codec: protobuf bytes in, messages out, bad bytes the client's fault."""

from __future__ import annotations

from typing import Any

from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec

from ..errors import refusal


class RequestCodec(ProtoCodec):
    """Protobuf, reporting bytes that do not decode as the request's fault, not the server's."""

    def decode(self, data: bytes, message_type: Any) -> Any:
        try:
            return super().decode(data, message_type)
        except Exception:
            raise refusal(
                Status.INVALID_ARGUMENT,
                "MALFORMED_REQUEST",
                f"the request is not a valid {message_type.__name__} message",
            ) from None
