"""Rows out of view are drawn when they come into view (mltop/widgets/out_of_view.py): a changed
row far below the window has its record at once but its cells only when it is scrolled to, and
what is read or drawn is always what a table synced from scratch shows."""

from __future__ import annotations

from dataclasses import replace

from textual.app import App
from textual.widgets import DataTable

from mltop.model import JobState
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import FIXED_NOW
from tests.factories import job


class Host(App):
    def compose(self):
        yield JobsTable(id="jobs")


def drawn(table: JobsTable, key: str) -> tuple[str, ...]:
    return tuple(str(c) for c in DataTable.get_row(table, key))  # the cells as they are, not caught up


async def test_a_changed_row_out_of_view_is_drawn_when_it_comes_into_view():
    jobs = [job(f"job-{i:03}", JobState.PENDING, submitted_min_ago=i + 1) for i in range(100)]
    app, fresh_app = Host(), Host()
    async with app.run_test(size=(150, 12)) as pilot, fresh_app.run_test(size=(150, 12)):
        table, fresh = app.query_one(JobsTable), fresh_app.query_one(JobsTable)
        for t in (table, fresh):
            t.relayout(148)
        table.sync(jobs, FIXED_NOW)
        await pilot.pause()
        far = jobs[80].key
        assert not table._deferred and "job-080" in " ".join(drawn(table, far))
        changed = [replace(j, name="renamed-80") if j.key == far else j for j in jobs]
        near = changed[0] = replace(changed[0], name="renamed-0")  # in view: drawn at once
        table.sync(changed, FIXED_NOW)
        assert table.records[far].name == "renamed-80"  # the record is current ...
        assert far in table._deferred and "renamed-80" not in " ".join(drawn(table, far))  # ... its cells wait
        assert near.key not in table._deferred and "renamed-0" in " ".join(drawn(table, near.key))
        table.move_cursor(row=80, animate=False)  # scrolled to
        await pilot.pause()
        assert far not in table._deferred and "renamed-80" in " ".join(drawn(table, far))
        fresh.sync(changed, FIXED_NOW)
        keys = [j.key for j in changed]
        assert [table.get_row(k) for k in keys] == [fresh.get_row(k) for k in keys]  # reads catch up


async def test_a_read_of_a_deferred_row_reads_it_drawn():
    jobs = [job(f"job-{i:03}", JobState.PENDING, submitted_min_ago=i + 1) for i in range(60)]
    app = Host()
    async with app.run_test(size=(150, 12)) as pilot:
        table = app.query_one(JobsTable)
        table.relayout(148)
        table.sync(jobs, FIXED_NOW)
        await pilot.pause()
        changed = [replace(j, name="renamed") if j is jobs[50] else j for j in jobs]
        table.sync(changed, FIXED_NOW)
        assert jobs[50].key in table._deferred
        assert "renamed" in " ".join(str(c) for c in table.get_row_at(50))
        assert jobs[50].key not in table._deferred
