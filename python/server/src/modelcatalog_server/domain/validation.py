"""Input rules shared by every RPC: each failure names the request field it concerns."""

from __future__ import annotations

import re
import unicodedata
import uuid

from .errors import InvalidArgument

USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
PASSWORD_MIN_CHARS = 8
#: bcrypt's limit; longer passwords are refused rather than silently truncated.
PASSWORD_MAX_BYTES = 72
NAME_MAX_CHARS = 128
DESCRIPTION_MAX_CHARS = 4096
ID_MAX_CHARS = 64
FILE_NAME_MAX_CHARS = 255
CONTENT_TYPE_MAX_CHARS = 255
LABELS_MAX = 64
LABEL_KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9._/-]{0,62}")
LABEL_VALUE_MAX_CHARS = 256
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
ALIAS_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
ACCESS_TOKEN_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
ETAG_MAX_CHARS = 64

#: Bidirectional embeddings, overrides and isolates: they reorder how the rest of a line is
#: shown ("Trojan Source"), so other users would see text other than what is stored.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Unicode categories refused in free text: C0 and C1 controls and DEL (ESC starts terminal
#: commands, CR overwrites a line), and the line and paragraph separators.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
#: The control characters a description may hold, so that it can have several lines.
DESCRIPTION_CONTROLS = frozenset("\n\t")


#: Longest piece of client input quoted back in an error message.
ECHO_MAX_CHARS = 64


def quoted(value: str) -> str:
    """``value`` as a quoted string for a message, cut short: clients must not size our replies."""
    if len(value) <= ECHO_MAX_CHARS:
        return repr(value)
    return repr(value[:ECHO_MAX_CHARS]) + f"... ({len(value)} characters)"


def username(field: str, value: str) -> str:
    if not USERNAME_PATTERN.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{field} must be 3 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return value


def new_password(field: str, value: str) -> str:
    if len(value) < PASSWORD_MIN_CHARS:
        raise InvalidArgument(field, f"{field} must have at least {PASSWORD_MIN_CHARS} characters")
    if len(value.encode()) > PASSWORD_MAX_BYTES:
        raise InvalidArgument(
            field,
            f"{field} must be at most {PASSWORD_MAX_BYTES} bytes in UTF-8 (the bcrypt limit)",
        )
    if "\0" in value:
        raise InvalidArgument(field, f"{field} must not contain NUL characters")
    return value


def present(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, f"{field} is required")
    return value


def resource_id(field: str, value: str) -> str:
    present(field, value)
    if len(value) > ID_MAX_CHARS or not value.isprintable():
        raise InvalidArgument(field, f"{field} is not a valid identifier")
    return value


def request_id(field: str, value: str) -> str:
    """A client-chosen request id: empty (none), or a UUID, returned in its canonical form so
    that two spellings of one id are one request."""
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(
            field, f"{field} must be a UUID such as a random UUID4, not {quoted(value)}"
        ) from None


def alias_name(field: str, value: str) -> str:
    """An alias name; never digits only, so that it cannot be mistaken for a version number."""
    if not ALIAS_PATTERN.fullmatch(value) or value.isdigit():
        raise InvalidArgument(
            field,
            f"{field} must be 1 to 63 characters: lowercase letters, digits, '-' or '_', starting "
            "with a letter or digit and not digits only",
        )
    return value


def access_token_name(field: str, value: str) -> str:
    if not ACCESS_TOKEN_NAME_PATTERN.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{field} must be 1 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return value


def etag(field: str, value: str) -> str:
    """An etag sent back by a client, or '' for none; any other well-formed value is
    compared, so only its shape is checked here."""
    if len(value) > ETAG_MAX_CHARS or not (value.isascii() and value.isprintable()):
        raise InvalidArgument(
            field, f"{field} must be at most {ETAG_MAX_CHARS} printable ASCII characters"
        )
    return value


def display_name(field: str, value: str) -> str:
    present(field, value)
    if len(value) > NAME_MAX_CHARS:
        raise InvalidArgument(field, f"{field} must be at most {NAME_MAX_CHARS} characters")
    if value != value.strip() or _has_control_or_bidi_characters(value):
        raise InvalidArgument(
            field,
            f"{field} must not start or end with spaces or contain control or bidirectional "
            "override characters",
        )
    return value


def description(field: str, value: str) -> str:
    if len(value) > DESCRIPTION_MAX_CHARS:
        raise InvalidArgument(field, f"{field} must be at most {DESCRIPTION_MAX_CHARS} characters")
    if _has_control_or_bidi_characters(value, allowed=DESCRIPTION_CONTROLS):
        raise InvalidArgument(
            field,
            f"{field} must not contain control characters other than newline and tab, or "
            "bidirectional override characters",
        )
    return value


def file_name(field: str, value: str) -> str:
    present(field, value)
    if (
        len(value) > FILE_NAME_MAX_CHARS
        or value in {".", ".."}
        or "/" in value
        or "\\" in value
        or _has_control_or_bidi_characters(value)
    ):
        raise InvalidArgument(
            field,
            f"{field} must be 1 to {FILE_NAME_MAX_CHARS} characters without '/', '\\', "
            "control or bidirectional override characters, and not '.' or '..'",
        )
    return value


def content_type(field: str, value: str) -> str:
    if len(value) > CONTENT_TYPE_MAX_CHARS or not (value.isascii() and value.isprintable()):
        raise InvalidArgument(
            field, f"{field} must be at most {CONTENT_TYPE_MAX_CHARS} printable ASCII characters"
        )
    return value or "application/octet-stream"


def sha256(field: str, value: str) -> str:
    """A hex SHA-256 in lowercase, or '' when none was given."""
    digest = value.lower()
    if digest and not SHA256_PATTERN.fullmatch(digest):
        raise InvalidArgument(field, f"{field} must be 64 hexadecimal characters")
    return digest


def labels(field: str, value: dict[str, str]) -> dict[str, str]:
    if len(value) > LABELS_MAX:
        raise InvalidArgument(field, f"{field} may hold at most {LABELS_MAX} labels")
    for key, text in value.items():
        if not LABEL_KEY_PATTERN.fullmatch(key):
            raise InvalidArgument(
                field,
                f"label key {quoted(key)} must be 1 to 63 characters: lowercase letters, "
                "digits, '.', '_', '-' or '/', starting with a letter or digit",
            )
        if len(text) > LABEL_VALUE_MAX_CHARS:
            raise InvalidArgument(
                field,
                f"the value of label {quoted(key)} must be at most "
                f"{LABEL_VALUE_MAX_CHARS} characters",
            )
        if _has_control_or_bidi_characters(text):
            raise InvalidArgument(
                field,
                f"the value of label {quoted(key)} must not contain control or bidirectional "
                "override characters",
            )
    return dict(value)


def _has_control_or_bidi_characters(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether ``value`` holds a control, separator or bidi character other than ``allowed``."""
    if value.isprintable():  # each refused character is unprintable: the common case is quick
        return False
    return any(
        character not in allowed
        and (unicodedata.category(character) in _CONTROL_CATEGORIES or character in BIDI_CONTROLS)
        for character in value
    )
