"""The listening socket, its accept loop and the connection budget.

The server accepts connections itself instead of through ``loop.create_server``, so that it can
count every connection from the moment it is accepted (a TLS handshake in progress holds a
file descriptor too), refuse those above the budget at once, bound the handshake, and treat
running out of file descriptors as load to shed, not as a traceback to log a hundred times a
second.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable

from ..peers import peer_key
from ._limits import RateLimit

log = logging.getLogger("modelcatalog_server.transport")

#: File descriptors kept free of connections: the database, blob files, logs, the listener.
RESERVED_DESCRIPTORS = 64
#: At most one log line per this many seconds for each kind of refused connection.
REFUSAL_LOG_INTERVAL_SECONDS = 10.0
#: Pause of the accept loop after the system refused to accept (out of descriptors or memory).
ACCEPT_BACKOFF_SECONDS = 0.05
#: Addresses whose connection rate is remembered at once; idle ones are forgotten first.
MAX_TRACKED_ADDRESSES = 10_000

_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def open_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket, opened here so that the port the system picks for 0 is known.

    It is created with protocol IPPROTO_TCP explicitly: asyncio and grpclib turn Nagle's
    algorithm off (TCP_NODELAY) only on sockets that say so, and without it every small
    response waits for the peer's delayed ACK (about 40 ms per unary RPC on Linux).

    With ``reuse_port`` (SO_REUSEPORT) several processes listen on the same port, each with its
    own queue of new connections, among which the kernel spreads them; the port must be held
    by a ``reserve_port`` socket of the same user.
    """
    listener = _bound_socket(host, port, reuse_port=reuse_port)
    try:
        listener.listen(socket.SOMAXCONN)
    except OSError:
        listener.close()
        raise
    return listener


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound socket that holds ``host:port`` (a free port for 0) for ``open_listener(...,
    reuse_port=True)`` sockets, without listening itself: it gets no connections.

    It is bound before SO_REUSEPORT is set, so that a port another program (or another
    modelcatalog server) already uses is refused here, instead of being shared with it.
    """
    reserved = _bound_socket(host, port, reuse_port=False)
    try:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        reserved.close()
        raise
    return reserved


def _bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            bound.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        bound.bind((host, port))
    except OSError:
        bound.close()
        raise
    return bound


def connection_budget(wanted: int) -> int:
    """How many connections fit: ``wanted``, lowered to fit the file-descriptor limit.

    The soft RLIMIT_NOFILE is raised to the hard limit first, as servers do: the default soft
    limit of 1024 would otherwise cap the server far below what the system allows.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    fitting = max(1, soft - RESERVED_DESCRIPTORS)
    if wanted > fitting:
        log.warning(
            "serving at most %d connections, not %d: the file-descriptor limit is %d",
            fitting,
            wanted,
            soft,
        )
    return min(wanted, fitting)


