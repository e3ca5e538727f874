"""Request authentication: a deny-by-default table of who may call which method.

Every method the server answers must be listed in ``METHOD_ACCESS``; a unit test checks that
the table covers every method of every service. A method missing from it is refused. The table
also says what an access token's scope must allow (``Access``): a call its token does not
cover is refused here, before any work; the folders a token is limited to are handed to the
metadata store for the rest of the call (``limit_visible_folders``), whose queries then see
only those.

This is the one path every call's token takes: its signature and claims are checked here, and
then the accounts are asked whether the token still stands, so that a revoked token or one
whose account was deleted stops working on every method. Both answers are remembered for a
while (``tokens.TokenService.verify``, ``Accounts.check_token``): a token's signature until it
expires, its standing for the token check interval, except that a sign-out in this process
is refused on the very next call.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Protocol

from ..domain.access_tokens import PREFIX as ACCESS_TOKEN_PREFIX
from ..domain.errors import PermissionDenied, Unauthenticated
from ..storage.metadata import limit_visible_folders, now_us
from ..storage.records import AccessTokenHolder
from .tokens import Principal, TokenService


class Access(enum.Enum):
    """Who may call a method."""

    PUBLIC = "public"
    #: Any token, read-only access tokens included: the method changes nothing.
    READ = "read"
    #: A sign-in token or a read-write access token: the method may change something.
    AUTHENTICATED = "authenticated"
    #: A sign-in token, or a read-write access token not limited to listed folders.
    ALL_FOLDERS = "all folders"
    #: A sign-in token only: the method manages tokens or the account.
    ACCOUNT = "account"


_AUTH = "/modelcatalog.v1.AuthService/"
_FOLDER = "/modelcatalog.v1.FolderService/"
_MODEL = "/modelcatalog.v1.ModelService/"
_AUDIT = "/modelcatalog.v1.AuditService/"

METHOD_ACCESS: Mapping[str, Access] = {
    _AUTH + "SignUp": Access.PUBLIC,
    _AUTH + "SignIn": Access.PUBLIC,
    _AUTH + "GetCurrentUser": Access.READ,
    _AUTH + "SignOut": Access.ACCOUNT,
    _AUTH + "CreateAccessToken": Access.ACCOUNT,
    _AUTH + "ListAccessTokens": Access.ACCOUNT,
    _AUTH + "RevokeAccessToken": Access.ACCOUNT,
    _AUTH + "ChangePassword": Access.ACCOUNT,
    _AUTH + "SignOutEverywhere": Access.ACCOUNT,
    _AUTH + "DeleteAccount": Access.ACCOUNT,
    _FOLDER + "CreateFolder": Access.ALL_FOLDERS,
    _FOLDER + "GetFolder": Access.READ,
    _FOLDER + "ListFolders": Access.READ,
    _FOLDER + "UpdateFolder": Access.AUTHENTICATED,
    _FOLDER + "GrantFolderAccess": Access.AUTHENTICATED,
    _FOLDER + "RevokeFolderAccess": Access.AUTHENTICATED,
    _FOLDER + "ListFolderAccess": Access.READ,
    _FOLDER + "DeleteFolder": Access.AUTHENTICATED,
    _FOLDER + "ExplainAccess": Access.READ,
    _MODEL + "CreateModel": Access.AUTHENTICATED,
    _MODEL + "GetModel": Access.READ,
    _MODEL + "ListModels": Access.READ,
    _MODEL + "UpdateModel": Access.AUTHENTICATED,
    _MODEL + "GetModelVersion": Access.READ,
    _MODEL + "ListModelVersions": Access.READ,
    _MODEL + "UpdateModelVersion": Access.AUTHENTICATED,
    _MODEL + "UploadModelVersion": Access.AUTHENTICATED,
    _MODEL + "DownloadModelVersion": Access.READ,
    _MODEL + "SetModelAlias": Access.AUTHENTICATED,
    _MODEL + "DeleteModelAlias": Access.AUTHENTICATED,
    _MODEL + "ListModelAliases": Access.READ,
    _MODEL + "DeleteModelVersion": Access.AUTHENTICATED,
    _MODEL + "DeleteModel": Access.AUTHENTICATED,
    _MODEL + "GetUploadStatus": Access.READ,
    _AUDIT + "ListAuditEvents": Access.READ,
    _AUDIT + "WatchEvents": Access.READ,
    "/grpc.health.v1.Health/Check": Access.PUBLIC,
    "/grpc.health.v1.Health/Watch": Access.PUBLIC,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": Access.PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Access.PUBLIC,
}

_principal: ContextVar[Principal] = ContextVar("modelcatalog_principal")
_peer: ContextVar[str | None] = ContextVar("modelcatalog_peer", default=None)


def current_peer() -> str | None:
    """The IP address the current call comes from; None when it is unknown."""
    return _peer.get()


def set_current_peer(host: str | None) -> None:
    """Records the current call's IP address for the handlers (set by the per-call plumbing)."""
    _peer.set(host)


