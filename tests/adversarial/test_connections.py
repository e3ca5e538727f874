"""Connections that hold the server's resources without using them, or vanish mid-call.

Rows of issue 8: idle connections (TLS and plain TCP, fd exhaustion), the 101st concurrent
stream, and a client that drops its connection mid-call.
"""

from __future__ import annotations

import asyncio
import io
import os
import re

from modelcatalog import Unavailable, v1

from ..server_process import RunningServer, wait_for
from ._attack import (
    DOWNLOAD,
    HEALTH_CHECK,
    HEALTH_REQUEST,
    HEALTH_WATCH,
    UPLOAD,
    Connection,
    ConnectionClosed,
    bearer,
    closed_by_peer,
    download_request,
    grpc_frame,
    new_model,
    open_many,
    open_plain_tcp,
    sdk_client,
    signed_up,
    upload_chunk,
    upload_header,
)
from ._gauges import MIB, rss_bytes, tracebacks
from .conftest import SCALE, TIMER_SLACK_SECONDS, Launcher

IDLE_TIMEOUT_SECONDS = 2
HANDSHAKE_TIMEOUT_SECONDS = 2
#: Memory one admitted idle connection may hold: asyncio's TLS transport alone keeps a
#: 256 KiB read buffer, h2 and grpclib some more. The cap, not this, bounds the total.
IDLE_CONNECTION_RSS_BUDGET = 512 << 10
#: A descriptor limit far below what the attack opens, as a small ``ulimit -n`` would set.
OPEN_FILES_LIMIT = 256
#: What the server may write to its log while its descriptors run out: a few lines, no storm.
EXHAUSTION_LOG_BUDGET = 16 << 10
MAX_CONCURRENT_STREAMS = 100


async def test_idle_connections_get_goaway_and_close_within_the_idle_timeout(
    launch: Launcher,
) -> None:
    """Connections above the cap are refused at once; idle ones get GOAWAY(NO_ERROR) and close
    within the idle timeout; the memory they hold is bounded by the cap."""
    server = launch(
        connection_idle_timeout=f"{IDLE_TIMEOUT_SECONDS}s",
        max_connections=str(SCALE.connection_cap),
        max_connections_per_peer=str(SCALE.connection_cap),  # the global cap is under test
    )
    baseline = rss_bytes(server.process.pid)
    opened, refused = await open_many(server, SCALE.idle_connections)
    held = rss_bytes(server.process.pid) - baseline
    try:
        deadline = IDLE_TIMEOUT_SECONDS + TIMER_SLACK_SECONDS
        await asyncio.gather(*(connection.wait_closed(deadline) for connection in opened))
    finally:
        for connection in opened:
            await connection.close()
    lingering = [c for c in opened if c.closed_at is None or c.closed_at - c.opened_at > deadline]
    goaways = {c.goaway.name if c.goaway is not None else "none" for c in opened}
    print(
        f"{len(opened)} admitted, {refused} refused, {held / MIB:.1f} MiB held, "
        f"{len(lingering)} still open after {deadline} s, GOAWAY codes {goaways}"
    )
    assert len(opened) <= SCALE.connection_cap
    assert refused >= SCALE.idle_connections - SCALE.connection_cap
    assert held <= SCALE.connection_cap * IDLE_CONNECTION_RSS_BUDGET
    assert lingering == []
    assert goaways == {"NO_ERROR"}


async def test_plain_tcp_without_tls_is_closed_after_the_handshake_timeout(
    launch: Launcher,
) -> None:
    """A TCP connection that never starts TLS is closed once the handshake timeout passes."""
    server = launch(
        tls_handshake_timeout=f"{HANDSHAKE_TIMEOUT_SECONDS}s",
        max_connections_per_peer=str(SCALE.plain_tcp_connections),
    )
    sockets = [await open_plain_tcp(server) for _ in range(SCALE.plain_tcp_connections)]
    try:
        closed = await asyncio.gather(
            *(
                closed_by_peer(reader, HANDSHAKE_TIMEOUT_SECONDS + TIMER_SLACK_SECONDS)
                for reader, _ in sockets
            )
        )
    finally:
        for _, writer in sockets:
            writer.close()
    print(f"{sum(closed)} of {len(sockets)} closed by the server")
    assert all(closed)


#: Connections one address may hold in the test below, and the server's cap for all.
PEER_CONNECTION_CAP = 20
SERVER_CONNECTION_CAP = 60


async def test_one_address_holding_health_watches_cannot_lock_out_others(
    launch: Launcher,
) -> None:
    """An address that keeps a public Health/Watch call open on every connection it can get
    (so none is ever idle) holds at most its own cap of connections: a client at another
    address still connects and is answered."""
    server = launch(
        max_connections=str(SERVER_CONNECTION_CAP),
        max_connections_per_peer=str(PEER_CONNECTION_CAP),
    )
    attempts = await asyncio.gather(
        *(Connection.open(server) for _ in range(SERVER_CONNECTION_CAP)),
        return_exceptions=True,
    )
    held = [attempt for attempt in attempts if isinstance(attempt, Connection)]
    other = None
    try:
        for connection in held:
            stream_id = await connection.start_call(HEALTH_WATCH)
            await connection.send_message(stream_id, HEALTH_REQUEST, end_stream=True)
        watching = [c for c in held if not c.closed]
        other = await Connection.open(server, source="127.0.0.2")
        answer = await other.call(HEALTH_CHECK, HEALTH_REQUEST, within=10)
    finally:
        for connection in [*held, *([other] if other else [])]:
            await connection.close()
    refused = [a for a in attempts if isinstance(a, ConnectionClosed | OSError)]
    print(f"{len(watching)} watching, {len(refused)} refused; another address: {answer}")
    assert len(watching) <= PEER_CONNECTION_CAP
    assert len(refused) >= SERVER_CONNECTION_CAP - PEER_CONNECTION_CAP
    assert answer == "OK"


