"""Every grpclib, h2 and hyperframe internal the transport relies on, named in one place.

The server hardens grpclib's HTTP/2 handling by subclassing a few of its classes and reading a
few of its attributes. None of them is public API, so the versions are pinned in the server's
``pyproject.toml`` and ``tests/test_transport_upstream.py`` fails when any of them changes
shape. Re-check each note below before raising a pin.
"""

from __future__ import annotations

from grpclib.config import Configuration
from grpclib.events import _DispatchServerEvents
from grpclib.metadata import (
    _STATUS_DETAILS_KEY,
    Deadline,
    decode_metadata,
    encode_bin_value,
    encode_grpc_message,
)
from grpclib.protocol import Connection as TransportConnection
from grpclib.protocol import EventsProcessor, H2Protocol
from grpclib.protocol import Stream as TransportStream
from grpclib.server import Handler as GrpclibHandler
from h2.connection import ConnectionInputs, H2Connection, _decode_headers
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError
from h2.stream import StreamClosedBy
from hyperframe.frame import (
    DataFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

#: The versions these internals were checked against.
PINNED = {"grpclib": "0.4.9", "h2": "4.4.1", "hyperframe": "6.1.0"}

__all__ = [
    "PINNED",
    "_STATUS_DETAILS_KEY",
    "Configuration",
    "ConnectionInputs",
    "DataFrame",
    "Deadline",
    "ErrorCodes",
    "EventsProcessor",
    "Frame",
    "GrpclibHandler",
    "H2Connection",
    "H2Protocol",
    "HeadersFrame",
    "PingFrame",
    "PriorityFrame",
    "ProtocolError",
    "RstStreamFrame",
    "SettingsFrame",
    "StreamClosedBy",
    "TransportConnection",
    "TransportStream",
    "WindowUpdateFrame",
    "_DispatchServerEvents",
    "_decode_headers",
    "decode_metadata",
    "encode_bin_value",
    "encode_grpc_message",
    "stream_bytes_received",
]


def stream_bytes_received(stream: TransportStream) -> int:
    """DATA bytes that arrived on ``stream``, read by the handler or not (grpclib's counter)."""
    return stream.data_received
