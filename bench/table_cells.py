"""What a frame costs when a few cells in view change (a WAIT/RUN tick, a node's GPU count).

    python bench/table_cells.py [TICKS]

A 1,000-row table, 160x48, headless: each tick changes one cell in each of three rows in view and
waits for the frame; prints the process CPU per tick (the frame included). A benchmark, not a
test: machines here are noisy, so compare trees back to back.
"""

from __future__ import annotations

import asyncio
import sys
import time

from textual.app import App, ComposeResult

from mltop.widgets.steady_table import SteadyDataTable


class _Bench(App):
    def compose(self) -> ComposeResult:
        yield SteadyDataTable()


async def run(ticks: int) -> None:
    app = _Bench()
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(SteadyDataTable)
        for column in "abcdefgh":
            table.add_column(column, key=column, width=14)
        for i in range(1000):
            table.add_row(*[f"{column}{i}" for column in "abcdefgh"], key=f"k{i}")
        await pilot.pause()
        await pilot.pause()
        began = time.process_time()
        for tick in range(ticks):
            for row in (3, 17, 30):
                table.update_cell(f"k{row}", "f", f"t{tick}")
            await pilot.pause()
        print(f"3 cells changed a tick, then a frame: {(time.process_time() - began) / ticks * 1000:.2f} ms a tick")


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 150))
