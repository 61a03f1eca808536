"""The widest value of each shared column over a table's rows, kept up to date row by row.

A table's shared columns (a job's NAME, its REASON) are as wide as their widest value. Taking the
maximum over every row's widths on every refresh was ~3 ms of a 940-row jobs table's sync at
5,000 nodes, though a poll changes a handful of rows. Instead each column counts how many rows need
each width: a row whose token is the one it was measured with is passed over, a changed row moves
its counts, a row gone takes its counts away, and a column's need is its largest counted width.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

Row = tuple[str, Any, object]  # (row key, record, its row token; None: measure it every time)


class ColumnNeeds:
    def __init__(self) -> None:
        self._rows: dict[str, tuple[object, Mapping[str, int]]] = {}  # row key -> (token, its needs)
        self._counts: dict[str, dict[int, int]] = {}  # column -> width -> rows that need it

    def update(self, rows: Iterable[Row], measure: Callable[[Any], Mapping[str, int]]) -> dict[str, int]:
        """The needs of exactly `rows` (each key once): column -> the widest value in it."""
        kept, shown = self._rows, set()
        for key, record, token in rows:
            shown.add(key)
            last = kept.get(key)
            if last is not None and token is not None and (last[0] is token or last[0] == token):
                continue
            needs = measure(record)
            if last is not None:
                self._count(last[1], -1)
            self._count(needs, 1)
            kept[key] = (token, needs)
        for key in kept.keys() - shown:
            self._count(kept.pop(key)[1], -1)
        return {column: max(counts) for column, counts in self._counts.items() if counts}

    def _count(self, needs: Mapping[str, int], step: int) -> None:
        for column, width in needs.items():
            counts = self._counts.setdefault(column, {})
            left = counts.get(width, 0) + step
            if left:
                counts[width] = left
            else:
                del counts[width]
