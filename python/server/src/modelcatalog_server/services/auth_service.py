"""AuthService: sign-up, sign-in (token issue), the current user and sign-out.

SignUp and SignIn hand the domain the caller's IP address (``current_peer``): sign-in
throttling and the bcrypt lanes count per address.
"""

from __future__ import annotations

from modelcatalog import v1, wire

from ..auth.hook import current_peer, current_principal
from ..auth.tokens import TokenService
from ..domain.accounts import Accounts
from . import _convert


class AuthService(v1.AuthServiceBase):
    def __init__(self, accounts: Accounts, tokens: TokenService) -> None:
        self._accounts = accounts
        self._tokens = tokens

    async def sign_up(self, sign_up_request: v1.SignUpRequest) -> v1.SignUpResponse:
        request = sign_up_request
        user = await self._accounts.sign_up(request.username, request.password, current_peer())
        return v1.SignUpResponse(user=_convert.user(user))

    async def sign_in(self, sign_in_request: v1.SignInRequest) -> v1.SignInResponse:
        request = sign_in_request
        signed_in = await self._accounts.sign_in(request.username, request.password, current_peer())
        user = signed_in.user
        issued = self._tokens.issue(user.id, user.username, signed_in.token_generation)
        return v1.SignInResponse(
            access_token=issued.token, expire_time=issued.expire_time, user=_convert.user(user)
        )

    async def get_current_user(
        self, get_current_user_request: v1.GetCurrentUserRequest
    ) -> v1.GetCurrentUserResponse:
        user = await self._accounts.user(current_principal().user_id)
        return wire.new(v1.GetCurrentUserResponse, user=_convert.user(user))

    async def sign_out(self, sign_out_request: v1.SignOutRequest) -> v1.SignOutResponse:
        principal = current_principal()
        await self._accounts.sign_out(
            principal.user_id, principal.token_id, principal.valid_until_us
        )
        return v1.SignOutResponse()
