"""Accounts: sign-up, credential checks and the standing of issued tokens.

Hashing is injected, so the rules stay testable. Sign-in is throttled, and its bcrypt lane
chosen, by ``sign_in_limits``. A token stops working when its account is deleted, when the
account's token generation moves past the token's, or when the token itself is revoked
(sign-out); all of it is read from the database, so every server process agrees.

A token found standing is trusted for ``token_check_interval`` seconds before the database is
asked again (the last ``STANDING_TOKENS_KEPT`` tokens are remembered). Every path that revokes
forgets the token in this process at once, after its change is committed, so the next call is
refused here; another process sharing the database refuses it at the latest once its interval
has passed since it last asked. Raising a token generation (password change, sign-out
everywhere, account deletion) forgets every remembered token of this process: such changes are
rare, and the others' next use merely asks the database again.

The self-service changes (``change_password``, ``delete_account``) check the password like a
sign-in, throttled and counted with sign-ins, so a stolen sign-in token cannot be used to guess
it; a wrong one is PERMISSION_DENIED (the token itself is fine).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..peers import peer_key
from ..recent import Recent
from ..storage.metadata import MetadataStore, Transaction, UniqueViolation, now_us
from ..storage.records import Credentials, UserRecord
from . import audit, validation
from .errors import (
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from .sign_in_limits import SignInGuard

log = logging.getLogger("modelcatalog_server")

#: Stored hashes are grouped by this many first characters: the "$2b$12$" that names the
#: scheme and its cost.
HASH_HEADER_CHARS = 7
#: How long a token found standing is trusted before the database is asked again, by default.
TOKEN_CHECK_INTERVAL_SECONDS = 5.0
#: Tokens found standing that are remembered, the least recently used forgotten first.
STANDING_TOKENS_KEPT = 4096

INVALID_CREDENTIALS = "the username or the password is wrong"
REVOKED_MESSAGE = (
    "the access token was revoked (signed out) or its account no longer exists; sign in again"
)


class PasswordHasher(Protocol):
    """What accounts need from a password hashing scheme."""

    @property
    def cost(self) -> int: ...

    async def hash(self, password: str, *, suspect: bool = False) -> str: ...

    async def verify(
        self, password: str, password_hash: str | None, *, suspect: bool = False
    ) -> bool: ...

    def cost_of(self, password_hash: str) -> int | None: ...

    def refuse_when_suspect_lane_full(self) -> None: ...

    async def use_dummy_cost(self, cost: int) -> None: ...


@dataclass(frozen=True)
class SignedIn:
    """The account whose credentials matched, and the token generation to issue."""

    user: UserRecord
    token_generation: int


class Accounts:
    """Creates accounts, checks their credentials and the standing of their tokens."""

    def __init__(
        self,
        store: MetadataStore,
        hasher: PasswordHasher,
        guard: SignInGuard,
        *,
        allow_signup: bool,
        token_check_interval: float = TOKEN_CHECK_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._guard = guard
        self._allow_signup = allow_signup
        self._check_interval = token_check_interval
        self._clock = clock
        # Token id -> (account, generation) found standing, until the next check is due.
        self._standing: Recent[str, tuple[str, int]] = Recent(STANDING_TOKENS_KEPT)
        # Revocations made by this process so far: a check that read the database before one
        # of them committed must not remember its (possibly stale) answer.
        self._revocations = 0

    async def sign_up(self, username: str, password: str, peer: str | None) -> UserRecord:
        if not self._allow_signup:
            raise PermissionDenied(
                "this server does not allow self sign-up; ask an administrator for an account",
                reason="SIGNUP_DISABLED",
            )
        validation.username("username", username)
        validation.new_password("password", password)
        with self._guard.checking(peer_key(peer)) as crowded:
            password_hash = await self._hasher.hash(password, suspect=crowded)

        def create(tx: Transaction) -> UserRecord:
            user = tx.insert_user(username, password_hash)
            audit.record(tx, "SignUp", user.id, resource=audit.user_resource(user.id))
            return user

        try:
            return await self._store.write(create)
        except UniqueViolation:
            raise AlreadyExists(
                f"the username {validation.quoted(username)} is taken; choose another",
                reason="USERNAME_TAKEN",
            ) from None

    async def sign_in(
        self, username: str, password: str, peer: str | None, *, audited: bool = True
    ) -> SignedIn:
        """The account whose credentials these are; one error for every kind of mismatch.

        ``peer`` is the caller's network address (None when unknown). A throttled attempt
        fails before any bcrypt work, and one from a crowded address whose lane is full before
        any database work; the others each count for throttling and, when
        ``audited``, are recorded as sign-ins.
        """
        validation.present("username", username)
        validation.present("password", password)
        attempt = self._guard.reserve(username, peer)
        # A username sign-up would refuse cannot exist: it is not looked up (PostgreSQL cannot
        # even compare text holding NUL) and fails as an unknown one, after the same hashing.
        can_exist = validation.USERNAME_PATTERN.fullmatch(username) is not None
        try:
            if self._guard.crowded(attempt.peer_key):
                # A flood from one address: turned away before its database read when its
                # check would be refused anyway, so it cannot fill the database's queue.
                self._hasher.refuse_when_suspect_lane_full()
            attempt, credentials = await self._store.read(
                lambda tx: (
                    self._guard.admit(tx, attempt),
                    tx.credentials(username) if can_exist else None,
                )
            )
            password_hash = credentials.password_hash if credentials else None
            with self._guard.checking(attempt.peer_key) as crowded:
                suspect = attempt.suspect or crowded
                matches = await self._hasher.verify(password, password_hash, suspect=suspect)
            if not matches or credentials is None:
                failure = _failed_sign_in(username, credentials, can_exist)
                await self._guard.failed(attempt, failure if audited else _unrecorded)
                raise Unauthenticated(INVALID_CREDENTIALS, reason="INVALID_CREDENTIALS")
            success = _signed_in(credentials.user.id)
            await self._guard.succeeded(attempt, success if audited else _unrecorded)
        finally:
            self._guard.settle(attempt)
        await self._rehash_if_cost_changed(credentials, password)
        return SignedIn(credentials.user, credentials.token_generation)

    async def match_dummy_hash_cost(self) -> None:
        """Makes unknown usernames cost what most stored hashes cost (the configured cost
        when there are none), so an operator's cost change does not reveal which exist."""
        headers = await self._store.read(lambda tx: tx.password_hash_prefixes(HASH_HEADER_CHARS))
        costs: Counter[int] = Counter()
        for header, accounts in headers.items():
            cost = self._hasher.cost_of(header)
            if cost is not None:
                costs[cost] += accounts
        common = costs.most_common(1)
        await self._hasher.use_dummy_cost(common[0][0] if common else self._hasher.cost)

    async def user(self, user_id: str) -> UserRecord:
        """The account a valid token names."""
        return await self._store.lookup(lambda tx: caller_account(tx, user_id))

    async def check_token(self, user_id: str, token_id: str, generation: int) -> None:
        """Refuses (TOKEN_REVOKED) a token whose account is gone, whose generation is past,
        or which was revoked itself; one light query, at most once per check interval."""
        checked = self._clock()
        if self._standing.get(token_id, checked) == (user_id, generation):
            return
        revocations = self._revocations
        standing = await self._store.read(lambda tx: tx.token_standing(user_id, token_id))
        if standing is None or standing.revoked or standing.token_generation != generation:
            raise Unauthenticated(REVOKED_MESSAGE, reason="TOKEN_REVOKED")
        if revocations == self._revocations:
            self._standing.put(token_id, (user_id, generation), checked + self._check_interval)

    async def sign_out(self, user_id: str, token_id: str, valid_until_us: int) -> None:
        """Revokes one token until it would have expired anyway; forgets expired revocations."""

        def revoke(tx: Transaction) -> None:
            tx.prune_revoked_tokens(now_us())
            tx.insert_revoked_token(token_id, user_id, valid_until_us)
            audit.record(tx, "SignOut", user_id, resource=audit.user_resource(user_id))

        try:
            with contextlib.suppress(UniqueViolation):  # signed out twice at once: revoked anyway
                await self._store.write(revoke)
        finally:
            self._forget_token(token_id)

    async def change_password(
        self, user_id: str, current_password: str, new_password: str, peer: str | None
    ) -> SignedIn:
        """Replaces the password once the current one is confirmed, ending every sign-in token
        of the account; returns the account and the generation for its new token."""
        validation.present("current_password", current_password)
        validation.new_password("new_password", new_password)
        account = await self._confirmed(user_id, current_password, "current_password", peer)
        with self._guard.checking(peer_key(peer)) as crowded:
            new_hash = await self._hasher.hash(new_password, suspect=crowded)

        def change(tx: Transaction) -> int | None:
            generation = tx.set_password_hash(user_id, new_hash)
            audit.record(tx, "ChangePassword", user_id, resource=audit.user_resource(user_id))
            return generation

        try:
            generation = await self._store.write(change)
        finally:
            self._forget_all_tokens()
        if generation is None:
            raise Unauthenticated(REVOKED_MESSAGE, reason="TOKEN_REVOKED")
        return SignedIn(account, generation)

    async def sign_out_everywhere(self, user_id: str) -> None:
        """Ends every sign-in token of the account, on every server process."""

        def sign_out(tx: Transaction) -> None:
            tx.raise_token_generation(user_id)
            resource = audit.user_resource(user_id)
            audit.record(tx, "SignOutEverywhere", user_id, resource=resource)

        try:
            await self._store.write(sign_out)
        finally:
            self._forget_all_tokens()

    async def delete_account(self, user_id: str, password: str, peer: str | None) -> list[str]:
        """Deletes the account once its password is confirmed, with the folders it alone
        belongs to that hold no model; refused (ACCOUNT_OWNS_FOLDERS) while it is the only
        owner of a folder that holds models or has other members. Returns the secret digests
        of the access tokens that ended with it."""
        validation.present("password", password)
        await self._confirmed(user_id, password, "password", peer)

        def delete(tx: Transaction) -> list[str]:
            owned = tx.sole_owned_folders(user_id)
            for folder_id, _, _ in owned:
                tx.lock_folder(folder_id)
            owned = tx.sole_owned_folders(user_id)
            kept = [(folder_id, name) for folder_id, name, in_use in owned if in_use]
            if kept:
                names = ", ".join(validation.quoted(name) for _, name in kept)
                raise FailedPrecondition(
                    f"you are the only owner of folders that hold models or have other members: "
                    f"{names}; make another member owner of each, or delete them, first",
                    reason="ACCOUNT_OWNS_FOLDERS",
                    metadata={"folder_ids": ",".join(folder_id for folder_id, _ in kept)},
                )
            for folder_id, _, _ in owned:
                tx.delete_folder(folder_id)
            audit.record(tx, "DeleteAccount", user_id, resource=audit.user_resource(user_id))
            return tx.delete_user(user_id, now_us())

        try:
            return await self._store.write(delete)
        finally:
            self._forget_all_tokens()

    async def _confirmed(
        self, user_id: str, password: str, field: str, peer: str | None
    ) -> UserRecord:
        """The caller's account once ``password`` is confirmed as its own, as a sign-in
        checks it (throttled, counted); PERMISSION_DENIED (INVALID_CREDENTIALS) otherwise. It
        is not recorded as a sign-in: the trail has the confirmed action, or its refusal."""
        account = await self.user(user_id)
        try:
            signed_in = await self.sign_in(account.username, password, peer, audited=False)
        except Unauthenticated:
            raise PermissionDenied(f"the {field} is wrong", reason="INVALID_CREDENTIALS") from None
        return signed_in.user

    def _forget_all_tokens(self) -> None:
        """Stops trusting every token this process remembers: after a token generation was
        raised, each one's next use asks the database."""
        self._revocations += 1
        self._standing.clear()

    def _forget_token(self, token_id: str) -> None:
        """Stops trusting a token revoked by this process: its next use asks the database."""
        self._revocations += 1
        self._standing.discard(token_id)

    async def _rehash_if_cost_changed(self, credentials: Credentials, password: str) -> None:
        """Brings a hash made at another cost to the configured one, now that the password is
        known to be right; skipped (the next sign-in retries) while the bcrypt lane is full."""
        stored = credentials.password_hash
        if self._hasher.cost_of(stored) == self._hasher.cost:
            return
        try:
            new_hash = await self._hasher.hash(password)
        except ResourceExhausted:
            return
        replaced = await self._store.write(
            lambda tx: tx.replace_password_hash(credentials.user.id, stored, new_hash)
        )
        if replaced:
            log.info(
                "rehashed the password of user %s at bcrypt cost %d (was %s)",
                credentials.user.id,
                self._hasher.cost,
                self._hasher.cost_of(stored),
            )
            await self.match_dummy_hash_cost()


