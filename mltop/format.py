"""Short, stable text for cells: coarse ages ("5m", "2h"), GPU counts. Shared by the report and
the widgets so a number reads the same everywhere. No Textual here."""

from __future__ import annotations

from datetime import datetime

import humanize


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


def long_duration(seconds: float | None) -> str:
    """For sentences: "3 minutes", "2 hours"."""
    if seconds is None:
        return "unknown"
    return humanize.naturaldelta(seconds)


def gpus(value: float | None) -> str:
    if value is None:
        return "-"  # the backend does not say (KFP runs, Ray driver jobs)
    if value == int(value):
        return str(int(value))
    return f"{value:.2g}"


def count(value: int | None, none: str = "-") -> str:
    return none if value is None else str(value)


def timestamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())  # entrypoints carry newlines and runs of spaces
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def clip_middle(text: str, width: int) -> str:
    """For ids, whose distinctive part is often the end (raysubmit_<random>)."""
    if len(text) <= width:
        return text
    if width < 5:
        return clip(text, width)
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + text[-tail:]
