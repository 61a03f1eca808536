"""Short, stable text for cells: coarse ages ("5m", "2h"), GPU counts. Shared by the report and
the widgets so a number reads the same everywhere. No Textual here."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime

import humanize

from mltop.safe_text import inert


def short_duration(seconds: float | None) -> str:
    """Coarse on purpose: a cell that changes every second makes every row change every tick."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h{m:02d}m" if h < 10 else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d{h:02d}h" if d < 10 else f"{d}d"


def short_duration_changes_in(seconds: float) -> float:
    """Seconds until `short_duration` of a duration growing from `seconds` reads differently."""
    step = 1 if seconds < 60 else 60 if seconds < 36000 else 3600 if seconds < 864000 else 86400
    return step - (seconds % step)


def long_duration(seconds: float | None) -> str:
    """For sentences: "3 minutes", "2 hours"."""
    if seconds is None:
        return "unknown"
    return humanize.naturaldelta(seconds)


def gpus(value: float | None) -> str:
    """Never raises: a value that is not a finite number (NaN, inf, junk) reads "?"."""
    if value is None:
        return "-"  # the backend does not say (KFP runs, Ray driver jobs)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return "?"
    if not math.isfinite(number):
        return "?"  # int(nan) raises; a cell must not
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    # Fractions (0.5 GPU, 1/7 of a MIG GPU, 12.75 shared): two significant digits, never 1e+02.
    return f"{number:.2g}" if abs(number) < 10 else f"{number:.1f}"


def count(value: int | None, none: str = "-") -> str:
    """Never raises: NaN and inf read "?", as does an int too long to print."""
    if value is None:
        return none
    if isinstance(value, float) and not math.isfinite(value):
        return "?"
    try:
        return str(value)
    except ValueError:  # past Python's 4,300-digit limit for int -> str
        return "?"


def timestamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


# What marks cut text, separates the header's parts and marks a source's state. A terminal whose
# locale is not UTF-8 gets ASCII (see `use_ascii`).
ELLIPSIS = "…"
SEPARATOR = "·"
LIVE, FAILED, CONNECTING = "●", "✖", "○"
DOWN, UP, INFINITY, DOT, MARK = "▼", "▲", "∞", "·", "✓ "


def unicode_locale(env: Mapping[str, str]) -> bool:
    """Does the user's locale say UTF-8? The first of LC_ALL, LC_CTYPE, LANG that is set decides,
    as for every C program; none set is the C locale. Python itself coerces the C locale to
    C.UTF-8 (PEP 538) and says so in LC_CTYPE: that is not the terminal's choice, so it is skipped."""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(var) or ""
        if var == "LC_CTYPE" and value == "C.UTF-8" and not env.get("LC_ALL") and env.get("LANG") in (None, "", "C", "POSIX"):
            continue  # Python's own coercion
        if value:
            return "utf-8" in value.lower() or "utf8" in value.lower()
    return False


def use_ascii(on: bool) -> None:
    """Cut text with "..." instead of "…" (a terminal that cannot draw UTF-8)."""
    global ELLIPSIS, SEPARATOR, LIVE, FAILED, CONNECTING, DOWN, UP, INFINITY, DOT, MARK
    ELLIPSIS, SEPARATOR = ("...", "|") if on else ("…", "·")
    LIVE, FAILED, CONNECTING = ("*", "x", "o") if on else ("●", "✖", "○")
    DOWN, UP, INFINITY, DOT, MARK = ("v", "^", "inf", ".", "* ") if on else ("▼", "▲", "∞", "·", "✓ ")


# Whitespace that only lays text out; the rest of the control class is shown by `inert`.
_LAYOUT_SPACE = re.compile(r"(?:\r\n|[ \t\n])+")


def clip(text: str, width: int) -> str:
    """One line at most `width` characters, safe to draw or print (backend text is data).

    Runs of spaces, tabs and newlines read as one space (entrypoints carry them); every other
    control or format character is made visible first, so the cut counts what is drawn.
    """
    text = inert(_LAYOUT_SPACE.sub(" ", text).strip(" "))
    return text if len(text) <= width else text[: max(0, width - len(ELLIPSIS))] + ELLIPSIS


def clip_middle(text: str, width: int) -> str:
    """For ids, whose distinctive part is often the end (raysubmit_<random>). Inert, like `clip`."""
    text = inert(text)
    if len(text) <= width:
        return text
    if width < 5 + len(ELLIPSIS):
        return clip(text, width)
    head = (width - len(ELLIPSIS)) // 2
    tail = width - len(ELLIPSIS) - head
    return text[:head] + ELLIPSIS + text[-tail:]


def skipped_note(skipped: int, reason: str | None, width: int = 80) -> str:
    """E.g. "3 items skipped (bad data: <reason>)": a source answered but some items were unreadable.

    Shared by the status line and the report so both say it the same way; the reason is clipped
    (it is the first bad item's, one line) and inert like any backend text.
    """
    noun = "item" if skipped == 1 else "items"
    why = f"bad data: {clip(reason, width)}" if reason else "bad data"
    return f"{skipped} {noun} skipped ({why})"
