"""SteadyDataTable: each shortcut it takes (many rows removed at once, rows put in order by key,
only what changed on screen repainted, renders kept by row key) leaves the table exactly as
Textual's own DataTable leaves it (rows, their order, the cursor, what is drawn). It relies on
DataTable internals of the pinned Textual: an upgrade that changes them fails here."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from textual.app import App
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from mltop.widgets.steady_table import SteadyDataTable


class Host(App):
    CSS = "#plain, #steady { height: 18; }"  # the same size: their screens compare line by line

    def compose(self):
        yield DataTable(id="plain")
        yield SteadyDataTable(id="steady")


def fill(table: DataTable, rows: int) -> None:
    table.add_column("name", key="name")
    table.add_column("value", key="value")
    for i in range(rows):
        table.add_row(f"row-{i}", str(i * i), key=f"k{i}")


def state(table: DataTable) -> tuple:
    order = [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]
    return (order, table.row_count, table.cursor_coordinate, [table.get_row_index(k) for k in order],
            [tuple(table.get_row(k)) for k in order])


@pytest.mark.parametrize("gone", [
    [f"k{i}" for i in range(0, 60, 3)],  # spread out, before and after the cursor
    [f"k{i}" for i in range(40, 60)],  # the tail, the cursor's row among them
    ["k7"],  # one row takes remove_row's own path
    [],
])
async def test_removing_many_rows_at_once_reads_as_removing_them_one_by_one(gone):
    app = Host()
    async with app.run_test(size=(80, 30)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", SteadyDataTable)
        for table in (plain, steady):
            fill(table, 60)
            table.move_cursor(row=45)
        for key in gone:
            plain.remove_row(key)
        steady.remove_rows(gone)
        await pilot.pause()
        assert state(steady) == state(plain)
        steady.add_row("new", "1", key="new")  # the index stays usable: rows go on being added after
        plain.add_row("new", "1", key="new")
        assert state(steady) == state(plain)


async def test_removing_a_row_that_is_not_there_removes_nothing():
    app = Host()
    async with app.run_test(size=(80, 30)):
        steady = app.query_one("#steady", SteadyDataTable)
        fill(steady, 5)
        with pytest.raises(RowDoesNotExist):
            steady.remove_rows(["k1", "nope"])
        assert steady.row_count == 5


def drawn(table: DataTable) -> list[list[tuple[str, object, object]]]:
    """The visible lines as text and the row/column each segment says it is (what a click reads)."""
    from textual.geometry import Region

    lines = table.render_lines(Region(0, 0, table.size.width, table.size.height))
    return [[(seg.text, *((seg.style.meta.get("row"), seg.style.meta.get("column")) if seg.style else (None, None)))
             for seg in line] for line in lines]


async def test_rows_that_move_are_drawn_as_textual_draws_them_with_their_new_place():
    app = Host()
    async with app.run_test(size=(80, 40)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", SteadyDataTable)
        steps = [
            lambda t: t.sort("name", key=lambda name: -int(str(name).split("-")[1])),  # every row moves
            lambda t: remove(t, "k30"),
            lambda t: remove(t, "k3", "k35"),
            lambda t: t.update_cell("k25", "value", "changed"),  # a visible row's cell
            lambda t: t.add_row("row-30", "999", key="k30"),  # a key seen (and drawn) before, as wide, other text
            lambda t: t.sort("name", key=lambda name: (name != "row-30", name)),  # ... brought into view
            lambda t: t.sort("name"),
            lambda t: t.move_cursor(row=5),
            lambda t: t.update_cell("k26", "name", "renamed"),  # one cell of a row, then the other
            lambda t: t.update_cell("k26", "value", "v2"),
            lambda t: t.update_cell(t.coordinate_to_cell_key((5, 0)).row_key, "value", "under the cursor"),
            lambda t: t.scroll_to(y=8, animate=False, immediate=True),  # a changed row's line, scrolled
            lambda t: t.update_cell(t.coordinate_to_cell_key((20, 0)).row_key, "value", "scrolled"),
            lambda t: t.update_cell(t.coordinate_to_cell_key((2, 0)).row_key, "value", "out of view"),
            lambda t: t.scroll_to(y=0, animate=False, immediate=True),
            # Moves out of view: the lines in view stay as drawn (the table is not repainted) and
            # still read as Textual's; then moves that reach the view.
            lambda t: remove(t, last_key(t)),  # below
            lambda t: t.sort("name", key=tail_reversed(t)),  # only rows below the view change places
            lambda t: t.add_row("row-50", "2500", key="k50"),  # appended below the view
            lambda t: t.scroll_to(y=5, animate=False, immediate=True),
            lambda t: remove(t, key_at(t, 1)),  # above
            lambda t: t.sort("name", key=tail_reversed(t, 6)),  # rows in view change places
            lambda t: t.scroll_to(y=0, animate=False, immediate=True),
        ]
        for table in (plain, steady):
            fill(table, 40)
        await pilot.pause()
        assert drawn(steady) == drawn(plain)
        for step in steps:
            await step_both(pilot, plain, steady, step)


def remove(table: DataTable, *keys: str) -> None:
    """Textual's own remove_row one row at a time on the plain table; remove_rows on the steady one."""
    if isinstance(table, SteadyDataTable):
        table.remove_rows(list(keys))
    else:
        for key in keys:
            table.remove_row(key)


