"""Other users' text, made safe to show on a terminal.

Names, descriptions, labels and error messages come from the server and, through it, from
other users. Written raw, an ESC starts a terminal command (OSC 52 writes the clipboard,
OSC 0 sets the window title, CSI moves the cursor), a carriage return overwrites what was
printed, and a bidirectional override reorders the rest of the line. So every character in
these Unicode categories is written as a visible escape instead:

- ``Cc``: C0 controls (newline and tab included: one value stays on one line), DEL, C1;
- ``Cf``: format characters (bidi overrides and isolates, zero-width characters);
- ``Zl``, ``Zp``: the line and paragraph separators;
- ``Cs``: lone surrogates (from undecodable file names), which no terminal can encode.
"""

import unicodedata
from collections.abc import Callable

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with each unsafe character written as a Python escape (``\\x1b``, ``\\u202e``)."""
    return _escape_unsafe(text, _python_escape)


def printable_json(document: str) -> str:
    """JSON text with each unsafe character written as a JSON ``\\u`` escape.

    Parsed, it is the same value. ``json.dumps`` escapes C0 controls inside strings itself
    but leaves DEL, C1 and format characters raw; the newlines it leaves are its indentation,
    which stays.
    """
    return "\n".join(_escape_unsafe(line, _json_escape) for line in document.split("\n"))


def _escape_unsafe(text: str, escape: Callable[[int], str]) -> str:
    if text.isprintable():  # every unsafe character is unprintable: the common case is quick
        return text
    return "".join(
        escape(ord(character))
        if unicodedata.category(character) in _UNSAFE_CATEGORIES
        else character
        for character in text
    )


def _python_escape(code: int) -> str:
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _json_escape(code: int) -> str:
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # JSON spells the rest as a surrogate pair
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
