"""The access token: absent until sign-in, then sent with every RPC as a bearer token."""

from collections.abc import AsyncIterator

import pytest
from grpclib.client import Channel
from grpclib.events import SendRequest, listen
from grpclib.testing import ChannelFor

from modelcatalog import Client, v1

ALICE = v1.User(id="u1", username="alice")


class FakeAuth(v1.AuthServiceBase):
    """Signs in anyone and returns the same user for every RPC."""

    async def sign_up(self, sign_up_request: v1.SignUpRequest) -> v1.SignUpResponse:
        return v1.SignUpResponse(user=v1.User(id="u1", username=sign_up_request.username))

    async def sign_in(self, sign_in_request: v1.SignInRequest) -> v1.SignInResponse:
        return v1.SignInResponse(access_token="tok-1", user=ALICE)

    async def get_current_user(
        self, get_current_user_request: v1.GetCurrentUserRequest
    ) -> v1.GetCurrentUserResponse:
        return v1.GetCurrentUserResponse(user=ALICE)


@pytest.fixture
async def channel() -> AsyncIterator[Channel]:
    async with ChannelFor([FakeAuth()]) as channel:
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
    client = Client.from_channel(channel)
    user = await client.sign_up("bob", "correct horse")
    assert user.username == "bob"
    assert sent_authorization == [None]
    assert client.token is None


async def test_sign_in_token_is_attached_to_every_later_rpc(
    channel: Channel, sent_authorization: list[str | bytes | None]
) -> None:
    """After sign_in, the client keeps the token and sends it as "Bearer <token>"."""
    client = Client.from_channel(channel)
    response = await client.sign_in("alice", "secret-password")
    user = await client.get_current_user()
    assert response.access_token == client.token == "tok-1"
    assert user == ALICE
    assert sent_authorization == [None, "Bearer tok-1"]


async def test_token_argument_and_setter_control_the_header(
    channel: Channel, sent_authorization: list[str | bytes | None]
) -> None:
    """A stored token passed to the client is sent; setting the token to None stops it."""
    client = Client.from_channel(channel, token="stored")
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
    await Client.from_channel(channel, timeout=5.0).get_current_user()
    await Client.from_channel(channel, timeout=None).get_current_user()
    first, second = deadlines
    assert first is not None
    assert 4.0 < first <= 5.0
    assert second is None


@pytest.mark.parametrize("token", ["tok\n", "to ken", "tök"])
async def test_tokens_that_are_not_header_safe_are_refused(token: str) -> None:
    """A token with whitespace or non-ASCII characters raises ValueError before any RPC."""
    with pytest.raises(ValueError, match="printable ASCII"):
        Client.from_channel(Channel(), token=token)