@asynccontextmanager
async def filled_pair(rows: int):
    """Textual's table and the steady one, side by side, `rows` rows each, drawn once."""
    app = Host()
    async with app.run_test(size=(80, 40)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", SteadyDataTable)
        for table in (plain, steady):
            fill(table, rows)
        await pilot.pause()
        yield pilot, plain, steady


async def step_both(pilot, plain: DataTable, steady: SteadyDataTable, step) -> None:
    """The same step on both tables, a frame, and the same screen."""
    step(plain)
    step(steady)
    await pilot.pause()
    assert drawn(steady) == drawn(plain)


def key_at(table: DataTable, index: int) -> str:
    return table.coordinate_to_cell_key((index, 0)).row_key.value


def last_key(table: DataTable) -> str:
    return key_at(table, table.row_count - 1)


def tail_reversed(table: DataTable, start: int = 25):
    """A sort key that keeps the first `start` rows where they are and reverses the rest."""
    names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
    rank = {name: (i if i < start else start + len(names) - i) for i, name in enumerate(names)}
    return lambda name: rank[str(name)]


async def test_moves_out_of_view_leave_the_lines_in_view_as_they_were_drawn():
    """A row removed, reordered or added below the view repaints nothing (Textual repaints the
    whole table); the screen still reads as Textual's."""
    async with filled_pair(40) as (pilot, plain, steady):
        for step in (lambda t: remove(t, "k39"),
                     lambda t: t.sort("name", key=tail_reversed(t)),
                     lambda t: t.add_row("row-50", "2500", key="k50")):
            drawn(steady)
            step(plain)
            step(steady)
            assert steady._styles_cache._cache and not steady._styles_cache._dirty_lines  # nothing to repaint
            await pilot.pause()
            assert drawn(steady) == drawn(plain)


async def test_a_short_table_draws_rows_added_and_removed_in_view():
    async with filled_pair(5) as (pilot, plain, steady):
        assert drawn(steady) == drawn(plain)
        for step in (lambda t: t.add_row("row-5", "25", key="k5"), lambda t: remove(t, "k5"),
                     lambda t: remove(t, "k4"), lambda t: t.sort("name", reverse=True)):
            await step_both(pilot, plain, steady, step)


def cached(table: SteadyDataTable) -> dict[str, list]:
    from mltop.widgets.steady_table import UPDATE_COUNT_AT

    return {name: list(getattr(table, name).keys()) for name in UPDATE_COUNT_AT}


async def test_renders_no_frame_can_use_again_are_let_go_and_the_screen_stays_the_same():
    """Each add, removal or sort moves the update count every Textual render is keyed on: what was
    cached before it is dropped at the next frame (not left to fill the caches), and so are the
    renders of removed rows. The screen is what Textual's own table draws throughout."""
    from mltop.widgets.steady_table import UPDATE_COUNT_AT

    app = Host()
    async with app.run_test(size=(80, 40)) as pilot:
        plain, steady = app.query_one("#plain", DataTable), app.query_one("#steady", SteadyDataTable)
        for table in (plain, steady):
            fill(table, 40)
        await pilot.pause()
        drawn(steady)
        for name, at in UPDATE_COUNT_AT.items():  # the count sits where the sweep looks for it
            keys = cached(steady)[name]
            assert keys and all(k[at] == steady._update_count for k in keys), name
        steps = [
            lambda t: remove(t, "k3"),
            lambda t: remove(t, "k4", "k5"),
            lambda t: t.add_row("row-40", "1600", key="k40"),
            lambda t: t.sort("name", reverse=True),
        ]
        for step in steps:
            await step_both(pilot, plain, steady, step)
            for name, at in UPDATE_COUNT_AT.items():
                assert all(k[at] == steady._update_count for k in cached(steady)[name]), name
        gone = {"k3", "k4", "k5"}
        assert not [k for k in steady._placed.keys() if k[0].value in gone]
        assert not [k for k in steady._cell_render_cache.keys() if k[0].value in gone]


async def test_rows_put_in_order_read_as_textual_s_sort_by_rank():
    """put_in_order re-indexes only the span of rows out of place; the table reads as Textual's
    own sort with the same order for a key (rows, indexes, cursor, what is drawn)."""
    import random

    rng = random.Random(5)
    async with filled_pair(40) as (pilot, plain, steady):
        for table in (plain, steady):
            table.move_cursor(row=4)
        await pilot.pause()
        for _ in range(25):
            order = [key_at(steady, i) for i in range(steady.row_count)]
            for _ in range(rng.choice((0, 1, 3))):  # a few rows move, anywhere (or none)
                order.insert(rng.randrange(len(order)), order.pop(rng.randrange(len(order))))
            rank = {key: i for i, key in enumerate(order)}
            names = {str(plain.get_row(key)[0]): key for key in order}
            plain.sort("name", key=lambda name: rank[names[str(name)]])
            steady.put_in_order(order)
            await pilot.pause()
            assert state(steady) == state(plain) and drawn(steady) == drawn(plain)
            assert [steady.get_row_index(key) for key in order] == list(range(len(order)))


async def test_an_order_that_is_not_every_row_once_changes_nothing():
    app = Host()
    async with app.run_test(size=(80, 40)):
        steady = app.query_one("#steady", SteadyDataTable)
        fill(steady, 5)
        before = state(steady)
        for wrong in (["k1", "k0", "k2", "k3"], ["k1", "k0", "k2", "k3", "nope"], ["k1", "k1", "k2", "k3", "k4"]):
            with pytest.raises(ValueError):
                steady.put_in_order(wrong)
            assert state(steady) == before
