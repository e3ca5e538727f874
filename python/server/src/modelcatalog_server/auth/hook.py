"""Request authentication: a deny-by-default table of who may call which method.

Every method the server answers must be listed in ``METHOD_ACCESS``; a unit test checks that
the table covers every method of every service. A method missing from it is refused.

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

from ..domain.errors import PermissionDenied, Unauthenticated
from .tokens import Principal, TokenService


class Access(enum.Enum):
    """Who may call a method."""

    PUBLIC = "public"
    AUTHENTICATED = "authenticated"


_AUTH = "/modelcatalog.v1.AuthService/"
_FOLDER = "/modelcatalog.v1.FolderService/"
_MODEL = "/modelcatalog.v1.ModelService/"
_AUDIT = "/modelcatalog.v1.AuditService/"

METHOD_ACCESS: Mapping[str, Access] = {
    _AUTH + "SignUp": Access.PUBLIC,
    _AUTH + "SignIn": Access.PUBLIC,
    _AUTH + "GetCurrentUser": Access.AUTHENTICATED,
    _AUTH + "SignOut": Access.AUTHENTICATED,
    _FOLDER + "CreateFolder": Access.AUTHENTICATED,
    _FOLDER + "GetFolder": Access.AUTHENTICATED,
    _FOLDER + "ListFolders": Access.AUTHENTICATED,
    _FOLDER + "UpdateFolder": Access.AUTHENTICATED,
    _FOLDER + "GrantFolderAccess": Access.AUTHENTICATED,
    _FOLDER + "RevokeFolderAccess": Access.AUTHENTICATED,
    _FOLDER + "ListFolderAccess": Access.AUTHENTICATED,
    _FOLDER + "DeleteFolder": Access.AUTHENTICATED,
    _MODEL + "CreateModel": Access.AUTHENTICATED,
    _MODEL + "GetModel": Access.AUTHENTICATED,
    _MODEL + "ListModels": Access.AUTHENTICATED,
    _MODEL + "UpdateModel": Access.AUTHENTICATED,
    _MODEL + "GetModelVersion": Access.AUTHENTICATED,
    _MODEL + "ListModelVersions": Access.AUTHENTICATED,
    _MODEL + "UpdateModelVersion": Access.AUTHENTICATED,
    _MODEL + "UploadModelVersion": Access.AUTHENTICATED,
    _MODEL + "DownloadModelVersion": Access.AUTHENTICATED,
    _MODEL + "SetModelAlias": Access.AUTHENTICATED,
    _MODEL + "DeleteModelAlias": Access.AUTHENTICATED,
    _MODEL + "ListModelAliases": Access.AUTHENTICATED,
    _MODEL + "DeleteModelVersion": Access.AUTHENTICATED,
    _MODEL + "DeleteModel": Access.AUTHENTICATED,
    _MODEL + "GetUploadStatus": Access.AUTHENTICATED,
    _AUDIT + "ListAuditEvents": Access.AUTHENTICATED,
    _AUDIT + "WatchEvents": Access.AUTHENTICATED,
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


class Authenticator:
    """Checks each call's ``authorization: Bearer <token>`` against the access table."""

    def __init__(self, tokens: TokenService, revocations: TokenRevocations) -> None:
        self._tokens = tokens
        self._revocations = revocations

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
        principal = self._tokens.verify(token.strip())
        await self._revocations.check_token(
            principal.user_id, principal.token_id, principal.token_generation
        )
        _principal.set(principal)
        return principal
