"""The listening socket: free ports, clear failures, and no Nagle delay on connections."""

from __future__ import annotations

import asyncio
import socket

import pytest

from modelcatalog_server.transport import open_listener


async def test_accepted_connections_have_nagle_off() -> None:
    """Server-side connections get TCP_NODELAY, so small responses are not held ~40 ms."""
    accepted: asyncio.Queue[socket.socket] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(writer.get_extra_info("socket"))
        writer.close()

    listener = open_listener("127.0.0.1", 0)
    server = await asyncio.start_server(on_connect, sock=listener)
    async with server:
        _, writer = await asyncio.open_connection(*listener.getsockname())
        connection = await accepted.get()
        assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        writer.close()
        await writer.wait_closed()


def test_port_zero_picks_a_free_port() -> None:
    """Port 0 binds an ephemeral port the caller can read back."""
    with open_listener("127.0.0.1", 0) as listener:
        assert listener.getsockname()[1] > 0


def test_busy_port_raises_os_error() -> None:
    """A port already taken fails with OSError (the server turns it into a clear message)."""
    with open_listener("127.0.0.1", 0) as first, pytest.raises(OSError, match="in use"):
        open_listener("127.0.0.1", first.getsockname()[1])


def test_ipv6_loopback() -> None:
    """An IPv6 host binds an IPv6-only socket."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    with open_listener("::1", 0) as listener:
        assert listener.family == socket.AF_INET6
