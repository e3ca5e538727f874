"""The access token: absent until sign-in, then sent with every RPC as a bearer token."""

from collections.abc import AsyncIterator

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.events import SendRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.testing import ChannelFor

from modelcatalog import AsyncClient, Unauthenticated, Unavailable, v1

ALICE = v1.User(id="u1", username="alice")


class FakeAuth(v1.AuthServiceBase):
    """Signs in anyone and returns the same user for every RPC; refuses to sign out the
    token "revoked" (as the server refuses a revoked token)."""

    def __init__(self) -> None:
        self.sign_outs = 0

    async def sign_up(self, sign_up_request: v1.SignUpRequest) -> v1.SignUpResponse:
        return v1.SignUpResponse(user=v1.User(id="u1", username=sign_up_request.username))

    async def sign_in(self, sign_in_request: v1.SignInRequest) -> v1.SignInResponse:
        return v1.SignInResponse(access_token="tok-1", user=ALICE)

    async def get_current_user(
        self, get_current_user_request: v1.GetCurrentUserRequest
    ) -> v1.GetCurrentUserResponse:
        return v1.GetCurrentUserResponse(user=ALICE)

    async def sign_out(self, sign_out_request: v1.SignOutRequest) -> v1.SignOutResponse:
        self.sign_outs += 1
        return v1.SignOutResponse()


@pytest.fixture
def auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
async def channel(auth: FakeAuth) -> AsyncIterator[Channel]:
    async with ChannelFor([auth]) as channel:
        yield channel


@pytest.fixture
def sent_authorization(channel: Channel) -> list[str | bytes | None]:
    """The authorization metadata of every request the channel sends, in order."""
    sent: list[str | bytes | None] = []

    async def record(event: SendRequest) -> None:
        sent.append(event.metadata.get("authorization"))

    listen(channel, SendRequest, record)
    return sent


async def test_sign_up_sends_no_token_and_returns_the_user(
    channel: Channel, sent_authorization: list[str | bytes | None]
) -> None:
    """sign_up works without a token, sends none, and returns the created user."""
    client = AsyncClient.from_channel(channel)
    user = await client.sign_up("bob", "correct horse")
    assert user.username == "bob"
    assert sent_authorization == [None]
    assert client.token is None


async def test_sign_in_token_is_attached_to_every_later_rpc(
    channel: Channel, sent_authorization: list[str | bytes | None]
) -> None:
    """After sign_in, the client keeps the token and sends it as "Bearer <token>"."""
    client = AsyncClient.from_channel(channel)
    response = await client.sign_in("alice", "secret-password")
    user = await client.get_current_user()
    assert response.access_token == client.token == "tok-1"
    assert user == ALICE
    assert sent_authorization == [None, "Bearer tok-1"]


async def test_token_argument_and_setter_control_the_header(
    channel: Channel, sent_authorization: list[str | bytes | None]
) -> None:
    """A stored token passed to the client is sent; setting the token to None stops it."""
    client = AsyncClient.from_channel(channel, token="stored")
    await client.get_current_user()
    client.token = None
    await client.get_current_user()
    assert sent_authorization == ["Bearer stored", None]


async def test_timeout_becomes_the_rpc_deadline(channel: Channel) -> None:
    """Each RPC carries a deadline of the client's timeout; timeout=None sends none."""
    deadlines: list[float | None] = []

    async def record(event: SendRequest) -> None:
        deadlines.append(None if event.deadline is None else event.deadline.time_remaining())

    listen(channel, SendRequest, record)
    await AsyncClient.from_channel(channel, timeout=5.0).get_current_user()
    await AsyncClient.from_channel(channel, timeout=None).get_current_user()
    first, second = deadlines
    assert first is not None
    assert 4.0 < first <= 5.0
    assert second is None


@pytest.mark.parametrize("token", ["tok\n", "to ken", "tök"])
async def test_tokens_that_are_not_header_safe_are_refused(token: str) -> None:
    """A token with whitespace or non-ASCII characters raises ValueError before any RPC."""
    with pytest.raises(ValueError, match="printable ASCII"):
        AsyncClient.from_channel(Channel(), token=token)


async def test_sign_out_revokes_with_the_token_then_forgets_it(
    channel: Channel, auth: FakeAuth, sent_authorization: list[str | bytes | None]
) -> None:
    """sign_out sends SignOut with the token, and later RPCs carry no token."""
    client = AsyncClient.from_channel(channel, token="tok-1")
    await client.sign_out()
    await client.get_current_user()
    assert auth.sign_outs == 1
    assert sent_authorization == ["Bearer tok-1", None]
    assert client.token is None


class RefusingAuth(v1.AuthServiceBase):
    """Answers SignOut with the error it was given."""

    def __init__(self, error: GRPCError) -> None:
        self.error = error

    async def sign_out(self, sign_out_request: v1.SignOutRequest) -> v1.SignOutResponse:
        raise self.error


@pytest.mark.parametrize(
    ("status", "raised"),
    [(Status.UNAUTHENTICATED, Unauthenticated), (Status.UNAVAILABLE, Unavailable)],
)
async def test_sign_out_forgets_the_token_even_when_the_call_fails(
    status: Status, raised: type[Exception]
) -> None:
    """A failed SignOut raises its typed error, and the client has forgotten the token."""
    async with ChannelFor([RefusingAuth(GRPCError(status, "no"))]) as channel:
        client = AsyncClient.from_channel(channel, token="tok-1")
        with pytest.raises(raised):
            await client.sign_out()
        assert client.token is None
