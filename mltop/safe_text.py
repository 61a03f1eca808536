"""Backend text is data: make it inert before it reaches a terminal, a report or a log.

Anyone who can submit a job controls its id, name, metadata and messages, and those strings
reach the operator's terminal. A raw ESC starts an escape sequence (OSC 52 writes the clipboard,
OSC 0 sets the title, CSI 2J blanks the screen); C1 bytes do the same on some terminals; bidi
overrides and zero-width characters make one id look like another. `inert()` turns every such
character into a visible escape (`\\x1b`, `\\u202e`) so the text is shown, never obeyed.

It also redacts the credentials mltop knows (tokens, cookies, passwords in URLs): an error body
that echoes the request's token must not print it. Markup is the renderer's concern: the TUI
shows this text through `rich.text.Text` and `markup=False`, never as a markup string.

Standard library only (used by the report and the logs as well as the TUI).
"""

from __future__ import annotations

import re

# Characters that must never reach a terminal as themselves: C0 and C1 controls and DEL (Cc),
# Unicode format characters (Cf: bidi embeddings, overrides and isolates, zero-width joiners and
# spaces, the BOM, tag characters, interlinear annotation), lone surrogates (Cs: JSON can carry
# them, and they cannot even be encoded to UTF-8), and the line and paragraph separators (Zl, Zp).
# The list is Unicode 15's; tests check it against `unicodedata` for every code point.
_OTHER_UNSAFE = (
    "\x7f-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHER_UNSAFE}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHER_UNSAFE}]")
REDACTED = "***"

# Credentials that appear in text whatever their value: `Bearer <token>`, user-info in URLs.
# (A token is long; "bearer token required" is an ordinary sentence.)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{16,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")

_known_secrets: set[str] = set()


MIN_SECRET = 8  # a shorter "secret" would redact ordinary words ("good", "alice") all over the screen


def remember_secret(secret: str | None) -> None:
    """Register a credential (token, password, cookie) so it is redacted wherever it shows up."""
    if secret and len(secret.strip()) >= MIN_SECRET:
        _known_secrets.add(secret.strip())


def redact(text: str) -> str:
    """The text with every known credential, bearer token and URL user-info replaced by ***."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "://" in text:
        text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
    if "earer" in text:
        text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
    return text


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if char == "\t":
        return " "
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def inert(text: object, *, multiline: bool = False) -> str:
    """`text` as a string that is safe to draw or print: no character in it acts on a terminal.

    With `multiline`, newlines are kept (log tails, state histories); otherwise they are shown
    as `\\x0a` so one field stays one line. Credentials are redacted first.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if _known_secrets or "://" in text or "earer" in text:
        text = redact(text)
    if multiline:
        text = text.replace("\r\n", "\n")
        return _UNSAFE_BUT_NEWLINE.sub(_visible, text) if _UNSAFE_BUT_NEWLINE.search(text) else text
    return _UNSAFE.sub(_visible, text) if _UNSAFE.search(text) else text


def inert_url(url: str) -> str:
    """A URL as it may be shown: without user-info (a password may live there)."""
    return inert(_USERINFO.sub(lambda m: m.group(1), url))
