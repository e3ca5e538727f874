"""Sign-in protection: throttles per username and address, bcrypt lanes, rehashing, and a
dummy hash that costs what the stored hashes cost."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import bcrypt
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from grpclib.const import Status
from grpclib.server import Stream
from server_testing import Api, channel_for, expect_error, poll_until, sql

from modelcatalog import v1
from modelcatalog_server.app import build_application
from modelcatalog_server.auth.passwords import PasswordHasher
from modelcatalog_server.config import Settings
from modelcatalog_server.domain.accounts import Accounts
from modelcatalog_server.domain.errors import ResourceExhausted, Unauthenticated
from modelcatalog_server.domain.sign_in_limits import PRUNE_INTERVAL_US, SignInGuard, SignInLimits
from modelcatalog_server.peers import UNKNOWN_PEER, peer_key
from modelcatalog_server.rpc import peer_address
from modelcatalog_server.storage.metadata import MetadataStore, now_us

PASSWORD = "correct horse"
WRONG = "wrong horse"
ATTACKER = "198.51.100.7"
OWNER = "203.0.113.5"
SECOND = 1_000_000


class Clock:
    """A clock the test moves by hand, in microseconds."""

    def __init__(self) -> None:
        self.now = now_us()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)


class RecordingHasher(PasswordHasher):
    """bcrypt at cost 4 that remembers the lane of every check and can hold checks back."""

    def __init__(self) -> None:
        super().__init__(cost=4)
        self.lanes: list[bool] = []
        self.release = asyncio.Event()
        self.release.set()

    async def verify(
        self, password: str, password_hash: str | None, *, suspect: bool = False
    ) -> bool:
        self.lanes.append(suspect)
        await self.release.wait()
        return await super().verify(password, password_hash, suspect=suspect)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MetadataStore]:
    opened = await MetadataStore.open_sqlite(tmp_path / "catalog.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def hasher() -> Iterator[RecordingHasher]:
    recording = RecordingHasher()
    try:
        yield recording
    finally:
        recording.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_accounts(
    store: MetadataStore, hasher: PasswordHasher, clock: Clock, **limits: int
) -> Accounts:
    guard = SignInGuard(store, SignInLimits(**limits), clock=clock)
    return Accounts(store, hasher, guard, allow_signup=True)


async def fail(accounts: Accounts, username: str, peer: str | None, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Unauthenticated):
            await accounts.sign_in(username, WRONG, peer)


async def throttled(accounts: Accounts, username: str, peer: str | None) -> ResourceExhausted:
    """The refusal of a sign-in with the right password."""
    with pytest.raises(ResourceExhausted) as caught:
        await accounts.sign_in(username, PASSWORD, peer)
    assert caught.value.reason == "SIGN_IN_THROTTLED"
    return caught.value


# Throttles


async def test_an_attacker_address_does_not_lock_the_owner_out(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """Failures for a username from one address throttle that address only."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=3)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    await fail(accounts, "alice", ATTACKER, times=3)
    await throttled(accounts, "alice", ATTACKER)
    assert (await accounts.sign_in("alice", PASSWORD, OWNER)).user.username == "alice"


async def test_concurrent_guesses_count_before_any_has_failed(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """A burst of simultaneous guesses cannot all be checked: attempts in flight count too,
    up to twice the limit (so as many right sign-ins at once still pass)."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=3)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    hasher.release.clear()
    guesses = [asyncio.create_task(accounts.sign_in("alice", WRONG, ATTACKER)) for _ in range(10)]
    assert await poll_until(lambda: len(hasher.lanes) == 6)
    hasher.release.set()
    outcomes = await asyncio.gather(*guesses, return_exceptions=True)
    kinds = sorted(type(outcome).__name__ for outcome in outcomes)
    assert kinds == ["ResourceExhausted"] * 4 + ["Unauthenticated"] * 6
    refusal = next(o for o in outcomes if isinstance(o, ResourceExhausted))
    assert refusal.retry_after_seconds == 1
    assert (await accounts.sign_in("alice", PASSWORD, OWNER)).user.username == "alice"


async def test_as_many_right_sign_ins_at_once_as_twice_the_limit_pass(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """Simultaneous sign-ins with the right password, up to twice the limit, all succeed."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=3)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    signed_in = await asyncio.gather(
        *(accounts.sign_in("alice", PASSWORD, OWNER) for _ in range(6))
    )
    assert {s.user.username for s in signed_in} == {"alice"}


