"""The clock's tick on an unchanged screen: cheap, and never wrong.

Between source updates only the clock moves. The jobs table then redraws only the rows whose
WAIT/RUN text changes (each row is due again when its coarse duration next reads differently), and
the dashboard hands back the same status lines and summary. These tests check the result against a
table synced from scratch at the same instant, and that the skipped work really is skipped."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

from textual.app import App

from mltop import format as fmt
from mltop.dashboard import Dashboard
from mltop.cost.policy import CostPolicy
from mltop.model import JobState, SourceData, SourceHealth
from mltop.prices import price_book
from mltop.refresh import SourceUpdate
from mltop.widgets.jobs_table import JobsTable
from tests.conftest import FIXED_NOW
from tests.factories import job

T0 = FIXED_NOW


def jobs_of_every_age():
    return [
        job("wait-30s", JobState.PENDING, submitted_min_ago=0.5),
        job("wait-59s", JobState.PENDING, submitted_min_ago=59.5 / 60),
        job("run-5m", submitted_min_ago=5),
        job("run-59m59s", submitted_min_ago=59 + 59 / 60),
        job("run-9h59m30s", submitted_min_ago=9 * 60 + 59.5),
        job("run-3d", submitted_min_ago=3 * 24 * 60),
        job("done", JobState.SUCCEEDED, submitted_min_ago=30, finished_min_ago=20),
    ]


class Host(App):
    def compose(self):
        yield JobsTable(id="jobs")


def texts(table: JobsTable) -> dict[str, tuple[str, ...]]:
    return {key: tuple(str(c) for c in table.get_row(key)) for key in table.records}


@asynccontextmanager
async def table_and_fresh():
    """A jobs table to tick, and one to sync from scratch at the same instants."""
    app, fresh_app = Host(), Host()
    async with app.run_test(size=(150, 12)), fresh_app.run_test(size=(150, 12)):
        table, fresh = app.query_one(JobsTable), fresh_app.query_one(JobsTable)
        table.relayout(148)
        fresh.relayout(148)
        yield table, fresh


async def test_a_tick_redraws_only_rows_whose_duration_text_changes_and_reads_as_a_fresh_sync():
    jobs = jobs_of_every_age()
    async with table_and_fresh() as (table, fresh):
        table.sync(jobs, T0)
        updated: list[str] = []
        real_update = table.update_cell
        table.update_cell = lambda key, col, value, **kw: (updated.append(key), real_update(key, col, value, **kw))

        for seconds in (0.2, 1, 31, 61, 3600, 2 * 86400):
            now = T0 + timedelta(seconds=seconds)
            updated.clear()
            table.sync(list(jobs), now)  # the same records again: the clock-only path
            fresh.sync(jobs, now)
            assert texts(table) == texts(fresh), f"after {seconds} s"
            if seconds == 0.2:
                assert updated == []  # nothing reads differently within the same second
            if seconds == 1:
                # Seconds changed, and 59m59s became 1h00m; other minutes, hours and days did not.
                assert {k.rsplit("/", 1)[1] for k in updated} == {"wait-30s", "wait-59s", "run-59m59s"}
        assert "done" not in {k.rsplit("/", 1)[1] for k in updated}  # a finished job's time never moves


async def test_a_row_whose_record_changed_ticks_on_its_new_record_s_clock():
    """The moment a row's text next changes is kept while its record stays the same; a new record
    (a job requeued, restarted) is planned again: its ticks read as a fresh sync's."""
    jobs = jobs_of_every_age()
    async with table_and_fresh() as (table, fresh):
        table.sync(jobs, T0)
        at = T0 + timedelta(seconds=2)  # run-59m59s now reads 1h00m and is next due a minute later
        table.sync(list(jobs), at)
        requeued = [replace(j, state=JobState.PENDING, started_at=None, submitted_at=at - timedelta(seconds=5))
                    if j.id == "run-59m59s" else j for j in jobs]
        table.sync(requeued, at)  # a new record: waiting 5 s, its text changes every second
        for seconds in (3, 4, 10, 30):
            now = T0 + timedelta(seconds=seconds)
            table.sync(list(requeued), now)  # the clock-only path
            fresh.sync(requeued, now)
            assert texts(table) == texts(fresh), f"after {seconds} s"


