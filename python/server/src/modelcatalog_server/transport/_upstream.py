"""Every grpclib, h2, hyperframe and betterproto internal the transport uses, in one place.

The server hardens grpclib's HTTP/2 handling by subclassing a few of its classes and reading a
few of its attributes. None of them is public API, so the versions are pinned in the server's
``pyproject.toml`` and ``tests/test_transport_upstream.py`` fails when any of them changes
shape. Re-check each note below before raising a pin.

The server's connection is built on the tuned HTTP/2 classes it shares with the SDK (large
frames, bounded windows, cheap DATA repr: ``modelcatalog.wire``), whose ``_http2`` module names
the internals they rely on; the SDK's ``tests/test_transport.py`` checks those.
"""

from __future__ import annotations

from typing import Any

import betterproto
import grpclib.server
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
from h2.exceptions import FrameTooLargeError, ProtocolError
from h2.frame_buffer import FrameBuffer
from h2.stream import StreamClosedBy
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from modelcatalog.wire import (
    CheaplyShownDataFrame,
    TunedConnection,
    TunedFrameBuffer,
    TunedProtocol,
)

#: The versions these internals were checked against.
PINNED = {
    "grpclib": "0.4.9",
    "h2": "4.4.1",
    "hyperframe": "6.1.0",
    "betterproto": "2.0.0b7",
}

__all__ = [
    "PINNED",
    "_STATUS_DETAILS_KEY",
    "CheaplyShownDataFrame",
    "Configuration",
    "ConnectionInputs",
    "ContinuationFrame",
    "DataFrame",
    "Deadline",
    "ErrorCodes",
    "EventsProcessor",
    "ExtensionFrame",
    "Frame",
    "FrameBuffer",
    "FrameTooLargeError",
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
    "TunedConnection",
    "TunedFrameBuffer",
    "TunedProtocol",
    "WindowUpdateFrame",
    "_DispatchServerEvents",
    "_decode_headers",
    "betterproto_metadata",
    "call_bytes",
    "decode_metadata",
    "encode_bin_value",
    "encode_grpc_message",
    "next_frame_header",
    "stream_bytes_received",
]


def next_frame_header(buffer: FrameBuffer) -> bytes:
    """The 9-byte header of the next frame ``buffer`` will parse, or fewer bytes if it has not
    arrived yet: h2 keeps received bytes in ``FrameBuffer._data``, frames consumed from its
    front."""
    return bytes(buffer._data[:9])


def stream_bytes_received(stream: TransportStream) -> int:
    """DATA bytes that arrived on ``stream``, read by the handler or not (grpclib's counter)."""
    return stream.data_received


def call_bytes(stream: grpclib.server.Stream[Any, Any]) -> tuple[int, int]:
    """DATA bytes a call has received and sent so far: grpclib counts them on the call's
    transport stream (``data_received``, ``data_sent``)."""
    transport: TransportStream = stream._stream
    return transport.data_received, transport.data_sent


def betterproto_metadata(
    message_class: type[betterproto.Message],
) -> betterproto.ProtoClassMetadata:
    """betterproto's metadata of ``message_class``: read by the request codec.

    Relied on (test_codec.py checks this shape): ``Message._betterproto``, a
    ``ProtoClassMetadata`` with ``meta_by_field_name`` (name to ``FieldMetadata``: ``number``,
    ``proto_type``), ``default_gen`` (``list`` for a repeated field, which is how betterproto's
    own decoder tells repeated from singular) and ``cls_by_field`` (the class of a message
    field's value, or the entry class betterproto generates for a map field).
    """
    return message_class._betterproto  # type: ignore[arg-type]  # its classproperty is mistyped
