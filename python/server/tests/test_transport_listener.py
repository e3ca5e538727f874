"""The listener: a connection budget, bounded TLS handshakes, and no log storm when refusing."""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from server_testing import poll_until

from modelcatalog_server.tls import ensure_self_signed
from modelcatalog_server.transport import RateLimit, server_tls_context
from modelcatalog_server.transport._listener import Listener, connection_budget, open_listener

GENEROUS = RateLimit(burst=1000, per_second=1000.0)


class Recorder(asyncio.Protocol):
    """Counts connections that reached the protocol, and releases their budget on close."""

    def __init__(self, opened: list[Recorder], release: Callable[[bool], None]) -> None:
        self._opened = opened
        self._release = release

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._opened.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release(False)  # these connections never make a call


def started(
    opened: list[Recorder],
    *,
    tls: ssl.SSLContext | None,
    max_connections: int,
    max_connections_per_peer: int,
    handshake_timeout: float,
    connection_rate: RateLimit,
) -> tuple[Listener, socket.socket]:
    """A listener on a free loopback port, accepting into ``Recorder``s, and its socket."""
    sock = open_listener("127.0.0.1", 0)
    listener = Listener(
        sock,
        lambda release: Recorder(opened, release),
        tls=tls,
        max_connections=max_connections,
        max_connections_per_peer=max_connections_per_peer,
        handshake_timeout=handshake_timeout,
        connection_rate=connection_rate,
    )
    listener.start()
    return listener, sock


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection within a few seconds."""
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except (TimeoutError, ConnectionResetError):
        return False


async def test_connections_above_the_budget_are_closed_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the budget used, new connections are closed; one log line, no traceback."""
    opened: list[Recorder] = []
    listener, sock = started(
        opened,
        tls=None,
        max_connections=2,
        max_connections_per_peer=100,
        handshake_timeout=5,
        connection_rate=GENEROUS,
    )
    port = sock.getsockname()[1]
    kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    refused = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
    for reader, _ in refused:
        assert await closed_by_server(reader)
    assert len(opened) == 2
    assert listener.connections == 2
    refusals = [r for r in caplog.records if "above the limit" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].exc_info is None
    kept[0][1].close()
    await kept[0][1].wait_closed()
    assert await poll_until(lambda: listener.connections == 1)
    for _, writer in [*kept[1:], *refused]:
        writer.close()
    listener.close()


async def test_a_tls_handshake_that_never_starts_is_cut_off(tmp_path: Path) -> None:
    """A client that connects and never says hello loses its connection after the timeout."""
    files = ensure_self_signed(tmp_path)
    context = server_tls_context(files.cert, files.key)
    opened: list[Recorder] = []
    listener, sock = started(
        opened,
        tls=context,
        max_connections=10,
        max_connections_per_peer=100,
        handshake_timeout=0.5,
        connection_rate=GENEROUS,
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
    assert await closed_by_server(reader)
    assert await poll_until(lambda: listener.connections == 0)
    assert not opened
    writer.close()
    listener.close()


def negotiated_cipher(server: ssl.SSLContext, client: ssl.SSLContext) -> str:
    """The cipher suite a handshake between the two contexts settles on, in memory."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    client_side = client.wrap_bio(to_client, to_server, server_hostname="localhost")
    for _ in range(10):
        done = 0
        for side in (client_side, server_side):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        if done == 2:
            cipher = server_side.cipher()
            assert cipher is not None
            return cipher[0]
    raise AssertionError("the handshake did not finish")


@pytest.mark.parametrize(
    "offered",
    [
        ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"],
        ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        ["ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    ],
)
def test_the_client_picks_among_the_aead_suites(tmp_path: Path, offered: list[str]) -> None:
    """A client without AES hardware gets ChaCha20, one with it the AES-GCM it asks for first
    (AES-128 costs less CPU per byte on both ends than the AES-256 OpenSSL would rank first)."""
    files = ensure_self_signed(tmp_path)
    client = ssl.create_default_context(cafile=files.cert)
    client.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 suites cannot be ordered here
    client.set_ciphers(":".join(offered))
    assert negotiated_cipher(server_tls_context(files.cert, files.key), client) == offered[0]


def test_a_client_offering_no_aead_suite_is_refused(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path)
    client = ssl.create_default_context(cafile=files.cert)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES128-SHA256")
    with pytest.raises(ssl.SSLError):
        negotiated_cipher(server_tls_context(files.cert, files.key), client)


def test_the_budget_fits_the_descriptor_limit() -> None:
    """The soft descriptor limit is raised, and the budget never exceeds what it allows."""
    budget = connection_budget(10**7)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert budget <= soft - 64
    assert connection_budget(10) == 10


async def test_an_address_wasting_connections_is_refused_before_tls() -> None:
    """After its burst of connections that made no call, an address is refused at once;
    other addresses still connect."""
    opened: list[Recorder] = []
    listener, sock = started(
        opened,
        tls=None,
        max_connections=100,
        max_connections_per_peer=100,
        handshake_timeout=5,
        connection_rate=RateLimit(burst=3, per_second=0.001),
    )
    port = sock.getsockname()[1]
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
    assert await poll_until(lambda: len(opened) == 3 and listener.connections == 0)
    refused = await asyncio.open_connection("127.0.0.1", port)
    assert await closed_by_server(refused[0])
    other = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
    assert await poll_until(lambda: len(opened) == 4)
    for _, writer in (refused, other):
        writer.close()
    listener.close()


async def test_one_address_cannot_hold_every_connection(caplog: pytest.LogCaptureFixture) -> None:
    """Past its own cap, an address's new connections are closed at once (one log line), while
    another address still connects; a connection it closes makes room for one more."""
    opened: list[Recorder] = []
    listener, sock = started(
        opened,
        tls=None,
        max_connections=100,
        max_connections_per_peer=3,
        handshake_timeout=5,
        connection_rate=GENEROUS,
    )
    port = sock.getsockname()[1]
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    assert await poll_until(lambda: len(opened) == 3)
    refused = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
    for reader, _ in refused:
        assert await closed_by_server(reader)
    other = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
    assert await poll_until(lambda: len(opened) == 4)
    held[0][1].close()
    await held[0][1].wait_closed()
    assert await poll_until(lambda: listener.connections == 3)
    again = await asyncio.open_connection("127.0.0.1", port)
    assert await poll_until(lambda: len(opened) == 5)
    lines = [r for r in caplog.records if "which holds 3 already" in r.getMessage()]
    assert len(lines) == 1
    for _, writer in [*held[1:], *refused, other, again]:
        writer.close()
    listener.close()