async def test_new_records_a_filter_or_changed_stops_take_the_full_sync():
    jobs = jobs_of_every_age()
    app = Host()
    async with app.run_test(size=(150, 12)):
        table = app.query_one(JobsTable)
        table.relayout(148)
        table.sync(jobs, T0)
        later = T0 + timedelta(seconds=5)
        gone = jobs[1:]
        table.sync(gone, later)  # a job left: a full sync removes its row
        assert len(table.records) == len(gone)
        gone[1] = replace(gone[1], stop_requested_at=T0)
        table.sync(gone, later)
        assert str(table.get_row(gone[1].key)[3]) == "STOP SENT"
        table.sync(gone, later, overdue=frozenset({gone[1].key}))  # the same records, the stop now overdue
        assert str(table.get_row(gone[1].key)[3]) == "STOP SENT!"
        table.set_filter("wait")
        table.sync(gone, later + timedelta(minutes=2))
        assert {j.id for j in table.records.values()} == {"wait-59s"}
        row = table.get_row(jobs[1].key)
        assert str(row[5]) == fmt.short_duration(jobs[1].queued_seconds(later + timedelta(minutes=2)))


def test_duration_text_changes_exactly_when_said():
    for seconds in (0, 0.5, 59.9, 60, 119, 3599.5, 35999, 36000, 86399, 86400, 863999, 864000, 10**7):
        after = fmt.short_duration_changes_in(seconds)
        assert after > 0
        assert fmt.short_duration(seconds + after * 0.999) == fmt.short_duration(seconds), seconds
        assert fmt.short_duration(seconds + after + 1e-6) != fmt.short_duration(seconds), seconds


def test_the_same_records_and_health_give_the_same_lines_and_summary_objects():
    dash = Dashboard(["ray/c"], prices=price_book(), policy=CostPolicy())
    health = SourceHealth("ray", "c", True, None, 1.0, T0, T0)
    data = SourceData(jobs=tuple(jobs_of_every_age()))
    dash.update(SourceUpdate("ray/c", health, data))
    first = dash.view(T0)
    tick = dash.view(T0 + timedelta(seconds=1), with_cost=False)
    assert tick.sources is first.sources and tick.summary is first.summary
    later = SourceHealth("ray", "c", True, None, 1.0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=2))
    dash.update(SourceUpdate("ray/c", later, data))
    polled = dash.view(T0 + timedelta(seconds=2))
    assert polled.sources is not first.sources and polled.sources[0].health == later
    down = SourceHealth("ray", "c", False, "refused", None, T0, T0 + timedelta(seconds=4))
    dash.update(SourceUpdate("ray/c", down, data))
    assert dash.view(T0 + timedelta(seconds=4)).summary.sources_up == 0


async def test_a_changed_cell_re_renders_only_its_own_row_and_the_screen_reads_as_a_fresh_table():
    jobs = [job(f"j{i}", submitted_min_ago=5 + i) for i in range(10)]
    changed = list(jobs)
    changed[3] = replace(jobs[3], name="jX", gpus=4)  # the same widths: no relayout
    app, fresh_app = Host(), Host()
    async with app.run_test(size=(150, 14)) as pilot, fresh_app.run_test(size=(150, 14)) as fresh_pilot:
        table, fresh = app.query_one(JobsTable), fresh_app.query_one(JobsTable)
        for t in (table, fresh):
            t.relayout(148)
        table.sync(jobs, T0)
        table.focus()  # focus restyles the table, which drops every cached render: settle it first,
        await pilot.pause()
        table.refresh()  # and draw it once as it now is (the steady state of a running screen)
        await pilot.pause()
        rendered: list[int] = []
        real = table._render_cell
        table._render_cell = lambda row, column, *a, **k: (rendered.append(row), real(row, column, *a, **k))[1]
        table.sync(changed, T0)
        fresh.sync(changed, T0)
        await pilot.pause()
        await fresh_pilot.pause()
        lines = [table.render_line(y).text for y in range(table.size.height)]
        assert rendered and set(rendered) == {3}  # the other rows' cells came from the cache
        assert lines == [fresh.render_line(y).text for y in range(fresh.size.height)]
        assert any(" jX " in line for line in lines)
        rendered.clear()
        table.move_cursor(row=5)  # the cursor's rows are drawn again, from cached cells but theirs
        await pilot.pause()
        assert set(rendered) <= {0, 5}


