"""Transport: the event loop, the listening socket (free ports, no Nagle delay) and the request
codec."""

from __future__ import annotations

import asyncio
import socket

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from modelcatalog import v1
from modelcatalog_server import app
from modelcatalog_server.config import Settings
from modelcatalog_server.transport import RequestCodec, open_listener


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


@pytest.mark.parametrize("data", [b"\x0a\x02\xff\xfe", b"\x08"])
def test_undecodable_request_is_invalid_argument(data: bytes) -> None:
    """Bytes that are not a valid request message are the caller's fault, not INTERNAL."""
    with pytest.raises(GRPCError) as caught:
        RequestCodec().decode(data, v1.SignUpRequest)
    assert caught.value.status == Status.INVALID_ARGUMENT
    assert "SignUpRequest" in (caught.value.message or "")


def test_valid_request_decodes() -> None:
    """The codec still decodes well-formed messages."""
    message = v1.SignUpRequest("alice", "password1")
    assert RequestCodec().decode(bytes(message), v1.SignUpRequest) == message


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_server_runs_on_the_event_loop_the_settings_name(
    monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    """--event-loop uvloop serves on uvloop's loop, asyncio on the standard library's."""
    running_on: list[str] = []

    async def serve(settings: Settings) -> None:
        running_on.append(type(asyncio.get_running_loop()).__module__.partition(".")[0])

    monkeypatch.setattr(app, "serve", serve)
    app.run(Settings(event_loop=loop))
    assert running_on == [loop]