async def test_the_wait_lasts_until_the_oldest_counted_failure_leaves_the_window(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """Failures at 0, 10 and 20 s with a 100 s window: at 30 s the wait is 70 s, after which
    the right password signs in."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=3, window_seconds=100)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    for _ in range(3):
        await fail(accounts, "alice", ATTACKER)
        clock.advance(10)
    assert (await throttled(accounts, "alice", ATTACKER)).retry_after_seconds == 70
    clock.advance(69.5)
    assert (await throttled(accounts, "alice", ATTACKER)).retry_after_seconds == 1
    clock.advance(0.5)
    await accounts.sign_in("alice", PASSWORD, ATTACKER)


async def test_an_address_failing_on_many_usernames_is_throttled_for_all(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """The per-address limit counts failures on every username, existing or not."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_peer=4)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    for username in ("bob", "carol", "dave", "erin"):
        await fail(accounts, username, ATTACKER)
    refusal = await throttled(accounts, "alice", ATTACKER)
    assert "from your address" in refusal.message
    await accounts.sign_in("alice", PASSWORD, OWNER)


async def test_many_addresses_together_throttle_the_username_everywhere(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """Ten times the per-account limit from all addresses together throttles every address."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=1)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    for host in range(1, 11):
        await fail(accounts, "alice", f"10.0.0.{host}")
    refusal = await throttled(accounts, "alice", OWNER)
    assert refusal.message.startswith("too many failed sign-ins for this username;")


async def test_unknown_usernames_are_throttled_like_existing_ones(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """Throttling says nothing about existence: the same refusal for both."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=2)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    await fail(accounts, "alice", ATTACKER, times=2)
    await fail(accounts, "nobody", ATTACKER, times=2)
    existing = await throttled(accounts, "alice", ATTACKER)
    unknown = await throttled(accounts, "nobody", ATTACKER)
    assert (existing.message, existing.retry_after_seconds) == (
        unknown.message,
        unknown.retry_after_seconds,
    )


async def test_throttled_attempts_run_no_bcrypt(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once throttled, sign-ins are refused without any password check."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=2)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    await fail(accounts, "alice", ATTACKER, times=2)
    checks: list[bytes] = []
    monkeypatch.setattr(bcrypt, "checkpw", lambda password, hashed: checks.append(hashed))
    for _ in range(5):
        await throttled(accounts, "alice", ATTACKER)
    assert checks == []


async def test_a_successful_sign_in_forgets_its_own_failures_from_that_address(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """A user who mistyped and then signed in starts counting from zero at that address."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=3)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    await fail(accounts, "alice", OWNER, times=2)
    await accounts.sign_in("alice", PASSWORD, OWNER)
    await fail(accounts, "alice", OWNER, times=2)
    await accounts.sign_in("alice", PASSWORD, OWNER)


async def test_a_successful_sign_in_does_not_reset_an_address_failures_elsewhere(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """An attacker signing in to its own account keeps its failures on other usernames."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_peer=4)
    await accounts.sign_up("mallory", PASSWORD, ATTACKER)
    await fail(accounts, "alice", ATTACKER, times=3)
    await accounts.sign_in("mallory", PASSWORD, ATTACKER)
    await fail(accounts, "bob", ATTACKER)
    await throttled(accounts, "mallory", ATTACKER)


def test_addresses_are_keyed_by_ipv4_or_ipv6_network() -> None:
    """IPv4 as is (also when mapped into IPv6), IPv6 by its /64, no address as one peer."""
    assert peer_key("192.0.2.1") == "192.0.2.1"
    assert peer_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert peer_key("2001:db8::1") == peer_key("2001:db8::ffff") == "2001:db8::/64"
    assert peer_key("2001:db8:0:1::1") == "2001:db8:0:1::/64"
    assert peer_key("fe80::1%eth0") == "fe80::/64"
    assert peer_key(None) == peer_key("") == UNKNOWN_PEER


def test_the_address_of_a_closed_connection_is_unknown() -> None:
    """A TLS transport that has gone fails get_extra_info; the caller's address is then None."""

    def gone() -> None:
        raise AttributeError("'NoneType' object has no attribute '_get_extra_info'")

    closed = cast(Stream[Any, Any], SimpleNamespace(peer=SimpleNamespace(addr=gone)))
    open_ = cast(Stream[Any, Any], SimpleNamespace(peer=SimpleNamespace(addr=lambda: ("::1", 5))))
    assert peer_address(closed) is None
    assert peer_address(open_) == ("::1", 5)


async def test_one_ipv6_subscriber_network_shares_one_limit(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """Failures from one /64 throttle its other addresses, not a neighbouring /64."""
    accounts = make_accounts(store, hasher, clock, max_failures_per_account=2)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    await fail(accounts, "alice", "2001:db8::1", times=2)
    await throttled(accounts, "alice", "2001:db8::2")
    await accounts.sign_in("alice", PASSWORD, "2001:db8:0:1::1")


async def test_failures_that_left_the_window_are_deleted(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock, tmp_path: Path
) -> None:
    """A failure recorded long after older ones prunes them from the database."""
    accounts = make_accounts(store, hasher, clock, window_seconds=100)
    await fail(accounts, "alice", ATTACKER, times=3)
    clock.advance(max(200, PRUNE_INTERVAL_US / SECOND))
    await fail(accounts, "alice", ATTACKER)
    with sqlite3.connect(tmp_path / "catalog.sqlite3") as database:
        (remaining,) = database.execute("SELECT count(*) FROM sign_in_failures").fetchone()
    assert remaining == 1


async def test_a_throttled_sign_in_answers_resource_exhausted_with_retry_info(
    settings: Settings,
) -> None:
    """Through the API: RESOURCE_EXHAUSTED, SIGN_IN_THROTTLED and a RetryInfo within the
    window, even for the right password."""
    limited = replace(settings, sign_in_max_failures_per_account=2, sign_in_failure_window=600)
    async with build_application(limited) as app, channel_for(app) as channel:
        api = Api(channel)
        await api.auth.sign_up(v1.SignUpRequest("alice", PASSWORD))
        for _ in range(2):
            await expect_error(
                api.auth.sign_in(v1.SignInRequest("alice", WRONG)),
                Status.UNAUTHENTICATED,
                "INVALID_CREDENTIALS",
            )
        error = await expect_error(
            api.auth.sign_in(v1.SignInRequest("alice", PASSWORD)),
            Status.RESOURCE_EXHAUSTED,
            "SIGN_IN_THROTTLED",
        )
    (retry,) = [d for d in error.details or [] if isinstance(d, RetryInfo)]
    assert 590 <= retry.retry_delay.seconds <= 600


# Lanes


async def test_callers_with_recent_failures_go_to_the_suspect_lane(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """An address is suspect after its first failure; failures on a username elsewhere do
    not make its owner's address suspect."""
    accounts = make_accounts(store, hasher, clock)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    await accounts.sign_in("alice", PASSWORD, OWNER)
    await fail(accounts, "alice", ATTACKER, times=2)
    await fail(accounts, "zed", ATTACKER)
    await accounts.sign_in("alice", PASSWORD, OWNER)
    assert hasher.lanes == [False, False, True, True, False]


async def test_the_lane_does_not_depend_on_whether_the_username_exists(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """The same history for an existing and an unknown username picks the same lanes."""
    accounts = make_accounts(store, hasher, clock)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    await fail(accounts, "alice", "10.0.0.1", times=2)
    await fail(accounts, "nobody", "10.0.0.2", times=2)
    assert hasher.lanes == [False, True, False, True]


async def test_several_checks_in_flight_from_one_address_make_the_next_suspect(
    store: MetadataStore, hasher: RecordingHasher, clock: Clock
) -> None:
    """With two checks of an address in flight, its third goes to the suspect lane."""
    accounts = make_accounts(store, hasher, clock)
    await accounts.sign_up("alice", PASSWORD, OWNER)
    hasher.release.clear()
    calls = [asyncio.create_task(accounts.sign_in("alice", PASSWORD, OWNER)) for _ in range(3)]
    assert await poll_until(lambda: len(hasher.lanes) == 3)
    hasher.release.set()
    await asyncio.gather(*calls)
    assert hasher.lanes == [False, False, True]


async def test_a_crowded_address_is_refused_before_its_database_read_when_its_lane_is_full(
    store: MetadataStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its checks filling the suspect lane, an address's next sign-in is refused
    OVERLOADED without touching the database; the held checks then all answer."""
    held = threading.Event()
    real_checkpw = bcrypt.checkpw

    def held_checkpw(password: bytes, hashed: bytes) -> bool:
        held.wait()
        return real_checkpw(password, hashed)

    hasher = PasswordHasher(cost=4, max_threads=2, suspect_threads=1, max_queued_suspect=0)
    accounts = make_accounts(store, hasher, clock)
    reads = 0
    real_read = store.read

    async def counted_read(step: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real_read(step)

    try:
        await accounts.sign_up("alice", PASSWORD, OWNER)
        monkeypatch.setattr(bcrypt, "checkpw", held_checkpw)
        monkeypatch.setattr(store, "read", counted_read)
        # Two clean checks, then a suspect one that takes the suspect lane's only thread.
        calls = [asyncio.create_task(accounts.sign_in("alice", PASSWORD, OWNER)) for _ in range(3)]
        try:
            assert await poll_until(lambda: reads == 3 and not suspect_lane_has_room(hasher))
            with pytest.raises(ResourceExhausted) as refused:
                await accounts.sign_in("alice", PASSWORD, OWNER)
            assert refused.value.reason == "OVERLOADED"
            assert reads == 3
        finally:
            held.set()
        signed_in = await asyncio.gather(*calls)
        assert [each.user.username for each in signed_in] == ["alice"] * 3
    finally:
        hasher.close()


def suspect_lane_has_room(hasher: PasswordHasher) -> bool:
    """Whether the suspect lane would take another check now."""
    try:
        hasher.refuse_when_suspect_lane_full()
    except ResourceExhausted:
        return False
    return True


# Cost changes


async def stored_hash(settings: Settings, username: str) -> str:
    [(stored,)] = await sql(
        settings, "SELECT password_hash FROM users WHERE username = :username", username=username
    )
    return str(stored)


async def sign_up_at_cost(settings: Settings, *usernames: str) -> None:
    async with build_application(settings) as app, channel_for(app) as channel:
        for username in usernames:
            await Api(channel).auth.sign_up(v1.SignUpRequest(username, PASSWORD))


def record_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The hashes every later bcrypt check compares against."""
    checks: list[bytes] = []
    real_check = bcrypt.checkpw

    def recording_check(password: bytes, hashed: bytes) -> bool:
        checks.append(hashed)
        return bool(real_check(password, hashed))

    monkeypatch.setattr(bcrypt, "checkpw", recording_check)
    return checks


async def test_sign_in_rehashes_a_hash_made_at_another_cost(settings: Settings) -> None:
    """After the operator raises the cost, a sign-in stores a new hash at it, which works."""
    await sign_up_at_cost(settings, "alice")
    assert (await stored_hash(settings, "alice")).startswith("$2b$04$")
    raised = replace(settings, bcrypt_cost=5)
    async with build_application(raised) as app, channel_for(app) as channel:
        api = Api(channel)
        await api.auth.sign_in(v1.SignInRequest("alice", PASSWORD))
        assert (await stored_hash(settings, "alice")).startswith("$2b$05$")
        await api.auth.sign_in(v1.SignInRequest("alice", PASSWORD))


async def test_unknown_usernames_cost_what_most_stored_hashes_cost(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a cost change the dummy hash keeps the old cost until most accounts have been
    rehashed, then follows them."""
    await sign_up_at_cost(settings, "alice", "bob", "carol")
    async with (
        build_application(replace(settings, bcrypt_cost=5)) as app,
        channel_for(app) as channel,
    ):
        api = Api(channel)
        checks = record_checks(monkeypatch)
        unknown = v1.SignInRequest("nobody", PASSWORD)
        await expect_error(api.auth.sign_in(unknown), Status.UNAUTHENTICATED, "INVALID_CREDENTIALS")
        assert checks[-1].startswith(b"$2b$04$")
        for username in ("alice", "bob"):
            await api.auth.sign_in(v1.SignInRequest(username, PASSWORD))
        await expect_error(api.auth.sign_in(unknown), Status.UNAUTHENTICATED, "INVALID_CREDENTIALS")
        assert checks[-1].startswith(b"$2b$05$")


async def test_without_accounts_the_dummy_hash_has_the_configured_cost(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an empty server unknown usernames are checked at the configured cost."""
    async with (
        build_application(replace(settings, bcrypt_cost=5)) as app,
        channel_for(app) as channel,
    ):
        checks = record_checks(monkeypatch)
        await expect_error(
            Api(channel).auth.sign_in(v1.SignInRequest("nobody", PASSWORD)),
            Status.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
        )
    assert [hashed[:7] for hashed in checks] == [b"$2b$05$"]


async def test_a_too_long_password_is_checked_against_the_account_hash(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password past 72 bytes costs the account's own bcrypt check, like a wrong one."""
    await api.auth.sign_up(v1.SignUpRequest("alice", PASSWORD))
    checks = record_checks(monkeypatch)
    await expect_error(
        api.auth.sign_in(v1.SignInRequest("alice", PASSWORD + "x" * 72)),
        Status.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    assert checks == [(await stored_hash(settings, "alice")).encode()]
