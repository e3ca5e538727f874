"""Accounts: sign-up and credential checks. Hashing is injected, so the rules stay testable."""

from __future__ import annotations

from typing import Protocol

from ..storage.metadata import MetadataStore, Transaction, UniqueViolation
from ..storage.records import UserRecord
from . import validation
from .errors import AlreadyExists, PermissionDenied, Unauthenticated


class PasswordHasher(Protocol):
    """What accounts need from a password hashing scheme."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str | None) -> bool: ...


INVALID_CREDENTIALS = "the username or the password is wrong"


class Accounts:
    """Creates accounts and checks their credentials."""

    def __init__(self, store: MetadataStore, hasher: PasswordHasher, *, allow_signup: bool) -> None:
        self._store = store
        self._hasher = hasher
        self._allow_signup = allow_signup

    async def sign_up(self, username: str, password: str) -> UserRecord:
        if not self._allow_signup:
            raise PermissionDenied(
                "this server does not allow self sign-up; ask an administrator for an account",
                reason="SIGNUP_DISABLED",
            )
        validation.username("username", username)
        validation.new_password("password", password)
        password_hash = await self._hasher.hash(password)
        try:
            async with self._store.write() as tx:
                return await tx.insert_user(username, password_hash)
        except UniqueViolation:
            raise AlreadyExists(
                f"the username {validation.quoted(username)} is taken; choose another",
                reason="USERNAME_TAKEN",
            ) from None

    async def sign_in(self, username: str, password: str) -> UserRecord:
        """The account whose credentials these are; one error for every kind of mismatch."""
        validation.present("username", username)
        validation.present("password", password)
        async with self._store.read() as tx:
            credentials = await tx.credentials(username)
        password_hash = credentials.password_hash if credentials else None
        if not await self._hasher.verify(password, password_hash) or credentials is None:
            raise Unauthenticated(INVALID_CREDENTIALS, reason="INVALID_CREDENTIALS")
        return credentials.user

    async def user(self, user_id: str) -> UserRecord:
        """The account a valid token names."""
        async with self._store.read() as tx:
            return await caller_account(tx, user_id)


async def caller_account(tx: Transaction, user_id: str) -> UserRecord:
    """The caller's account; a valid token may outlive it (UNAUTHENTICATED then)."""
    account = await tx.user_by_id(user_id)
    if account is None:
        raise Unauthenticated(
            "the account of this access token no longer exists", reason="TOKEN_INVALID"
        )
    return account
