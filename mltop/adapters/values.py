"""Total readers for backend values: a bad value becomes None (unknown), never an exception.

Backends send numbers as strings, `"NaN"`, `Infinity`, negative counts and nested junk; a job
submitter controls some of it. Parsers read every number, time and enum through these helpers,
and an item that cannot be read at all is skipped and counted (`Skips`), so one bad item never
blanks a source and never crashes the screen.
"""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mltop.errors import first_line

MAX_COUNT = 1e9  # no cluster has a billion GPUs; larger is junk, not a count


def number(value: Any, *, minimum: float | None = 0.0, maximum: float = MAX_COUNT) -> float | None:
    """A finite float within [minimum, maximum], from a number or a numeric string; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            result = float(value)
        except OverflowError:  # an int past 1e308: junk, not a count
            return None
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(result) or result > maximum or (minimum is not None and result < minimum):
        return None
    return result


def integer(value: Any, *, minimum: int | None = 0, maximum: float = MAX_COUNT) -> int | None:
    """A whole number (an integral float or numeric string counts), else None."""
    result = number(value, minimum=minimum, maximum=maximum)
    if result is None or result != int(result):
        return None
    return int(result)


def text(value: Any) -> str | None:
    """A string as sent; numbers are turned into text; anything else (dicts, lists) is None."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def epoch_ms(value: Any) -> datetime | None:
    """Milliseconds since the epoch (Ray's times); 0 and junk are None."""
    ms = number(value, minimum=1, maximum=4102444800000)  # up to the year 2100
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 time (Kubernetes, KFP) as an aware UTC datetime; junk is None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 with an offset falls off the calendar
        return None


def mapping(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one when the backend sent something else."""
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    """A JSON array, or an empty one when the backend sent something else."""
    return value if isinstance(value, list) else []


@dataclass
class Skips:
    """Items left out of one poll because they could not be read, and the first reason why."""

    count: int = 0
    reason: str | None = field(default=None)

    def add(self, reason: str) -> None:
        self.count += 1
        if self.reason is None:
            self.reason = first_line(reason, 120)


_gc_lock = threading.Lock()
_gc_pausers = 0  # how many gc_paused blocks are running now, in any thread
_gc_was_on = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection while a large answer is turned into objects: the collector would run
    every few hundred allocations and scan them all again (30% of decoding Ray's 8 MiB job list).
    Collection resumes, and catches up, when the last block running in any thread ends (a count,
    so two sources decoding at once never leave it off)."""
    global _gc_pausers, _gc_was_on
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_on = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_on:
                gc.enable()