def test_a_slow_evaluation_of_new_data_waits_for_its_share_of_a_core_and_then_runs(monkeypatch):
    import mltop.dashboard as dashboard

    monkeypatch.setattr(dashboard, "COST_SLOW_SECONDS", 0.0)  # every evaluation counts as slow here
    dash = Dashboard(["ray/c"], prices=price_book(), policy=CostPolicy())
    health = SourceHealth("ray", "c", True, None, 1.0, T0, T0)
    dash.update(SourceUpdate("ray/c", health, SourceData(jobs=tuple(jobs_of_every_age()))))
    first = dash.view(T0).cost
    assert 0 < dash.cost_every_changed <= dashboard.COST_CHANGED_MAX_SECONDS
    fewer = SourceData(jobs=tuple(jobs_of_every_age()[:3]))
    dash.update(SourceUpdate("ray/c", health, fewer))
    held = dash.view(T0)
    assert held.cost is first and len(held.jobs) == 3  # the tables are new at once; the figures wait
    assert held.cost_behind == 0.0  # waiting since this instant
    monkeypatch.setattr(dashboard, "COST_CHANGE_SHARE", 1e-9)  # the next evaluation sets the longest wait
    assert dash.view(T0 + timedelta(seconds=dash.cost_every_changed + 0.01)).cost is not first
    assert dash.cost_every_changed == dashboard.COST_CHANGED_MAX_SECONDS
    dash.update(SourceUpdate("ray/c", health, SourceData(jobs=tuple(jobs_of_every_age()[:2]))))
    waits = T0 + timedelta(seconds=1)
    assert dash.view(waits).cost_behind == 0.0
    later = dash.view(waits + timedelta(seconds=4))
    assert later.cost_behind == 4.0 and len(later.jobs) == 2  # said on screen: "(costs 4s behind)"
    after = dash.view(T0 + timedelta(seconds=dash.cost_every_changed + 1.1))
    assert after.cost_behind == 0.0


async def test_rows_added_and_removed_keep_the_scrollbar_and_scrolling_right_without_a_screen_layout():
    many = [job(f"row{i:02d}", submitted_min_ago=5 + i) for i in range(30)]
    app = Host()
    async with app.run_test(size=(150, 10)) as pilot:
        table = app.query_one(JobsTable)
        table.relayout(148)
        table.sync(many[:3], T0)
        await pilot.pause()
        assert not table.show_vertical_scrollbar
        table.sync(many, T0)  # taller than the panel: the scrollbar appears (a layout, once)
        await pilot.pause()
        assert table.show_vertical_scrollbar
        table.sync(many[:-5], T0)  # rows removed, still taller: the thumb follows, no layout needed
        await pilot.pause()
        assert table.vertical_scrollbar.window_virtual_size == table.virtual_size.height == 26
        table.focus()
        table.action_last_row()
        await pilot.pause()
        assert table.scroll_offset.y > 0
        assert any("row24" in table.render_line(y).text for y in range(table.size.height))
        table.sync(many[:3], T0)  # short again: the scrollbar goes and the rows show from the top
        await pilot.pause()
        await pilot.pause()
        assert not table.show_vertical_scrollbar and table.scroll_offset.y == 0
        assert any("row00" in table.render_line(y).text for y in range(table.size.height))


