"""A DataTable whose rows are records with a stable key, updated by keyed diff. Display only.

Facts this relies on (house style, measured on Textual 8.2): a keyed diff with `update_cell` on
changed cells only is far cheaper than clear-and-refill and keeps cursor and scroll; columns have
fixed widths (no `update_width` in the refresh path); the cursor is positional, so it is re-pinned
by row key after every diff; user text is wrapped in `Text` so `[` in a name is not markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from mltop import format as fmt
from mltop.query import Query, Value, parse, sort_value
from mltop.widgets.column_needs import ColumnNeeds
from mltop.widgets.column_widths import share
from mltop.widgets.out_of_view import OutOfView
from mltop.widgets.steady_table import SteadyDataTable

R = TypeVar("R")


def sort_bindings(sort_keys: dict[str, tuple[str, bool]]) -> list[Binding]:
    """shift+letter sorts by a column, as in k9s (letter -> (column key, numbers: biggest first))."""
    return [Binding(letter, f"sort('{column}')", f"Sort by {column}", show=False) for letter, column in
            ((letter, column) for letter, (column, _) in sort_keys.items())]


class KeyedTable(OutOfView, SteadyDataTable, Generic[R]):
    """Subclasses give COLUMNS ((key, title, width); width 0 = takes the room left), `widths()`
    for a table width, and `cells()` for a record."""

    COLUMNS: tuple[tuple[str, str, int], ...] = ()
    BINDINGS = [
        Binding("enter", "select_cursor", "Details", id="panel.details"),
        Binding("j,down", "cursor_down", "Down", show=False, id="cursor.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="cursor.up"),
        Binding("home,g", "first_row", "First row", show=False, id="cursor.first"),
        Binding("end,G", "last_row", "Last row", show=False, id="cursor.last"),
        Binding("left", "app.focus_previous", "Previous panel", show=False, id="panel.previous"),
        Binding("right", "app.focus_next", "Next panel", show=False, id="panel.next"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        self._needs: dict[str, int] = {}  # the widest value of each shared column now shown
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.records: dict[str, R] = {}
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._tokens: dict[str, object] = {}  # row key -> its row_token when its cells were built
        self._deferred: dict[str, tuple[R, object]] = {}  # rows out of view, cells behind (out_of_view.py)
        self._column_needs = ColumnNeeds()  # the shared columns' widest values (column_needs.py)
        self._order: list[str] = []
        self.total_width = 80
        self._widths: dict[str, int] = self.widths(80)
        # Until the user moves the cursor, it stays on the first row: rows arrive source by
        # source, and the one that came first is not the one to start on.
        self.touched = False
        self._syncing = False
        self._relaying = False
        self.query: Query = Query("")  # the `/` filter of this panel
        self.sort_by: str | None = None  # a column key; None: mltop's own order
        self.sort_descending = False
        self.total_rows = 0  # before the filter
        self._given: list[R] = []  # the records of the last sync, before filter and sort
        self.matched = 0  # of those, how many the filter lets through (the rows shown are the first ROW_LIMIT)
        self._pinned: set[str] = set()  # keys shown even past ROW_LIMIT (`_capped`)

    # -- for subclasses ---------------------------------------------------------------------

    # Columns that share the room the fixed ones leave, by what their values need: key ->
    # (smallest, largest width worth competing for). The first one takes what nobody else needs.
    SHARED: dict[str, tuple[int, int]] = {}
    # The most rows a table holds. Every row costs memory and time on each refresh, and nobody
    # scrolls through 5,000 nodes: the order puts what matters first (free GPUs, waiting jobs), the
    # title says how many more there are, and the filter reaches all of them.
    ROW_LIMIT = 1000

    def widths(self, total: int) -> dict[str, int]:
        shown = self.shown_keys(total)
        # A width of 0 without a SHARED entry: that column takes whatever room is left.
        spans = self.SHARED or {key: (8, 8) for key, _, width in self.COLUMNS if not width}
        fixed = {key: width for key, _, width in self.COLUMNS if key not in spans and key in shown}
        shared = {key: span for key, span in spans.items() if key in shown}
        widths = {**fixed, **share(total - sum(fixed.values()) - 2 * (len(fixed) + len(shared)) - 1,
                                   shared, self._needs)}  # cell padding and the scrollbar
        return {key: widths[key] for key, _, _ in self.COLUMNS if key in widths}

    def shown_keys(self, total: int) -> set[str]:
        """The columns shown at this width (all, unless a subclass drops some when narrow)."""
        return {key for key, _, _ in self.COLUMNS}

    def needs(self, record: R) -> dict[str, int]:
        """How wide each shared column's value of `record` is (subclasses with SHARED say)."""
        return {}

    def key_of(self, record: R) -> str:
        return record.key  # type: ignore[attr-defined]

    # shift+letter -> (column key, descending first); the subclass adds `sort_bindings(SORT_KEYS)`.
    SORT_KEYS: dict[str, tuple[str, bool]] = {}

    def fields(self, record: R) -> dict[str, Value]:
        """The record's fields for the `/` filter and sorting, by column key (mltop.query)."""
        return {}

    def cells(self, record: R, widths: dict[str, int]) -> tuple[Text, ...]:
        raise NotImplementedError

    def row_token(self, record: R) -> object:
        """Everything `cells` reads for this record, comparable; None: always rebuild its cells.
        A row whose token is the same as last time keeps its cells untouched: at thousands of
        rows, building them again on every tick is most of a refresh."""
        return None

    # -- filter and sort ------------------------------------------------------------------------

    def set_filter(self, text: str) -> None:
        self.query = parse(text, set(self.fields(self._given[0]).keys()) if self._given else frozenset())
        self.resync()

    def action_sort(self, column: str) -> None:
        """First press: by that column (numbers biggest first); again: reversed; a third time:
        back to mltop's own order. Ties keep mltop's order, so rows do not jump on refresh."""
        biggest_first = next((d for c, d in self.SORT_KEYS.values() if c == column), False)
        if self.sort_by != column:
            self.sort_by, self.sort_descending = column, biggest_first
        elif self.sort_descending == biggest_first:
            self.sort_descending = not biggest_first
        else:
            self.sort_by = None
        self.touched = True
        self.resync()
        self.post_message(self.Arranged(self))

    def resync(self) -> None:
        KeyedTable.sync(self, self._given, keep=self.selected_key)

    def arrange(self, records: Sequence[R]) -> list[R]:
        """The rows to show: the filter's, in the chosen order."""
        self._given, self.total_rows = list(records), len(records)
        if not self.query and self.sort_by is None:
            self.matched = len(records)
            return self._capped(list(records))
        rows = [(r, self.fields(r)) for r in records]
        rows = [(r, f) for r, f in rows if self.query.matches(f)]
        if self.sort_by is not None:
            column = self.sort_by
            known = [(r, f) for r, f in rows if sort_value(f.get(column))[0] < 2]
            known.sort(key=lambda rf: sort_value(rf[1].get(column)), reverse=self.sort_descending)
            rows = known + [(r, f) for r, f in rows if sort_value(f.get(column))[0] == 2]  # unknown last
        self.matched = len(rows)
        return self._capped([r for r, _ in rows])

    def _capped(self, rows: list[R]) -> list[R]:
        """The first ROW_LIMIT rows, and after them any pinned row past the limit: a record gone to
        from elsewhere (`select_key`) or marked for an action stays a row, whatever its place."""
        if len(rows) <= self.ROW_LIMIT:
            return rows
        pinned = self.pinned()
        if not pinned:  # (walking 1,600 warnings past the limit for nothing was a tenth of a sync)
            return rows[:self.ROW_LIMIT]
        return rows[:self.ROW_LIMIT] + [r for r in rows[self.ROW_LIMIT:] if self.key_of(r) in pinned]

    def pinned(self) -> set[str]:
        return self._pinned

    def describe(self) -> str:
        """For the panel's title: the filter and the sort in force."""
        parts = []
        if self.query.text:
            notes = f"; {'; '.join(self.query.notes)}" if self.query.notes else ""
            parts.append(f"[filter: {self.query.text}, {self.matched} of {self.total_rows}{notes}]")
        if self.matched > self.row_count:
            parts.append(f"[first {self.row_count:,} of {self.matched:,} shown: / narrows]")
        if self.sort_by is not None:
            title = next((t for k, t, _ in self.COLUMNS if k == self.sort_by), self.sort_by)
            parts.append(f"[sort: {title} {fmt.DOWN if self.sort_descending else fmt.UP}]")
        return ("  " + " ".join(parts)) if parts else ""

    class Arranged(Message):
        """The user changed the filter or sort: the panel's title says so."""

        def __init__(self, table: KeyedTable[Any]) -> None:
            super().__init__()
            self.table = table

    # -- moving between panels --------------------------------------------------------------

    def on_key(self) -> None:
        self.touched = True  # any key in the table: the user is driving the cursor now

    def on_click(self) -> None:
        self.touched = True

    def move_cursor(self, *args: Any, **kwargs: Any) -> None:
        if not self._syncing:
            self.touched = True  # moved on purpose (a key, a jump to a warning's target)
        super().move_cursor(*args, **kwargs)

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0 and self._neighbour(-1):
            return
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        if self.cursor_row >= self.row_count - 1 and self._neighbour(+1):
            return
        super().action_cursor_down()

    def _neighbour(self, step: int) -> bool:
        """Past the first or last row, the arrow moves to the panel above or below (no wrap)."""
        tables = [w for w in self.screen.focus_chain if isinstance(w, KeyedTable)]
        index = tables.index(self) + step if self in tables else -1
        if 0 <= index < len(tables):
            tables[index].focus()
            return True
        return False

    # -- layout -----------------------------------------------------------------------------

    @property
    def columns_shown(self) -> tuple[tuple[str, str, int], ...]:
        return tuple(c for c in self.COLUMNS if c[0] in self._widths)

    def relayout(self, width: int) -> None:
        """Size the columns for a table `width` cells wide (at mount, on resize, and when what the
        columns must hold changes their widths)."""
        self.total_width = width
        if self.columns and self.widths(width) == self._widths:
            return
        records = [self.records[k] for k in self._order]
        selected = self.selected_key
        self.clear(columns=True)
        self.records, self._cells, self._order, self._tokens, self._deferred = {}, {}, [], {}, {}
        self._widths = self.widths(width)
        for key, title, _ in self.columns_shown:
            self.add_column(title, width=self._widths[key], key=key)
        if records:
            # The rows as they were, in the new columns; their needs must not re-decide the widths
            # (the caller is about to sync the new rows, which did).
            self._relaying = True
            try:
                KeyedTable.sync(self, records, keep=selected)
            finally:
                self._relaying = False

    # -- selection --------------------------------------------------------------------------

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value

    @property
    def selected(self) -> R | None:
        key = self.selected_key
        return self.records.get(key) if key else None

    def select_key(self, key: str) -> bool:
        if key not in self.records:  # past the row limit, maybe: pinned, it becomes a row
            if not any(self.key_of(r) == key for r in self._given):
                return False
            self._pinned = {key}
            self.resync()
            if key not in self.records:
                return False  # the filter hides it
        self.touched = True
        self.move_cursor(row=self.get_row_index(key), animate=False)
        return True

    # -- the diff ---------------------------------------------------------------------------

    def sync(self, records: Sequence[R], keep: str | None = None, pin: bool = True) -> None:
        """Show exactly `records`, in this order, changing only what changed.

        The cursor stays on the same record (`pin`), or goes back to the first row.
        """
        if not self.columns:
            self.relayout(self.size.width or 80)
        if not self._relaying:
            records = self.arrange(records)
        # Each row's token, worked out once a sync (the widths and the diff both ask for it).
        tokens = [self.row_token(record) for record in records]
        if self.SHARED and not self._relaying:
            key_of = self.key_of
            needs = self._column_needs.update(((key_of(r), r, t) for r, t in zip(records, tokens)), self.needs)
            if needs != self._needs:
                self._needs = needs
                self.relayout(self.total_width)  # rebuilt only when the shared widths change
        pin = pin and self.touched
        selected = keep or (self.selected_key if pin else None)
        self._syncing = True
        try:
            self._apply(records, tokens, selected, pin)
        finally:
            self._syncing = False

    def _redraw_row(self, key: str, record: R, token: object, defer: bool = False) -> bool:
        """Build the row's cells and update those that changed, or add the row (then True).
        `defer`: a row already drawn and out of view is drawn when it comes into view (out_of_view.py)."""
        self._tokens[key], self.records[key] = token, record
        if defer and key in self._cells and not self._in_view(key):
            self._deferred[key] = (record, token)
            return False
        self._deferred.pop(key, None)
        cells = self.cells(record, self._widths)
        old = self._cells.get(key)
        if old is None:
            self.add_row(*cells, key=key)
        else:
            for (col_key, _, _), new, before in zip(self.columns_shown, cells, old):
                if new != before or new.style != before.style:
                    self.update_cell(key, col_key, new)
        self._cells[key] = tuple(cells)
        return old is None

    def _apply(self, records: Sequence[R], tokens: Sequence[object], selected: str | None, pin: bool) -> None:
        old_index = self.cursor_row
        wanted = [self.key_of(r) for r in records]
        wanted_set = set(wanted)
        # The rows' order after the removals and additions below (add_row appends), without asking
        # the DataTable row by row.
        order = [k for k in self._order if k in wanted_set]
        with self.app.batch_update():
            gone = [k for k in self._order if k not in wanted_set]
            self.remove_rows(gone)
            for key in gone:
                del self._cells[key]
                self._tokens.pop(key, None)
                self._deferred.pop(key, None)
                del self.records[key]
            self._window = self._view_window()  # adding rows at the end moves neither (out_of_view.py)
            try:
                for key, record, token in zip(wanted, records, tokens):
                    if token is not None and key in self._cells and self._tokens.get(key) == token:
                        self.records[key] = record
                        continue
                    if self._redraw_row(key, record, token, defer=True):
                        order.append(key)
            finally:
                self._window = None
            if wanted != order:
                self.put_in_order(wanted)
            self._order = wanted
            if selected in wanted_set:
                self.move_cursor(row=self.get_row_index(selected), animate=False)
            elif wanted:
                row = min(max(old_index, 0), len(wanted) - 1) if pin else 0
                self.move_cursor(row=row, animate=False)
            self._catch_up()  # rows the removals, the sort or the cursor brought into view