def caller_account(tx: Transaction, user_id: str) -> UserRecord:
    """The caller's account; a valid token may outlive it (UNAUTHENTICATED then)."""
    account = tx.user_by_id(user_id)
    if account is None:
        raise Unauthenticated(REVOKED_MESSAGE, reason="TOKEN_REVOKED")
    return account


def _unrecorded(_tx: Transaction) -> None:
    """Records nothing: a password confirmation is audited as the action it confirms."""


def _signed_in(user_id: str) -> Callable[[Transaction], None]:
    """Records a successful sign-in (in the guard's transaction)."""
    return lambda tx: audit.record(tx, "SignIn", user_id, resource=audit.user_resource(user_id))


def _failed_sign_in(
    username: str, credentials: Credentials | None, can_exist: bool
) -> Callable[[Transaction], None]:
    """Records a failed sign-in where the account's owner sees it (its resource names the
    account), in the transaction that counts it for throttling. The username as typed is kept
    only when it could be one: no arbitrary text from strangers goes into the trail."""
    resource = audit.user_resource(credentials.user.id) if credentials else ""
    details = {"username": username} if can_exist else {}
    return lambda tx: audit.record(
        tx,
        "SignIn",
        None,
        resource=resource,
        details=details,
        outcome="INVALID_CREDENTIALS",
    )
