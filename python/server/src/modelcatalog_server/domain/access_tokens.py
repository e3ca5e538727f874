"""Access tokens for machines: made, listed and revoked by their owner; looked up on each call.

A token is ``mct_`` followed by 32 random bytes (base64url); only its SHA-256 is stored, and a
call made with it costs one lookup by that digest (a fast hash, not bcrypt: the secret has full
entropy, and the lookup happens on every call). A token found is trusted for the token check
interval before the database is asked again, like a sign-in token's standing
(``accounts.Accounts.check_token``); a revocation in this process forgets it at once. When it
was last used is written at most once per ``LAST_USE_RESOLUTION_SECONDS``.

A token never carries roles: it names its owner, and the owner's roles are read in the queries
of every call, so a role revoked from the owner no longer holds for the token on the next call.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ..recent import Recent
from ..storage.metadata import MetadataStore, Transaction, UniqueViolation, new_id, now_us
from ..storage.records import AccessTokenHolder, AccessTokenRecord
from . import audit, validation
from .accounts import TOKEN_CHECK_INTERVAL_SECONDS
from .catalog import Page, page_of
from .errors import AlreadyExists, InvalidArgument, PermissionDenied, Unauthenticated
from .paging import PageTokens, page_size

#: How every access token starts: the authenticator tells it from a JWT by this alone.
PREFIX = "mct_"
SECRET_BYTES = 32
#: Folders one token may be limited to.
MAX_FOLDERS = 100
#: The longest lifetime a token may be given, by default.
MAX_LIFETIME_SECONDS = 365 * 86400
#: How often, at most, a token's last use is written.
LAST_USE_RESOLUTION_SECONDS = 60
#: Tokens found standing that are remembered, the least recently used forgotten first.
HOLDERS_KEPT = 4096

_LIST_SCOPE = "access_tokens"
UNKNOWN_MESSAGE = (
    "the access token is unknown or was revoked, or its account no longer exists; ask its "
    "owner for a new one"
)


@dataclass(frozen=True)
class NewAccessToken:
    """A token just made, with the secret shown to its owner this once."""

    token: AccessTokenRecord
    secret: str


def secret_digest(secret: str) -> str:
    """What is stored of a secret, and looked up: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessTokens:
    """Makes, lists and revokes users' access tokens, and finds the holder of a secret."""

    def __init__(
        self,
        store: MetadataStore,
        page_tokens: PageTokens,
        *,
        max_lifetime_seconds: int = MAX_LIFETIME_SECONDS,
        check_interval: float = TOKEN_CHECK_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._page_tokens = page_tokens
        self._max_lifetime = max_lifetime_seconds
        self._check_interval = check_interval
        self._clock = clock
        # Secret digest -> (holder found standing, when the next check is due).
        self._holders: Recent[str, tuple[AccessTokenHolder, float]] = Recent(HOLDERS_KEPT)
        # Revocations made by this process so far: a lookup that read the database before one
        # of them committed must not remember its (possibly stale) answer.
        self._revocations = 0

    async def create(
        self,
        caller: str,
        name: str,
        read_only: bool | None,
        folder_ids: Iterable[str],
        ttl_seconds: int,
    ) -> NewAccessToken:
        """A new token of the caller; ``read_only`` None is an unspecified scope (refused),
        no ``folder_ids`` means all of the caller's folders."""
        validation.access_token_name("name", name)
        if read_only is None:
            raise InvalidArgument("scope", "scope is required: read or read-write")
        folders = tuple(dict.fromkeys(folder_ids))
        if len(folders) > MAX_FOLDERS:
            raise InvalidArgument("folder_ids", f"folder_ids may list at most {MAX_FOLDERS}")
        for folder_id in folders:
            validation.resource_id("folder_ids", folder_id)
        if not 0 < ttl_seconds <= self._max_lifetime:
            raise InvalidArgument(
                "ttl_seconds",
                f"ttl_seconds must be positive and at most {self._max_lifetime} seconds "
                f"({self._max_lifetime // 86400} days) on this server",
            )
        secret = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
        created = now_us()
        token = AccessTokenRecord(
            new_id(),
            name,
            read_only,
            folders or None,
            created,
            created + ttl_seconds * 1_000_000,
            None,
        )

        def insert(tx: Transaction) -> None:
            for folder_id in folders:
                if tx.folder_for(caller, folder_id) is None:
                    raise PermissionDenied(
                        f"the folder {validation.quoted(folder_id)} does not exist or you have "
                        "no access to it",
                        reason="FOLDER_ACCESS_DENIED",
                    )
            tx.prune_access_tokens(caller, created)
            tx.insert_access_token(caller, secret_digest(secret), token)
            audit.record(
                tx,
                "CreateAccessToken",
                caller,
                resource=audit.access_token_resource(caller, token.id),
                details={
                    "name": name,
                    "scope": "read" if read_only else "read-write",
                    "folder_ids": ",".join(folders),
                },
            )

        try:
            await self._store.write(insert)
        except UniqueViolation:
            raise AlreadyExists(
                f"you already have an access token named {validation.quoted(name)}",
                reason="ACCESS_TOKEN_NAME_TAKEN",
            ) from None
        return NewAccessToken(token, secret)

    async def list_tokens(self, caller: str, size: int, token: str) -> Page[AccessTokenRecord]:
        """The caller's unexpired tokens by name, a page at a time."""
        limit = page_size(size)
        after = self._page_tokens.decode(token, caller=caller, scope=_LIST_SCOPE)
        rows = await self._store.read(
            lambda tx: tx.access_tokens_of(caller, now_us(), after, limit + 1)
        )
        return page_of(self._page_tokens, rows, limit, caller, _LIST_SCOPE, lambda t: t.name)

    async def revoke(self, caller: str, token_id: str) -> None:
        """Ends the caller's token ``token_id``; nothing happens when it has no such token."""
        validation.resource_id("access_token_id", token_id)

        def delete(tx: Transaction) -> str | None:
            digest = tx.delete_access_token(caller, token_id)
            if digest is not None:
                resource = audit.access_token_resource(caller, token_id)
                audit.record(tx, "RevokeAccessToken", caller, resource=resource)
            return digest

        digest = await self._store.write(delete)
        self.forget([] if digest is None else [digest])

    async def check_standing(self, user_id: str, token_id: str) -> None:
        """Raises Unauthenticated (TOKEN_REVOKED) once the user's token is revoked, expired and
        forgotten, or gone with its account: a lasting call made with it ends."""
        found = await self._store.read(lambda tx: tx.access_token(user_id, token_id, now_us()))
        if found is None:
            raise Unauthenticated(UNKNOWN_MESSAGE, reason="TOKEN_REVOKED")

    def forget(self, digests: Iterable[str]) -> None:
        """Stops trusting tokens revoked by this process: their next use asks the database."""
        self._revocations += 1
        for digest in digests:
            self._holders.discard(digest)

    async def holder(self, secret: str) -> AccessTokenHolder:
        """The standing token with this secret and its owner; UNAUTHENTICATED otherwise."""
        digest = secret_digest(secret)
        checked = self._clock()
        now = now_us()
        revocations = self._revocations
        remembered = self._holders.get(digest, checked)
        if remembered is None:
            found = await self._store.read(lambda tx: tx.access_token_holder(digest))
            if found is None:
                raise Unauthenticated(UNKNOWN_MESSAGE, reason="TOKEN_REVOKED")
            recheck = checked + self._check_interval
        else:
            found, recheck = remembered
        if found.token.expires_us <= now:
            raise Unauthenticated(
                "the access token has expired; ask its owner for a new one",
                reason="TOKEN_EXPIRED",
            )
        last_used = found.token.last_used_us
        if last_used is None or now - last_used >= LAST_USE_RESOLUTION_SECONDS * 1_000_000:
            found = replace(found, token=replace(found.token, last_used_us=now))
            token_id = found.token.id
            await self._store.write(lambda tx: tx.touch_access_token(token_id, now))
        elif remembered is not None:
            return found
        if revocations == self._revocations:
            self._holders.put(digest, (found, recheck), recheck)
        return found