class _Throttled:
    """Logs a kind of event at most once per interval, with how often it happened."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._last = -REFUSAL_LOG_INTERVAL_SECONDS
        self._count = 0

    def note(self, *args: object) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= REFUSAL_LOG_INTERVAL_SECONDS:
            log.warning(self._message + " (%d times since the last such line)", *args, self._count)
            self._last, self._count = now, 0


class _PeerRates:
    """A token bucket per client address, spent by connections that made no call.

    The frame-rate limits are per connection; a client that reconnects after each burst would
    start every connection with full buckets and pay only a TLS handshake, which costs the
    server more than the client. A connection that ends without one complete request (a
    failed handshake, a burst then a reset) spends a token; an address without tokens is
    refused before the handshake. Clients that connect, call and leave spend nothing.
    """

    def __init__(self, limit: RateLimit) -> None:
        self._limit = limit
        self._tokens: dict[str, tuple[float, float]] = {}

    def admit(self, address: str) -> bool:
        """Whether the address has a token left (none is spent here)."""
        return self._refilled(address, time.monotonic()) >= 1

    def charge(self, address: str) -> None:
        """Spends a token of the address: one of its connections was wasted."""
        now = time.monotonic()
        tokens = self._refilled(address, now)
        if len(self._tokens) >= MAX_TRACKED_ADDRESSES and address not in self._tokens:
            self._forget_full_buckets(now)
        self._tokens[address] = (max(0.0, tokens - 1), now)  # recovers within 1/rate s

    def _refilled(self, address: str, now: float) -> float:
        tokens, updated = self._tokens.get(address, (float(self._limit.burst), now))
        return min(self._limit.burst, tokens + (now - updated) * self._limit.per_second)

    def _forget_full_buckets(self, now: float) -> None:
        refill = self._limit.burst / self._limit.per_second
        self._tokens = {
            address: (tokens, updated)
            for address, (tokens, updated) in self._tokens.items()
            if now - updated < refill
        }
        if len(self._tokens) >= MAX_TRACKED_ADDRESSES:
            self._tokens.clear()


class Listener:
    """Accepts connections on ``sock`` and hands them to protocols, within the budget."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[Callable[[bool], None]], asyncio.Protocol],
        *,
        tls: ssl.SSLContext | None,
        max_connections: int,
        max_connections_per_peer: int,
        handshake_timeout: float,
        connection_rate: RateLimit,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._tls = tls
        self._max_connections = max_connections
        self._max_per_peer = max_connections_per_peer
        self._by_peer: Counter[str] = Counter()
        self._handshake_timeout = handshake_timeout
        self.connections = 0
        self._task: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._rates = _PeerRates(connection_rate)
        self._over_budget = _Throttled("refused connections above the limit of %d")
        self._too_fast = _Throttled("refused connections from %s, which opens them too fast")
        self._too_many = _Throttled("refused connections from %s, which holds %d already")
        self._no_resources = _Throttled("cannot accept connections: %s")

    def start(self) -> None:
        self._sock.setblocking(False)
        self._task = asyncio.get_running_loop().create_task(self._accept_forever())

    def close(self) -> None:
        """Stops accepting and closes the listening socket; open connections stay."""
        if self._task is not None:
            self._task.cancel()
        for handshake in self._handshakes:
            handshake.cancel()
        self._sock.close()

    async def _accept_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, address = await loop.sock_accept(self._sock)
            except OSError as error:
                if error.errno not in _OUT_OF_RESOURCES:
                    raise
                self._no_resources.note(error.strerror)
                await asyncio.sleep(ACCEPT_BACKOFF_SECONDS)
                continue
            if self.connections >= self._max_connections:
                self._over_budget.note(self._max_connections)
                connection.close()
                continue
            peer = peer_key(address[0])
            if self._by_peer[peer] >= self._max_per_peer:
                self._too_many.note(peer, self._max_per_peer)
                connection.close()
                continue
            if not self._rates.admit(address[0]):
                self._too_fast.note(address[0])
                connection.close()
                continue
            self.connections += 1
            self._by_peer[peer] += 1
            handshake = loop.create_task(self._start_connection(connection, address[0], peer))
            self._handshakes.add(handshake)
            handshake.add_done_callback(self._handshakes.discard)

    async def _start_connection(self, connection: socket.socket, address: str, peer: str) -> None:
        released = False

        def release(made_a_call: bool) -> None:
            nonlocal released
            if not released:
                released = True
                self.connections -= 1
                self._by_peer[peer] -= 1
                if not self._by_peer[peer]:
                    del self._by_peer[peer]
                if not made_a_call:
                    self._rates.charge(address)

        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: self._factory(release),
                connection,
                ssl=self._tls,
                ssl_handshake_timeout=self._handshake_timeout if self._tls else None,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as error:
            log.debug("connection closed before it was set up: %s", error)
            connection.close()
            release(False)
        except asyncio.CancelledError:
            connection.close()
            release(False)
            raise
