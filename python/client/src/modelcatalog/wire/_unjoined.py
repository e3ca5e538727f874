"""A large message's bytes kept as the parts they were made of, so that nothing copies them
on the way to the socket."""

from __future__ import annotations

from collections.abc import Sequence

#: A message with a part at least this large is sent unjoined; smaller parts would be joined
#: by the transport's write coalescing anyway (``_http2.COALESCE_BELOW_BYTES``).
UNJOINED_PART_BYTES = 64 * 1024


class Unjoined:
    """A message's bytes as parts, in order: what the tuned HTTP/2 streams (``PacedStream``)
    write to the transport as they are.

    Joining a 1 MiB upload or download chunk into its message, then prepending grpclib's
    5-byte message prefix, copied the payload twice before HTTP/2 framing copied it three
    more times. ``Codec(send_unjoined=True)`` returns a large message as an ``Unjoined``
    instead. grpclib makes a message's prefix with ``prefix + codec.encode(...)``: bytes do
    not add an ``Unjoined``, so Python asks ``__radd__``, which takes the prefix as one more
    part.

    A DATA frame's body is one too: the parts of the message it spans, some of them views
    of a part cut at a frame's end.

    Parts are ``bytes`` or views of them (immutable): the transport may still hold them after
    the write.
    """

    __slots__ = ("parts", "size")

    def __init__(self, parts: Sequence[bytes | memoryview]) -> None:
        self.parts = parts
        self.size = sum(map(len, parts))

    def __len__(self) -> int:
        return self.size

    def __radd__(self, prefix: bytes) -> Unjoined:
        return Unjoined([prefix, *self.parts])

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    def __repr__(self) -> str:
        return f"Unjoined({len(self.parts)} parts, {self.size} bytes)"
