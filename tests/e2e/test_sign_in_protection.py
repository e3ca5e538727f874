"""Sign-in protection on the real server: throttles per address and username with a retry
hint, bcrypt lanes under a flood, rehashing and the dummy hash's cost after a cost change.

Callers at other addresses connect from other loopback addresses (127.0.0.2, ...), which the
server sees as other peers.
"""

from __future__ import annotations

import asyncio
import sqlite3
import ssl
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import bcrypt
import pytest
from grpclib.client import Channel
from grpclib.protocol import H2Protocol

from modelcatalog import AsyncClient, ResourceExhausted, Unauthenticated

from .conftest import RunningServer, start_server

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"
OTHER_PEER = "127.0.0.2"


class ChannelFrom(Channel):
    """A grpclib channel whose connection leaves from ``source``, so that the server sees a
    caller at that address (grpclib itself always lets the system pick it)."""

    def __init__(self, source: str, host: str, port: int, context: ssl.SSLContext) -> None:
        super().__init__(host, port, ssl=context)
        self._source = source

    async def _create_connection(self) -> H2Protocol:
        _, protocol = await self._loop.create_connection(
            self._protocol_factory,
            self._host,
            self._port,
            ssl=self._ssl,
            local_addr=(self._source, 0),
        )
        return protocol


@asynccontextmanager
async def client_at(server: RunningServer, source: str) -> AsyncIterator[AsyncClient]:
    """An SDK client whose calls come from ``source``."""
    context = ssl.create_default_context(cafile=server.ca_cert)
    context.set_alpn_protocols(["h2"])
    host, port = server.address.rsplit(":", 1)
    async with ChannelFrom(source, host, int(port), context) as channel:
        yield AsyncClient.from_channel(channel)


def start(
    tmp_path: Path, signing_key: Path, *args: str, data_dir: Path | None = None
) -> RunningServer:
    return start_server(tmp_path, *args, data_dir=data_dir, signing_key=signing_key)


async def sign_up(server: RunningServer, *usernames: str) -> None:
    async with AsyncClient(server.address, ca_cert=server.ca_cert) as client:
        for username in usernames:
            await client.sign_up(username, PASSWORD)


async def test_failures_throttle_the_address_for_that_username_with_a_retry_hint(
    tmp_path: Path, signing_key: Path
) -> None:
    """Three wrong passwords from one address refuse the fourth sign-in there, right password
    or not, with a retry delay; another address signs in to the same account."""
    server = start(tmp_path, signing_key, "--sign-in-max-failures-per-account", "3")
    try:
        await sign_up(server, "alice")
        async with AsyncClient(server.address, ca_cert=server.ca_cert) as attacker:
            for _ in range(3):
                with pytest.raises(Unauthenticated):
                    await attacker.sign_in("alice", WRONG)
            with pytest.raises(ResourceExhausted) as throttled:
                await attacker.sign_in("alice", PASSWORD)
        assert throttled.value.reason == "SIGN_IN_THROTTLED"
        assert throttled.value.retry_after is not None
        assert 0 < throttled.value.retry_after <= 15 * 60
        async with client_at(server, OTHER_PEER) as owner:
            assert (await owner.sign_in("alice", PASSWORD)).user.username == "alice"
    finally:
        assert server.stop() == 0


async def test_an_address_failing_on_many_usernames_is_throttled_for_all(
    tmp_path: Path, signing_key: Path
) -> None:
    """Failures on four usernames (none of them existing) throttle the address for alice too;
    alice at another address is not affected."""
    server = start(tmp_path, signing_key, "--sign-in-max-failures-per-peer", "4")
    try:
        await sign_up(server, "alice")
        async with AsyncClient(server.address, ca_cert=server.ca_cert) as attacker:
            for username in ("bob", "carol", "dave", "erin"):
                with pytest.raises(Unauthenticated):
                    await attacker.sign_in(username, WRONG)
            with pytest.raises(ResourceExhausted) as throttled:
                await attacker.sign_in("alice", PASSWORD)
        assert throttled.value.reason == "SIGN_IN_THROTTLED"
        async with client_at(server, OTHER_PEER) as owner:
            await owner.sign_in("alice", PASSWORD)
    finally:
        assert server.stop() == 0


#: Concurrent wrong-password sign-ins per flooding connection, and connections.
FLOOD_WORKERS = 80
FLOOD_CONNECTIONS = 2
#: Legitimate sign-ins made during the flood; each must succeed.
CLEAN_SIGN_INS = 3
FLOOD_DEADLINE_SECONDS = 60.0


