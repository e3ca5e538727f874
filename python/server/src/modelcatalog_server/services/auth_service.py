"""AuthService: sign-up, sign-in (token issue) and the current user."""

from __future__ import annotations

from modelcatalog import v1

from ..auth.hook import current_principal
from ..auth.tokens import TokenService
from ..domain.accounts import Accounts
from . import _convert


class AuthService(v1.AuthServiceBase):
    def __init__(self, accounts: Accounts, tokens: TokenService) -> None:
        self._accounts = accounts
        self._tokens = tokens

    async def sign_up(self, sign_up_request: v1.SignUpRequest) -> v1.SignUpResponse:
        user = await self._accounts.sign_up(sign_up_request.username, sign_up_request.password)
        return v1.SignUpResponse(user=_convert.user(user))

    async def sign_in(self, sign_in_request: v1.SignInRequest) -> v1.SignInResponse:
        user = await self._accounts.sign_in(sign_in_request.username, sign_in_request.password)
        issued = self._tokens.issue(user.id, user.username)
        return v1.SignInResponse(
            access_token=issued.token, expire_time=issued.expire_time, user=_convert.user(user)
        )

    async def get_current_user(
        self, get_current_user_request: v1.GetCurrentUserRequest
    ) -> v1.GetCurrentUserResponse:
        user = await self._accounts.user(current_principal().user_id)
        return v1.GetCurrentUserResponse(user=_convert.user(user))
