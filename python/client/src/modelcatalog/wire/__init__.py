"""Protobuf encoding and decoding of the betterproto messages of ``modelcatalog.v1``, fast.

betterproto's generic ``bytes(message)`` and ``Message().parse(data)`` walk the class metadata
for every message and every field; for a page of 100 models that is tens of milliseconds, and
``parse`` copies each ``bytes`` field twice (1 MiB per upload and download chunk). This module
compiles, once per message class, an encoder and a decoder specialised to that class's fields:

- ``encode(message)`` returns exactly the bytes ``bytes(message)`` returns, field order, left
  out defaults, set-but-empty messages, oneof members and unknown fields included;
- ``decode(data, message_type)`` returns a message equal to ``message_type().parse(data)`` in
  every field, with the same unknown fields kept and the same oneof member set;
- a ``bytes`` field costs one copy of its payload each way, and none on the way out of the
  SDK and the server: ``Codec(send_unjoined=True)`` hands a large message to the tuned
  HTTP/2 streams as ``Unjoined`` parts, which they write to the transport as they are;
- ``encode_with_items(message, field, items)`` writes a list answer whose items were
  encoded before (and remembered), as an ``Encoded`` message that ``Codec`` sends as it is;
- ``new(message_type, **fields)`` makes the message ``message_type(**fields)`` makes, without
  betterproto's constructor, which costs more than encoding the message.

``Codec`` is grpclib's protobuf codec with both: the SDK's channels and the server use it. A
class the compilers cannot reproduce betterproto for exactly (a google.protobuf wrapper or
Duration field, or a class that overrides its own encoding) is served by betterproto itself;
``fallback_reason`` says which and why. Bytes that protobuf and betterproto read differently
(cut short, groups, a declared field with another wire type) are read by betterproto's
``parse`` too, so the answer is always betterproto's.

The HTTP/2 classes (``TunedConnection``, ``TunedProtocol``, ``PacedBuffer``, …) carry the
connection tuning the SDK and the server share: 2 MiB frames, bounded windows given back as a
handler reads, a cheap DATA frame ``repr``, DATA bodies written without copies.

``SyncAhead`` makes a file that a transfer writes durable in steps while it grows, and lets its
durable pages leave the page cache: the upload's blob on the server, the download's ``.part``
file in the SDK.
"""

from ._allocator import return_free_memory, tune_allocator
from ._codec import Codec, Encoded, decode, encode, encode_with_items, fallback_reason, new
from ._http2 import (
    CheaplyShownDataFrame,
    PacedBuffer,
    TunedConnection,
    TunedFrameBuffer,
    TunedProtocol,
)
from ._sync_ahead import SyncAhead
from ._unjoined import UNJOINED_PART_BYTES, Unjoined

__all__ = [
    "UNJOINED_PART_BYTES",
    "CheaplyShownDataFrame",
    "Codec",
    "Encoded",
    "PacedBuffer",
    "SyncAhead",
    "TunedConnection",
    "TunedFrameBuffer",
    "TunedProtocol",
    "Unjoined",
    "decode",
    "encode",
    "encode_with_items",
    "fallback_reason",
    "new",
    "return_free_memory",
    "tune_allocator",
]
