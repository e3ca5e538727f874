"""AuthService: sign-up, sign-in (token issue), the current user and sign-out.

SignUp and SignIn need the caller's network address (sign-in throttling and the bcrypt lane
count per address), which only the grpclib stream knows: their handlers take the stream
instead of the bare request, and hand the domain the address as a plain string.
"""

from __future__ import annotations

from typing import Any

from grpclib.const import Handler
from grpclib.server import Stream

from modelcatalog import v1

from ..auth.hook import current_principal
from ..auth.tokens import TokenService
from ..domain.accounts import Accounts
from . import _convert

_SIGN_UP = "/modelcatalog.v1.AuthService/SignUp"
_SIGN_IN = "/modelcatalog.v1.AuthService/SignIn"


def peer_address(stream: Stream[Any, Any]) -> str | None:
    """The caller's IP address, or None once the connection is gone (an asyncio TLS transport
    that has closed no longer answers: ``get_extra_info`` fails with AttributeError)."""
    try:
        address = stream.peer.addr() if stream.peer else None
    except AttributeError:
        return None
    return str(address[0]) if address else None


class AuthService(v1.AuthServiceBase):
    def __init__(self, accounts: Accounts, tokens: TokenService) -> None:
        self._accounts = accounts
        self._tokens = tokens

    def __mapping__(self) -> dict[str, Handler]:
        mapping = super().__mapping__()
        mapping[_SIGN_UP] = mapping[_SIGN_UP]._replace(func=self._sign_up_from)
        mapping[_SIGN_IN] = mapping[_SIGN_IN]._replace(func=self._sign_in_from)
        return mapping

    async def _sign_up_from(self, stream: Stream[v1.SignUpRequest, v1.SignUpResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None  # the transport's guard answers a call without a message
        user = await self._accounts.sign_up(
            request.username, request.password, peer_address(stream)
        )
        await stream.send_message(v1.SignUpResponse(user=_convert.user(user)))

    async def _sign_in_from(self, stream: Stream[v1.SignInRequest, v1.SignInResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None  # the transport's guard answers a call without a message
        signed_in = await self._accounts.sign_in(
            request.username, request.password, peer_address(stream)
        )
        user = signed_in.user
        issued = self._tokens.issue(user.id, user.username, signed_in.token_generation)
        await stream.send_message(
            v1.SignInResponse(
                access_token=issued.token, expire_time=issued.expire_time, user=_convert.user(user)
            )
        )

    async def get_current_user(
        self, get_current_user_request: v1.GetCurrentUserRequest
    ) -> v1.GetCurrentUserResponse:
        user = await self._accounts.user(current_principal().user_id)
        return v1.GetCurrentUserResponse(user=_convert.user(user))

    async def sign_out(self, sign_out_request: v1.SignOutRequest) -> v1.SignOutResponse:
        principal = current_principal()
        await self._accounts.sign_out(
            principal.user_id, principal.token_id, principal.valid_until_us
        )
        return v1.SignOutResponse()
