"""A DataTable that redraws what changed and nothing else. Display only.

Three measured costs of Textual's DataTable (8.2.8, pinned in pyproject.toml), at the sizes mltop
shows, and what this class does about each. It relies on DataTable internals of that version;
tests/test_idle_ticks.py checks the behaviour, so a Textual upgrade that changes them fails there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.widgets import DataTable
from textual._two_way_dict import TwoWayDict
from textual.widgets.data_table import CellKey, ColumnKey, RowDoesNotExist, RowKey


# Cached cell renders per table (Textual's, and `_placed` by row key). Textual keeps 10,000; a panel
# shows a few hundred cells (25 rows of 10 columns at 160x48). Renders that can no longer be drawn
# are dropped as they go dead (`_sweep_dead_renders`, `_forget_stale_rows`), so this caps what rows
# out of view keep: 2,000 is eight times what is in view at 160x48.
CELL_RENDERS = 2000

# Where Textual 8.2.8 puts the table's update count in the key of each render cache it keeps (see
# `_sweep_dead_renders`); tests/test_steady_table.py fails if a Textual upgrade moves them.
UPDATE_COUNT_AT = {"_cell_render_cache": 6, "_row_render_cache": 8, "_row_renderable_cache": 0, "_line_cache": 9}


class SteadyDataTable(DataTable):
    def __init__(self, **kwargs: Any) -> None:
        self._stale_rows: set[RowKey] = set()  # rows added or removed, their renders not yet forgotten
        self._stale_cells: set[tuple[RowKey, ColumnKey]] = set()  # changed cells, their renders not yet forgotten
        self._swept_count = 0  # the update count the render caches were last swept at
        self._placed: LRUCache[tuple, tuple[list, tuple[int, int]]] = LRUCache(CELL_RENDERS)  # see _render_cell
        super().__init__(**kwargs)
        self._cell_render_cache = LRUCache(CELL_RENDERS)

    # A table that gains or loses a row changes its virtual size, which Textual declares a layout
    # change, and remove_row asks for a layout itself: the whole screen was arranged again (29 ms at
    # 5,000 nodes, on every poll that removes a row). The table's own size is set by its panel, so
    # only the scrollbar changes: its thumb is updated here, and the screen is laid out again only
    # when a scrollbar appears or goes.
    virtual_size = Reactive(Size(0, 0), layout=False, repaint=False)  # (repaints: see watch_virtual_size)

    # And Textual repaints the whole table after each removal or sort (and, through the virtual
    # size, each row added): every line in view went through the styles cache and the line renders
    # again, three tables a poll at 5,000 nodes, though the rows that move are mostly far below the
    # view (nodes that gain a GPU, pods that join the end of the queue). Here a removal or a sort
    # repaints the table only if the rows on the lines in view are no longer the same rows, and an
    # added row repaints its own line if it lands in view.
    _moving = False  # a removal or sort is under way: its whole-table refresh waits for the verdict

    def _rows_in_view(self) -> list[Any] | None:
        """The row keys on the lines in view, top to bottom (None past the last row); None where
        rows are not all one line high (then every move repaints, as Textual does)."""
        if self._tall_rows or self.fixed_rows:
            return None
        top = int(self.scroll_y)
        shown = max(0, self.size.height - (self.header_height if self.show_header else 0)) + 1
        return list(map(self._row_locations.get_key, range(top, top + shown)))

    @contextmanager
    def _moving_rows(self) -> Iterator[None]:
        before = self._rows_in_view()
        self._moving = True
        try:
            yield
        finally:
            self._moving = False
        if before is None or self._rows_in_view() != before:
            super().refresh()

    def sort(self, *columns: Any, key: Any = None, reverse: bool = False) -> Any:
        with self._moving_rows():
            return super().sort(*columns, key=key, reverse=reverse)

    def put_in_order(self, keys: Sequence[str]) -> None:
        """The rows in exactly this order (every row's key, once): what `sort` with a rank for a key
        does, without Textual fetching and wrapping every row's cells to sort them."""
        locations = self._row_locations
        if len(keys) != len(locations) or len(set(keys)) != len(keys):
            raise ValueError("put_in_order takes the key of every row, once each")
        index_of, key_at = locations.get, locations.get_key
        first, last = 0, len(keys) - 1
        while first <= last and index_of(keys[first]) == first:  # (a str finds its RowKey: equal hashes)
            first += 1
        while last > first and index_of(keys[last]) == last:
            last -= 1
        if first > last:
            return  # already in this order
        # Only the span between the first and the last row out of place is re-indexed: a poll moves
        # a few rows of 1,000 (rebuilding the whole index made 1,000 RowKeys, ~3 ms a poll at 5,000 nodes).
        moved = [key_at(index_of(key)) for key in keys[first:last + 1]]
        if any(row_key is None for row_key in moved):  # (a key not in the table is never in place)
            raise ValueError("put_in_order takes the key of every row, once each")
        with self._moving_rows():  # (which repaints if the rows in view moved)
            for index, row_key in enumerate(moved, start=first):
                locations[row_key] = index
            self._update_count += 1

    def remove_row(self, row_key: Any) -> None:
        self.remove_rows([row_key])

    def remove_rows(self, row_keys: Any) -> None:
        """Remove many rows at once. Textual's remove_row re-indexes every row through the two-way
        dict's setter for each one it removes and re-checks the cursor (which lists every row):
        removing 65 of 1,000 warnings took ~270 ms a poll at 5,000 nodes (4 ms a row), and one row
        alone still cost a fifth of a jobs panel's sync. This re-indexes once, in one pass."""
        gone = {key if isinstance(key, RowKey) else RowKey(key) for key in row_keys}
        if not gone:
            return
        locations = self._row_locations
        for key in gone:
            if key not in locations:
                raise RowDoesNotExist(f"Row key {key!r} is not valid.")
        with self._moving_rows():
            self._remove(gone)

    def _remove(self, gone: set[RowKey]) -> None:
        locations = self._row_locations
        self._require_update_dimensions = True
        self.check_idle()
        by_index = locations.get_key
        kept = [key for key in map(by_index, range(len(locations))) if key not in gone]
        self._row_locations = TwoWayDict(dict(zip(kept, range(len(kept)))))
        self._stale_rows |= gone  # their cached renders are forgotten at the next frame
        for key in gone:
            for column_key in self._data.get(key):  # removed cells never ask for a dimension update
                self._updated_cells.discard(CellKey(key, column_key))
            del self.rows[key]
            del self._data[key]
        # The count moves first, so the row order Textual lists for the cursor's checks (keyed on it)
        # is the one the next frame draws from. The hover is not set to itself as Textual does: that
        # only repaints two cells (listing every row to find them); the rows in view decide.
        self._update_count += 1
        self.cursor_coordinate = self.cursor_coordinate
        # Textual asks for a layout here too: only the scrollbar may change (see virtual_size above).

    def refresh(self, *regions: Any, repaint: bool = True, layout: bool = False, recompose: bool = False) -> Any:
        if not regions and not recompose:
            row = self._changed_row
            if row is not None and not layout:
                self._changed_row = None
                self._repaint_row(row)  # update_cell's own whole-table refresh, narrowed (see update_cell)
                return self
            if self._moving:
                return self  # decided when the removal or sort is done (_moving_rows)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def watch_virtual_size(self, old: Size, new: Size) -> None:
        width, height = self.container_size
        if not self.container_size or (old.width > width, old.height > height) != (new.width > width, new.height > height):
            self.refresh(layout=True)
        else:
            self._scroll_update(new)  # the scrollbar's thumb; the lines in view were seen to above
            if old.width != new.width:
                self.refresh()

    # Textual's DataTable keys every cached render (cell, row, line) on one table-wide update count,
    # which update_cell bumps: one changed cell re-renders every visible cell on the next frame
    # (measured: 47 ms a frame for a 25-row jobs panel while jobs change, most of mltop's CPU). A
    # changed cell here puts the count back and forgets only its own render and its row's line
    # renders, by row key and row index; the line cache, cheap to rebuild from the row caches, is cleared. Adding,
    # removing and sorting rows still bump the count (the row order changes).
    #
    # And Textual repaints the whole table for one changed cell, so every line in view went through
    # the styles cache and the line renders again at the next frame; here only the changed row's
    # line is repainted (nothing at all for a row out of view), the rest of the table kept as drawn.
    def update_cell(self, row_key: Any, column_key: Any, value: Any, *, update_width: bool = False) -> None:
        count = self._update_count
        key = row_key if isinstance(row_key, RowKey) else RowKey(row_key)
        self._changed_row = None if update_width else key
        try:
            super().update_cell(row_key, column_key, value, update_width=update_width)
        finally:
            self._changed_row = None
        self._stale_cells.add((key, column_key if isinstance(column_key, ColumnKey) else ColumnKey(column_key)))
        if not update_width and self._update_count == count + 1:
            self._update_count = count

    _changed_row: RowKey | None = None  # the row of the cell update_cell is changing, while it does

    def _repaint_row(self, key: RowKey) -> None:
        index = self._row_locations.get(key)
        if index is None or self._tall_rows or self.fixed_rows:
            super().refresh()
            return
        width = sum(column.get_render_width(self) for column in self.columns.values()) + self._row_label_column_width
        y = index + (self.header_height if self.show_header else 0)  # rows are one line high
        self._refresh_region(Region(0, y, max(self.size.width, width), 1))

    # Adding, removing or sorting rows moves rows: Textual then renders every visible cell again, as
    # each cell's render carries its row index (mouse clicks read it). At 1,000 nodes changing, the
    # frames after such moves took 29 ms each, 1.6 a second, most of mltop's CPU. A cell's render is
    # kept here by row key, not index: a row that only moved gets its old render with the new index
    # stamped on (a few segments' styles), and only rows whose content changed are rendered again.
    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> Any:
        if row_index < 0 or column_index < 0 or self.fixed_rows or self.fixed_columns:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (self._row_locations.get_key(row_index), self._column_locations.get_key(column_index), base_style,
               width, cursor, hover, self._show_hover_cursor, self._pseudo_class_state)
        found = self._placed.get(key)
        if found is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        elif found[1] == (row_index, column_index):
            return found[0]
        else:
            place = Style.from_meta({"row": row_index, "column": column_index})
            lines = [[Segment(seg.text, seg.style + place if seg.style is not None else None, seg.control)
                      for seg in line] for line in found[0]]
        self._placed[key] = (lines, (row_index, column_index))
        return lines

    def add_row(self, *cells: Any, **kwargs: Any) -> Any:
        if kwargs.get("height", 1) != 1:
            self._tall_rows = True
        row_key = super().add_row(*cells, **kwargs)
        self._stale_rows.add(row_key)  # a key used before may come back with other cells
        top = int(self.scroll_y)  # appended out of view, only the scrollbar changes (watch_virtual_size)
        if self._tall_rows or self.fixed_rows or top <= self.row_count - 1 <= top + self.size.height:
            self._repaint_row(row_key)  # (the whole table where rows are not one line each)
        return row_key

    # Textual lists (row key, line in row) for every line of the table each time the update count
    # moves, walking every row in order: after each add, removal or sort, on the next idle and the
    # next frame (~3 ms per 2 s at 5,000 nodes changing). Rows one line high, as every mltop table
    # has, need no list: line y is the row at index y.
    _tall_rows = False

    @property
    def _y_offsets(self) -> Any:
        if self._tall_rows:
            return DataTable._y_offsets.fget(self)  # type: ignore[attr-defined]
        return _OneLineRows(self._row_locations, len(self.rows))

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._placed.clear()

    # Textual's DataTable.render_line asks for `rich_style` once for every line it draws, and that
    # property walks every ancestor's styles and blends their colours each time: 40 of 93 py-spy
    # samples of line drawing while 200,000 KFP runs change. Within one frame no style changes, so
    # it is worked out once per render_lines call and the same Style serves every line.
    _frame_style: Style | None = None

    @property
    def rich_style(self) -> Style:
        frame = self._frame_style
        return frame if frame is not None else DataTable.rich_style.fget(self)  # type: ignore[attr-defined]

    def render_lines(self, crop: Any) -> Any:
        if self._update_count != self._swept_count:
            self._sweep_dead_renders()
        if self._stale_rows or self._stale_cells:
            self._forget_stale_rows()
        self._frame_style = DataTable.rich_style.fget(self)  # type: ignore[attr-defined]
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = None

    # Textual's cell, row and line renders are keyed on the update count too, so each add, removal
    # or sort leaves every render cached before it unreachable, and an LRU cache only lets it go
    # when the cache is full. While a cluster changes, the four tables' caches filled for the whole
    # first hour (the warnings panel's cells ~35 a minute towards 2,000; RSS +0.4 MiB a minute, in
    # Python objects: sys.getallocatedblocks rose with it). Dropping them when the count moves
    # keeps what is cached to what can still be drawn: memory levels off within minutes.
    def _sweep_dead_renders(self) -> None:
        count = self._swept_count = self._update_count
        for name, at in UPDATE_COUNT_AT.items():
            _discard(getattr(self, name), lambda key: key[at] != count)

    def _forget_stale_rows(self) -> None:
        stale, self._stale_rows = self._stale_rows, set()
        cells, self._stale_cells = self._stale_cells, set()
        # A changed cell's own render goes; the other cells of its row keep theirs (a WAIT/RUN tick
        # re-rendered all eight cells of the row: most of the cell renders of a frame at 1,000 nodes).
        touched = stale | {row for row, _ in cells}
        indexes = {self._row_locations.get(key) for key in touched}
        for cache in (self._cell_render_cache, self._placed):
            _discard(cache, lambda key: key[0] in stale or (key[0], key[1]) in cells)
        for cache, at, gone in ((self._row_render_cache, 0, touched), (self._row_renderable_cache, 1, indexes)):
            _discard(cache, lambda key: key[at] in gone)
        self._line_cache.clear()


class _OneLineRows(Sequence):
    """Textual's `_y_offsets` for a table whose rows are all one line: (the row key at y, 0)."""

    def __init__(self, locations: TwoWayDict, count: int) -> None:
        self._locations, self._count = locations, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, y: Any) -> Any:
        if isinstance(y, slice):
            return [self[i] for i in range(*y.indices(self._count))]
        if y < 0:
            y += self._count
        if not 0 <= y < self._count:
            raise IndexError(y)
        return self._locations.get_key(y), 0

    def clear(self) -> None:
        """(DataTable.clear empties the list it was given; there is nothing here to empty.)"""


def _discard(cache: LRUCache, dead: Any) -> None:
    """Drop the entries of a Textual LRU cache whose key `dead` says can no longer be read."""
    for key in [k for k in cache.keys() if dead(k)]:
        cache.discard(key)
