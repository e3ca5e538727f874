"""Page sizes are clamped; page tokens round-trip and are bound to their secret, caller, scope."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from modelcatalog_server.domain.errors import InvalidArgument
from modelcatalog_server.domain.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PageTokens,
    page_size,
)

SECRET = b"s" * 32
POSITION = [1_700_000_000_123_456, "6f1c1b7e-5b8e-4c55-9d1e-2f1a4c3b2a10"]


@pytest.fixture
def tokens() -> PageTokens:
    return PageTokens(SECRET)


@pytest.fixture
def token(tokens: PageTokens) -> str:
    return tokens.encode(POSITION, caller="user-1", scope="folders")


def _expect_invalid(tokens: PageTokens, token: str, caller: str = "user-1") -> None:
    with pytest.raises(InvalidArgument) as caught:
        tokens.decode(token, caller=caller, scope="folders")
    assert caught.value.reason == "PAGE_TOKEN_INVALID"
    assert caught.value.field == "page_token"


def _flip(text: str, index: int) -> str:
    """``text`` with the base64url character at ``index`` replaced by a different one."""
    replacement = "B" if text[index] == "A" else "A"
    return text[:index] + replacement + text[index + 1 :]


# Page tokens


@pytest.mark.parametrize(
    "position",
    [POSITION, "alice", 42, {"after": "x", "n": [1, 2]}, ["ü", None, True]],
)
def test_token_round_trips_its_position(tokens: PageTokens, position: Any) -> None:
    """decode(encode(position)) gives the position back for the same caller and scope."""
    token = tokens.encode(position, caller="user-1", scope="folders")
    assert tokens.decode(token, caller="user-1", scope="folders") == position


def test_token_is_url_safe_text(token: str) -> None:
    """A token is unpadded base64url payload and tag joined by one dot."""
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert set(token) <= allowed
    assert token.count(".") == 1


def test_empty_token_means_first_page(tokens: PageTokens) -> None:
    """An empty token decodes to None: start from the first page."""
    assert tokens.decode("", caller="user-1", scope="folders") is None


def test_altered_payload_is_rejected(tokens: PageTokens, token: str) -> None:
    """Changing any fully significant character of the payload breaks the tag."""
    payload, tag = token.split(".")
    for index in (0, len(payload) // 2, len(payload) - 2):
        _expect_invalid(tokens, f"{_flip(payload, index)}.{tag}")


def test_payload_rewritten_with_another_position_is_rejected(
    tokens: PageTokens, token: str
) -> None:
    """A payload re-encoded with a forged position under the original tag is rejected."""
    tag = token.split(".")[1]
    forged = json.dumps([[0, ""], "user-1", "folders"], separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    _expect_invalid(tokens, f"{payload}.{tag}")


def test_altered_tag_is_rejected(tokens: PageTokens, token: str) -> None:
    """Changing a fully significant character of the tag is rejected."""
    payload, tag = token.split(".")
    for index in (0, len(tag) // 2, len(tag) - 2):
        _expect_invalid(tokens, f"{payload}.{_flip(tag, index)}")


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda t: t[:-1], id="last-char"),
        pytest.param(lambda t: t[:-4], id="last-4-chars"),
        pytest.param(lambda t: t.split(".")[0], id="payload-only"),
        pytest.param(lambda t: t.split(".")[0] + ".", id="empty-tag"),
        pytest.param(lambda t: "." + t.split(".")[1], id="tag-only"),
        pytest.param(lambda t: t[: len(t) // 2], id="half"),
        pytest.param(lambda t: t[1:], id="first-char"),
    ],
)
def test_truncated_token_is_rejected(tokens: PageTokens, token: str, cut: Any) -> None:
    """A token with characters cut off anywhere is rejected."""
    _expect_invalid(tokens, cut(token))


@pytest.mark.parametrize(
    "text",
    [
        "x",
        ".",
        "..",
        "not a token",
        "abc.def",
        "a.b.c",
        "====.====",
        "%%%.%%%",
        "ü.ü",
        "\x00",
        "eyJhbGciOiJub25lIn0.e30.",
    ],
)
def test_random_text_is_rejected(tokens: PageTokens, text: str) -> None:
    """Text the server never issued is rejected as PAGE_TOKEN_INVALID, not another error."""
    _expect_invalid(tokens, text)


def test_token_of_another_caller_is_rejected(tokens: PageTokens, token: str) -> None:
    """A token replayed by another user is rejected."""
    _expect_invalid(tokens, token, caller="user-2")


def test_token_of_another_scope_is_rejected(tokens: PageTokens) -> None:
    """A token issued for one list (scope) is rejected by another list of the same caller."""
    token = tokens.encode(POSITION, caller="user-1", scope="models:folder-a")
    with pytest.raises(InvalidArgument) as caught:
        tokens.decode(token, caller="user-1", scope="models:folder-b")
    assert (caught.value.reason, caught.value.field) == ("PAGE_TOKEN_INVALID", "page_token")


def test_token_of_another_secret_is_rejected(token: str) -> None:
    """A token issued by a server with another secret is rejected."""
    _expect_invalid(PageTokens(b"t" * 32), token)


def test_tokens_are_tagged_with_the_secret(tokens: PageTokens, token: str) -> None:
    """The same position, caller and scope give different tokens under different secrets."""
    other = PageTokens(b"t" * 32).encode(POSITION, caller="user-1", scope="folders")
    assert other != token
    assert other.split(".")[0] == token.split(".")[0]


# Page size


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (0, DEFAULT_PAGE_SIZE),
        (1, 1),
        (49, 49),
        (MAX_PAGE_SIZE, MAX_PAGE_SIZE),
        (MAX_PAGE_SIZE + 1, MAX_PAGE_SIZE),
        (5000, MAX_PAGE_SIZE),
    ],
)
def test_page_size_defaults_and_clamps(requested: int, expected: int) -> None:
    """0 means the default (50); sizes above the maximum (1000) are clamped to it."""
    assert page_size(requested) == expected


def test_page_size_constants() -> None:
    """The default page size is 50 and the maximum 1000."""
    assert (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) == (50, 1000)


@pytest.mark.parametrize("requested", [-1, -1000])
def test_negative_page_size_is_invalid(requested: int) -> None:
    """A negative page_size is an InvalidArgument naming the page_size field."""
    with pytest.raises(InvalidArgument) as caught:
        page_size(requested)
    assert caught.value.field == "page_size"
