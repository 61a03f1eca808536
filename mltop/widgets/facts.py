"""A two-column label/value grid: how every dialog and details view lists a record's facts."""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.table import Table
from rich.text import Text

from mltop import format as fmt
from mltop.safe_text import inert


def facts_grid(rows: Iterable[tuple[str, str | Text]]) -> Table:
    """Values are backend text: a str is made inert (one line) and never parsed as markup; a
    `Text` is taken as given, for a caller that built it from inert text (several lines, styles)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in rows:
        grid.add_row(Text(inert(label)), value if isinstance(value, Text) else Text(inert(value)))
    return grid


def boxed_table(title: str, **options: object) -> Table:
    """A titled table for a details view, drawn with ASCII borders when the terminal cannot draw
    UTF-8 (the same switch as the ellipsis: `fmt.use_ascii`)."""
    ascii_box = fmt.ELLIPSIS == "..."
    return Table(title=title, title_justify="left", box=box.ASCII if ascii_box else box.HEAVY_HEAD, **options)
