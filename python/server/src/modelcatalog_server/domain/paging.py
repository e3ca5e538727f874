"""Page sizes and page tokens (AIP-158): tokens are opaque, signed, and bound to their caller.

A token carries the position of the last item returned, the caller and the request's filters,
under an HMAC-SHA256 tag; a token that was altered, or is replayed by another caller or with
other filters, is rejected. Authorization is also applied inside every list query, so even a
forged position could never reveal another folder.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from .errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TAG_BYTES = 16


def page_size(value: int) -> int:
    """The number of items to return for a requested ``page_size``."""
    if value < 0:
        raise InvalidArgument("page_size", "page_size must not be negative")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


@dataclass(frozen=True)
class PageTokens:
    """Signs and checks page tokens with a server secret."""

    secret: bytes

    def encode(self, position: Any, *, caller: str, scope: str) -> str:
        payload = json.dumps([position, caller, scope], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._tag(payload))}"

    def decode(self, token: str, *, caller: str, scope: str) -> Any:
        """The position stored in ``token``; None for an empty token (the first page)."""
        if not token:
            return None
        try:
            payload_text, _, tag_text = token.partition(".")
            payload = _unb64(payload_text)
            if not hmac.compare_digest(_unb64(tag_text), self._tag(payload)):
                raise ValueError("tag mismatch")
            position, token_caller, token_scope = json.loads(payload)
        except (ValueError, binascii.Error, TypeError):
            raise _invalid() from None
        if token_caller != caller or token_scope != scope:
            raise _invalid()
        return position

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()[:_TAG_BYTES]


def _invalid() -> InvalidArgument:
    return InvalidArgument(
        "page_token",
        "page_token is not a token this server issued for this caller and request; "
        "start again from the first page",
        reason="PAGE_TOKEN_INVALID",
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