async def test_fd_exhaustion_refuses_connections_without_a_log_storm(launch: Launcher) -> None:
    """With file descriptors exhausted by held connections, the server writes a few log lines
    (no tracebacks), and answers again as soon as they are gone."""
    server = launch(
        tls_handshake_timeout=f"{HANDSHAKE_TIMEOUT_SECONDS}s",
        max_connections_per_peer=str(2 * OPEN_FILES_LIMIT),  # one address exhausts them
        open_files_limit=OPEN_FILES_LIMIT,
    )
    log_before = len(server.log())
    sockets = [await open_plain_tcp(server) for _ in range(2 * OPEN_FILES_LIMIT)]
    try:
        # Admitted connections are closed by the handshake timeout, which admits the next
        # ones from the backlog: wait until every socket has been through that.
        closed = await asyncio.gather(
            *(closed_by_peer(reader, 4 * HANDSHAKE_TIMEOUT_SECONDS + 10) for reader, _ in sockets)
        )
        logged = server.log()[log_before:]
    finally:
        for _, writer in sockets:
            writer.close()
    answered = await _sign_up_once_admitted(server, "after-the-storm")
    print(
        f"{sum(closed)} of {len(sockets)} closed; {len(logged)} bytes logged, "
        f"{tracebacks(logged)} tracebacks"
    )
    assert tracebacks(logged) == 0
    assert len(logged) <= EXHAUSTION_LOG_BUDGET
    assert all(closed)
    assert answered.username == "after-the-storm"


async def _sign_up_once_admitted(server: RunningServer, username: str) -> v1.User:
    """Signs up from the address that just wasted 512 connections: it is refused before TLS
    until its connection budget refills a token (0.1 s), so this polls for a few seconds."""
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        try:
            async with sdk_client(server) as client:
                return await client.sign_up(username, "correct horse battery")
        except Unavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_101st_concurrent_stream_is_refused_and_the_other_100_complete(
    server: RunningServer,
) -> None:
    """Above the advertised 100 streams, the next one gets RST_STREAM(REFUSED_STREAM) while
    the connection and its 100 calls carry on to OK."""
    connection = await Connection.open(server)
    try:
        assert connection.max_concurrent_streams == MAX_CONCURRENT_STREAMS
        calls = [await connection.start_call(HEALTH_CHECK) for _ in range(MAX_CONCURRENT_STREAMS)]
        extra = await connection.start_call(HEALTH_CHECK)
        await connection.finished(extra, within=10)
        for stream_id in calls:
            await connection.send_message(stream_id, HEALTH_REQUEST, end_stream=True)
        for stream_id in calls:
            await connection.finished(stream_id, within=10)
        outcomes = [connection.outcome(stream_id) for stream_id in calls]
        extra_outcome = connection.outcome(extra)
    finally:
        await connection.close()
    print(f"101st: {extra_outcome}; the 100: {set(outcomes)}")
    assert extra_outcome == "RST_STREAM REFUSED_STREAM"
    assert outcomes == ["OK"] * MAX_CONCURRENT_STREAMS


def _access_lines(log: str, method: str) -> list[str]:
    return re.findall(rf"rpc method={re.escape(method)} .*", log)


async def test_dropped_connections_mid_call_leave_an_access_log_line_and_no_traceback(
    server: RunningServer,
) -> None:
    """A client that drops its connection in the middle of an upload or a download leaves one
    access-log line per call and no traceback."""
    token = await signed_up(server, "dropper")
    model_id = await new_model(server, token)
    async with sdk_client(server, token) as client:
        await client.upload(model_id, io.BytesIO(os.urandom(8 * MIB)), file_name="weights.bin")
    uploads_before = len(_access_lines(server.log(), UPLOAD))
    downloads_before = len(_access_lines(server.log(), DOWNLOAD))
    for _ in range(SCALE.dropped_calls):
        connection = await Connection.open(server)
        stream_id = await connection.start_call(UPLOAD, bearer(token))
        await connection.send_message(stream_id, upload_header(model_id))
        await connection.send_data(stream_id, grpc_frame(upload_chunk(b"x" * 65536), 1 << 20))
        assert await connection.caught_up(within=10)
        connection.abort()
    for _ in range(SCALE.dropped_calls):
        connection = await Connection.open(server)
        stream_id = await connection.start_call(DOWNLOAD, bearer(token))
        await connection.send_message(stream_id, download_request(model_id), end_stream=True)
        assert await connection.answering(stream_id, within=10), "the download never began"
        connection.abort()

    def all_logged() -> bool:
        log = server.log()
        return (
            len(_access_lines(log, UPLOAD)) - uploads_before >= SCALE.dropped_calls
            and len(_access_lines(log, DOWNLOAD)) - downloads_before >= SCALE.dropped_calls
        )

    logged = await asyncio.to_thread(wait_for, all_logged, 10)
    log = server.log()
    uploads = len(_access_lines(log, UPLOAD)) - uploads_before
    downloads = len(_access_lines(log, DOWNLOAD)) - downloads_before
    print(
        f"access-log lines: {uploads} uploads, {downloads} downloads; {tracebacks(log)} tracebacks"
    )
    assert tracebacks(log) == 0
    assert logged, f"{uploads} upload and {downloads} download lines for {SCALE.dropped_calls} each"