@pytest.mark.alone("a clean caller's sign-ins must be answered while the flood loads the machine")
async def test_a_flood_of_wrong_passwords_does_not_starve_a_clean_caller(
    tmp_path: Path, signing_key: Path
) -> None:
    """160 concurrent wrong-password sign-ins from one address fill its (suspect) lane and
    are partly refused OVERLOADED, while a caller at another address signs in every time."""
    server = start(
        tmp_path,
        signing_key,
        "--bcrypt-cost",
        "10",
        "--sign-in-max-failures-per-account",
        "1000000",
        "--sign-in-max-failures-per-peer",
        "1000000",
    )
    outcomes: Counter[str] = Counter()
    overloaded = asyncio.Event()
    flooding = True

    async def flood(client: AsyncClient) -> None:
        while flooding:
            try:
                await client.sign_in("alice", WRONG)
            except Unauthenticated:
                outcomes["wrong"] += 1
            except ResourceExhausted as refused:
                outcomes[refused.reason or "?"] += 1
                if refused.reason == "OVERLOADED":
                    overloaded.set()

    try:
        await sign_up(server, "alice")
        attackers = [
            AsyncClient(server.address, ca_cert=server.ca_cert) for _ in range(FLOOD_CONNECTIONS)
        ]
        workers = [
            asyncio.create_task(flood(client)) for client in attackers for _ in range(FLOOD_WORKERS)
        ]
        await asyncio.wait_for(overloaded.wait(), FLOOD_DEADLINE_SECONDS)
        async with client_at(server, OTHER_PEER) as owner:
            for _ in range(CLEAN_SIGN_INS):
                assert (await owner.sign_in("alice", PASSWORD)).user.username == "alice"
        flooding = False
        await asyncio.gather(*workers)
        for client in attackers:
            client.close()
    finally:
        assert server.stop() == 0


def stored_hash(data_dir: Path, username: str) -> str:
    with sqlite3.connect(data_dir / "catalog.sqlite3") as database:
        row = database.execute(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        ).fetchone()
    return str(row[0])


@pytest.mark.embedded_only("reads the stored hashes from the SQLite file")
async def test_sign_in_rehashes_after_the_operator_changes_the_cost(
    tmp_path: Path, signing_key: Path
) -> None:
    """An account made at cost 4 has a cost-5 hash after signing in to a server at cost 5."""
    first = start(tmp_path, signing_key)
    try:
        await sign_up(first, "alice")
    finally:
        assert first.stop() == 0
    assert stored_hash(first.data_dir, "alice").startswith("$2b$04$")
    second = start(tmp_path, signing_key, "--bcrypt-cost", "5", data_dir=first.data_dir)
    try:
        async with AsyncClient(second.address, ca_cert=second.ca_cert) as alice:
            await alice.sign_in("alice", PASSWORD)
        assert stored_hash(second.data_dir, "alice").startswith("$2b$05$")
        async with AsyncClient(second.address, ca_cert=second.ca_cert) as alice:
            await alice.sign_in("alice", PASSWORD)
    finally:
        assert second.stop() == 0


#: A cost whose bcrypt check takes a clearly measurable time (about a quarter second here).
RAISED_COST = 12


@pytest.mark.alone("compares the time of the server's checks with one measured here")
async def test_unknown_usernames_cost_what_the_stored_hashes_cost(
    tmp_path: Path, signing_key: Path
) -> None:
    """After the cost is raised, an unknown username still takes as long as the existing
    accounts' (old, cheap) hashes, not a check at the new cost."""
    first = start(tmp_path, signing_key)
    try:
        await sign_up(first, "alice", "bob")
    finally:
        assert first.stop() == 0
    stored = bcrypt.hashpw(b"reference", bcrypt.gensalt(rounds=RAISED_COST))
    started = time.perf_counter()
    bcrypt.checkpw(b"reference", stored)
    raised_check = time.perf_counter() - started
    second = start(
        tmp_path, signing_key, "--bcrypt-cost", str(RAISED_COST), data_dir=first.data_dir
    )
    try:
        async with AsyncClient(second.address, ca_cert=second.ca_cert) as caller:
            with pytest.raises(Unauthenticated):
                await caller.sign_in("alice", WRONG)
            durations = []
            for name in ("nobody", "noone", "nothing"):
                started = time.perf_counter()
                with pytest.raises(Unauthenticated):
                    await caller.sign_in(name, WRONG)
                durations.append(time.perf_counter() - started)
        assert statistics.median(durations) < raised_check / 2, (durations, raised_check)
    finally:
        assert second.stop() == 0
