"""AuthService: sign-up, sign-in (token issue), the current user and sign-out; access tokens
for machines; and account self-service (password change, sign-out everywhere, deletion).

SignUp and SignIn hand the domain the caller's IP address (``current_peer``): sign-in
throttling and the bcrypt lanes count per address.
"""

from __future__ import annotations

from modelcatalog import v1, wire

from ..auth.hook import current_peer, current_principal
from ..auth.tokens import TokenService
from ..domain.access_tokens import AccessTokens
from ..domain.accounts import Accounts
from . import _convert


class AuthService(v1.AuthServiceBase):
    def __init__(
        self, accounts: Accounts, tokens: TokenService, access_tokens: AccessTokens
    ) -> None:
        self._accounts = accounts
        self._tokens = tokens
        self._access_tokens = access_tokens

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

    async def create_access_token(
        self, create_access_token_request: v1.CreateAccessTokenRequest
    ) -> v1.CreateAccessTokenResponse:
        request = create_access_token_request
        made = await self._access_tokens.create(
            current_principal().user_id,
            request.name,
            _convert.read_only_from_request(request.scope),
            request.folder_ids,
            request.ttl_seconds,
        )
        return v1.CreateAccessTokenResponse(
            access_token=_convert.access_token(made.token), secret=made.secret
        )

    async def list_access_tokens(
        self, list_access_tokens_request: v1.ListAccessTokensRequest
    ) -> v1.ListAccessTokensResponse:
        request = list_access_tokens_request
        page = await self._access_tokens.list_tokens(
            current_principal().user_id, request.page_size, request.page_token
        )
        return wire.new(
            v1.ListAccessTokensResponse,
            access_tokens=[_convert.access_token(token) for token in page.items],
            next_page_token=page.next_page_token,
        )

    async def revoke_access_token(
        self, revoke_access_token_request: v1.RevokeAccessTokenRequest
    ) -> v1.RevokeAccessTokenResponse:
        await self._access_tokens.revoke(
            current_principal().user_id, revoke_access_token_request.access_token_id
        )
        return v1.RevokeAccessTokenResponse()

    async def change_password(
        self, change_password_request: v1.ChangePasswordRequest
    ) -> v1.ChangePasswordResponse:
        request = change_password_request
        signed_in = await self._accounts.change_password(
            current_principal().user_id,
            request.current_password,
            request.new_password,
            current_peer(),
        )
        user = signed_in.user
        issued = self._tokens.issue(user.id, user.username, signed_in.token_generation)
        return v1.ChangePasswordResponse(access_token=issued.token, expire_time=issued.expire_time)

    async def sign_out_everywhere(
        self, sign_out_everywhere_request: v1.SignOutEverywhereRequest
    ) -> v1.SignOutEverywhereResponse:
        await self._accounts.sign_out_everywhere(current_principal().user_id)
        return v1.SignOutEverywhereResponse()

    async def delete_account(
        self, delete_account_request: v1.DeleteAccountRequest
    ) -> v1.DeleteAccountResponse:
        revoked = await self._accounts.delete_account(
            current_principal().user_id, delete_account_request.password, current_peer()
        )
        self._access_tokens.forget(revoked)
        return v1.DeleteAccountResponse()
