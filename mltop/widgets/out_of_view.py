"""Rows out of view are drawn when they come into view, not on every change. Display only.

A keyed table (keyed_table.py) builds a row's cells again whenever its record or its age on the
clock changes. At 5,000 nodes, with 1,000 rows in the jobs panel and 20 in view, building cells
for rows nobody sees was most of applying a view. A row already drawn and out of view whose record
changed only remembers what to draw (`_deferred`: key -> (record, row token)); its record and
token are current, only its cells are behind. It is drawn when it comes into view: after a sync
(removals, additions, a sort, the cursor moved), a scroll, a resize, or a read of its cells.
`_in_view` keeps a margin of rows above and below the window.
"""

from __future__ import annotations

from typing import Any

from textual.widgets.data_table import RowKey


class OutOfView:
    """Mixed into KeyedTable, before the DataTable; KeyedTable supplies `_redraw_row` and `_deferred`."""

    VIEW_MARGIN = 10
    _deferred: dict[str, tuple[Any, object]]

    # The rows in view and the margin (first, last), while a sync's rows are worked through: the
    # scroll offset and the widget's size are read once, not once per row (reading them is slow in
    # Textual, ~10 us a row: most of what deferring 250 changed rows a poll cost at 5,000 nodes).
    _window: tuple[int, int] | None = None

    def _view_window(self) -> tuple[int, int]:
        top = int(self.scroll_y) - self.VIEW_MARGIN  # type: ignore[attr-defined]
        return top, top + self.size.height + 2 * self.VIEW_MARGIN  # type: ignore[attr-defined]

    def _in_view(self, key: str) -> bool:
        return self._row_in(key, self._window or self._view_window())

    def _catch_up(self, keys: Any = None) -> None:
        """Draw the deferred rows now in view (or `keys`, wherever they are)."""
        if not self._deferred:
            return
        wanted = list(self._deferred) if keys is None else [k for k in keys if k in self._deferred]
        window = None if keys is not None else self._view_window()
        for key in wanted:
            if window is None or self._row_in(key, window):
                record, token = self._deferred.pop(key)
                self._redraw_row(key, record, token)  # type: ignore[attr-defined]

    def _row_in(self, key: str, window: tuple[int, int]) -> bool:
        index = self._row_locations.get(RowKey(key))  # type: ignore[attr-defined]
        return index is None or window[0] <= index <= window[1]  # None: not placed yet, draw it

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)  # type: ignore[misc]
        self._catch_up()

    def on_resize(self) -> None:
        self._catch_up()

    # What reads cells reads them drawn (tests, and anything that ever copies a row's text).
    def get_row(self, row_key: Any) -> list[Any]:
        self._catch_up([row_key.value if isinstance(row_key, RowKey) else row_key])
        return super().get_row(row_key)  # type: ignore[misc]

    def get_row_at(self, row_index: int) -> list[Any]:
        if 0 <= row_index < self.row_count:  # type: ignore[attr-defined]
            self._catch_up([self._row_locations.get_key(row_index).value])  # type: ignore[attr-defined]
        return super().get_row_at(row_index)  # type: ignore[misc]

    def get_cell(self, row_key: Any, column_key: Any) -> Any:
        self._catch_up([row_key.value if isinstance(row_key, RowKey) else row_key])
        return super().get_cell(row_key, column_key)  # type: ignore[misc]
