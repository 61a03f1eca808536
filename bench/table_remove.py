"""How long removing one or two rows from a 1,000-row table takes (SteadyDataTable.remove_rows).

    python bench/table_remove.py [ROWS]

A panel at size loses a row or two on most polls (a pod starts, a warning clears). Textual's own
remove_row re-indexes every row through its two-way dict and repaints the hovered cell by listing
every row; this times mltop's path inside a headless app. A benchmark, not a test: read trends.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from textual.app import App, ComposeResult

from mltop.widgets.steady_table import SteadyDataTable


class _Bench(App):
    def compose(self) -> ComposeResult:
        yield SteadyDataTable()


async def run(rows: int) -> None:
    app = _Bench()
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(SteadyDataTable)
        for column in "abcdef":
            table.add_column(column, key=column, width=8)
        for i in range(rows):
            table.add_row(*[str(i)] * 6, key=f"k{i}")
        await pilot.pause()
        for size in (1, 2):
            times = []
            start = rows // 10 + (size - 1) * rows // 3  # rows the first round left in place
            for i in range(start, start + 100 * size, size):
                keys = [f"k{i + j}" for j in range(size)]
                began = time.perf_counter()
                table.remove_rows(keys)
                times.append(time.perf_counter() - began)
            print(f"{rows} rows, remove {size}: median {statistics.median(times) * 1000:.3f} ms")


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