async def test_rows_that_come_back_into_view_after_a_filter_are_due_on_the_clock_again():
    jobs = jobs_of_every_age()
    app, fresh_app = Host(), Host()
    async with app.run_test(size=(150, 12)), fresh_app.run_test(size=(150, 12)):
        table, fresh = app.query_one(JobsTable), fresh_app.query_one(JobsTable)
        for t in (table, fresh):
            t.relayout(148)
        table.set_filter("run-5m")
        table.sync(jobs, T0)  # only that row shown, and planned
        table.set_filter("")  # the others come back
        for seconds in (2, 7200):
            now = T0 + timedelta(seconds=seconds)
            table.sync(list(jobs), now)  # the clock-only path
            fresh.sync(jobs, now)
            assert texts(table) == texts(fresh), f"after {seconds} s"


async def test_the_header_says_when_the_cost_figures_lag_newer_records(monkeypatch):
    import mltop.dashboard as dashboard
    from mltop.config import Config
    from mltop.model import GpuNode
    from mltop.tui.app import MltopApp

    monkeypatch.setattr(dashboard, "COST_SLOW_SECONDS", 0.0)
    monkeypatch.setattr(dashboard, "COST_CHANGE_SHARE", 1e-9)  # every evaluation makes new data wait 30 s
    now = [T0]

    class Cluster:
        kind, name, key = "kubernetes", "c", "kubernetes/c"
        free = 8.0

        async def fetch(self) -> SourceData:
            node = GpuNode(key="kubernetes/c/n1", cluster="c", name="n1", pool="p", gpu_model="H100",
                           gpu_resource="nvidia.com/gpu", gpus_total=8, gpus_allocatable=8,
                           gpus_allocated=8 - self.free, ready=True, schedulable=True, instance_type="p5.48xlarge")
            return SourceData(nodes=(node,))

        async def aclose(self) -> None:
            pass

    source = Cluster()
    app = MltopApp(Config(), [source], clock=lambda: now[0], start_polling=False)
    async with app.run_test(size=(160, 30)) as pilot:
        await app.refresh_now()
        await pilot.pause()
        summary = lambda: str(app.query_one("#summary").render())  # noqa: E731
        assert "behind" not in summary()
        source.free, now[0] = 0.0, T0 + timedelta(seconds=3)  # the node is now in use: new records
        await app.refresh_now()
        now[0] = T0 + timedelta(seconds=7)
        await app.refresh_now()
        await pilot.pause()
        assert "(costs 4s behind)" in summary()
        now[0] = T0 + timedelta(seconds=31)  # the wait is over: evaluated, and the note goes
        await app.refresh_now()
        await pilot.pause()
        assert "behind" not in summary()


async def test_news_waits_for_the_next_tick_but_a_first_answer_an_outage_and_r_show_at_once():
    """A source's ordinary news is shown with the clock's next tick (one view, one frame, where
    there were two); its first answer, a change of health and the answer to `r` are not held."""
    from mltop.config import Config
    from mltop.tui.app import MltopApp
    from mltop.tui.messages import SourceUpdated

    class Quiet:
        kind, name, key = "ray", "c", "ray/c"

        async def fetch(self) -> SourceData:
            return SourceData()

        async def aclose(self) -> None:
            pass

    app = MltopApp(Config(), [Quiet()], clock=lambda: T0, start_polling=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await app.derived()
        started: list[bool] = []
        real = app._start_derivation
        app._start_derivation = lambda: (started.append(app._want_cost), real())

        async def post(ok: bool, jobs: tuple = ()) -> None:
            health = SourceHealth("ray", "c", ok, None if ok else "refused", 1.0, T0, T0)
            app.post_message(SourceUpdated(SourceUpdate("ray/c", health, SourceData(jobs=jobs))))
            await pilot.pause()
            await app.derived()

        await post(True)
        assert started == [True]  # the first answer: at once, with the cost engine
        await post(True, (job("new", JobState.PENDING, submitted_min_ago=1),))
        assert started == [True]  # news: held for the tick ...
        app._tick()
        await pilot.pause()
        await app.derived()
        assert started == [True, True]  # ... which shows it, the cost engine included
        assert "new" in {j.name for j in app.main.view.jobs}
        await post(False)
        assert len(started) == 3  # the source went down: at once
        await post(True)
        assert len(started) == 4  # and came back: at once
        app.action_refresh()
        await post(True)
        assert len(started) == 5  # the answer to `r`: at once
