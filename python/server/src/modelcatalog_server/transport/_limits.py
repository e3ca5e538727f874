"""The budgets the transport enforces, in one object with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass

#: The largest request message accepted: an upload chunk of at most 4 MiB plus its framing.
MAX_REQUEST_MESSAGE_BYTES = (4 << 20) + (64 << 10)


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``burst`` events at once, refilled at ``per_second``."""

    burst: int
    per_second: float


@dataclass(frozen=True)
class TransportLimits:
    """What one client may hold or send before the transport refuses it.

    Each limit bounds a resource an unauthenticated client could otherwise take: file
    descriptors, memory for half-sent messages, streams, handler time, or CPU for control
    frames. SECURITY.md lists them with their defaults.
    """

    max_connections: int = 1000
    #: Connections one client address may hold at once: one address alone can then not take
    #: every connection (each kept busy with a long-lived call, such as a health watch).
    max_connections_per_peer: int = 100
    tls_handshake_timeout: float = 10.0
    connection_idle_timeout: float = 120.0
    max_concurrent_streams: int = 100
    #: The largest HTTP/2 DATA frame a client may send (SETTINGS_MAX_FRAME_SIZE; other frames
    #: stay within 16 KiB). Per-frame work dominates bulk transfers with HTTP/2's default of
    #: 16 KiB; 2 MiB carries a 1 MiB chunk message in one frame.
    max_frame_size: int = 2 << 20
    #: HTTP/2 flow-control windows: what a client may send on one stream, and on one
    #: connection, before the server has read it. They bound the unread bytes a connection
    #: holds, however slowly a handler reads.
    stream_window_bytes: int = 4 << 20
    connection_window_bytes: int = 4 << 20
    connection_buffer_bytes: int = 16 << 20
    server_buffer_bytes: int = 256 << 20
    max_request_message_bytes: int = MAX_REQUEST_MESSAGE_BYTES
    request_timeout: float = 10.0
    upload_min_bytes: int = 1 << 20
    upload_progress_window: float = 30.0
    #: Connections per client address that end without a complete request (a reconnect storm
    #: must not renew the frame budgets); connections that make calls are not counted.
    connections_per_peer: RateLimit = RateLimit(burst=50, per_second=10.0)
    #: Client RST_STREAM frames: the rapid-reset attack (CVE-2023-44487).
    resets: RateLimit = RateLimit(burst=200, per_second=100.0)
    #: PING and SETTINGS frames (without ACK): each costs an answer.
    pings: RateLimit = RateLimit(burst=50, per_second=10.0)
    settings: RateLimit = RateLimit(burst=50, per_second=10.0)
    #: CONTINUATION frames: legitimate header blocks fit in one HEADERS frame or a few more.
    continuations: RateLimit = RateLimit(burst=32, per_second=16.0)
    #: DATA frames that carry nothing and do not end their stream.
    empty_data: RateLimit = RateLimit(burst=100, per_second=50.0)
    #: PRIORITY and WINDOW_UPDATE frames; clients send WINDOW_UPDATEs while they download.
    window_and_priority: RateLimit = RateLimit(burst=2000, per_second=1000.0)