def current_principal() -> Principal:
    """The caller of the RPC being handled; only valid in an authenticated method."""
    return _principal.get()


class TokenRevocations(Protocol):
    """Where the authenticator learns whether a well-signed token was revoked since."""

    async def check_token(self, user_id: str, token_id: str, generation: int) -> None:
        """Raises Unauthenticated (TOKEN_REVOKED) for a token that no longer stands."""


class AccessTokenHolders(Protocol):
    """Where the authenticator finds the holder of an access token's secret."""

    async def holder(self, secret: str) -> AccessTokenHolder:
        """Raises Unauthenticated for a secret that names no standing token."""

    async def check_standing(self, user_id: str, token_id: str) -> None:
        """Raises Unauthenticated (TOKEN_REVOKED) once the user's token is gone."""


class Authenticator:
    """Checks each call's ``authorization: Bearer <token>`` against the access table."""

    def __init__(
        self,
        tokens: TokenService,
        revocations: TokenRevocations,
        access_tokens: AccessTokenHolders,
    ) -> None:
        self._tokens = tokens
        self._revocations = revocations
        self._access_tokens = access_tokens

    async def authenticate(self, method: str, authorization: list[str]) -> Principal | None:
        """The caller of ``method`` (None for a public one); raises when the call is refused."""
        access = METHOD_ACCESS.get(method)
        if access is None:
            raise PermissionDenied(
                f"{method} has no access rule on this server", reason="ACCESS_RULE_MISSING"
            )
        if access is Access.PUBLIC:
            return None
        if not authorization:
            raise Unauthenticated(
                "this call needs an access token: sign in and send 'authorization: Bearer <token>'",
                reason="TOKEN_MISSING",
            )
        scheme, _, token = authorization[0].strip().partition(" ")
        if len(authorization) > 1 or scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "the authorization metadata must be exactly one 'Bearer <token>'",
                reason="TOKEN_INVALID",
            )
        token = token.strip()
        if token.startswith(ACCESS_TOKEN_PREFIX):
            principal = _principal_of(await self._access_tokens.holder(token))
        else:
            principal = self._tokens.verify(token)
            await self._revocations.check_token(
                principal.user_id, principal.token_id, principal.token_generation
            )
        _principal.set(principal)
        limit_visible_folders(principal.folder_ids)
        return principal

    def authorize(self, method: str, principal: Principal) -> None:
        """Refuses, before any work, a call its access token's scope does not cover. Apart
        from ``authenticate`` so that the refusal, of a known caller, can be audited."""
        _check_scope(method, METHOD_ACCESS[method], principal)

    async def still_stands(self, principal: Principal) -> None:
        """Raises Unauthenticated once the token a call was authenticated with has expired or
        been revoked since: for calls that last, such as a watch, asked again as they go."""
        if now_us() > principal.valid_until_us:
            raise Unauthenticated("the token has expired; sign in again", reason="TOKEN_EXPIRED")
        if principal.access_token_name is not None:
            await self._access_tokens.check_standing(principal.user_id, principal.token_id)
        else:
            await self._revocations.check_token(
                principal.user_id, principal.token_id, principal.token_generation
            )


def _principal_of(holder: AccessTokenHolder) -> Principal:
    token = holder.token
    return Principal(
        holder.user_id,
        holder.username,
        token_id=token.id,
        token_generation=0,
        valid_until_us=token.expires_us,
        access_token_name=token.name,
        read_only=token.read_only,
        folder_ids=token.folder_ids,
    )


def _check_scope(method: str, access: Access, principal: Principal) -> None:
    """Refuses, before any work, a call its access token's scope does not cover."""
    if principal.access_token_name is None or access is Access.READ:
        return
    if access is Access.ACCOUNT:
        raise PermissionDenied(
            f"{method} manages tokens or the account: an access token cannot call it; sign in "
            "with the password",
            reason="TOKEN_SCOPE_INSUFFICIENT",
        )
    if principal.read_only:
        raise PermissionDenied(
            f"the access token {principal.access_token_name!r} is read-only and {method} "
            "changes something; use a read-write token",
            reason="TOKEN_READ_ONLY",
        )
    if access is Access.ALL_FOLDERS and principal.folder_ids is not None:
        raise PermissionDenied(
            f"the access token {principal.access_token_name!r} is limited to listed folders "
            f"and cannot call {method}; use a token for all folders",
            reason="TOKEN_SCOPE_INSUFFICIENT",
        )
