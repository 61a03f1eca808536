"""Pilot tests: `/` filters the focused panel (regex, field:value, numbers, !), shift+letter sorts."""

from __future__ import annotations

from textual.widgets import Input

from mltop.widgets.infra_tables import NodesTable, PoolsTable
from mltop.widgets.jobs_table import JobsTable
from tests.test_snapshots import make_full_app


async def loaded(app, pilot) -> None:
    await app.refresh_now()
    await pilot.pause()


def records(table):
    return [table.records[table.coordinate_to_cell_key((i, 0)).row_key.value] for i in range(table.row_count)]


async def test_filter_applies_to_the_focused_panel_and_shows_in_its_title(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        nodes = app.query_one(NodesTable)
        before, jobs_before = nodes.row_count, app.query_one(JobsTable).row_count
        nodes.focus()
        await pilot.press("slash", *"free>0", "enter")
        shown = records(nodes)
        assert shown and len(shown) < before and all(n.gpus_free > 0 for n in shown)
        assert f"[filter: free>0, {len(shown)} of {before}]" in str(app.query_one("#nodes-panel").border_title)
        assert app.query_one(JobsTable).row_count == jobs_before  # the queue is untouched
        assert app.focused is nodes
        await pilot.press("escape")
        assert nodes.row_count == before and "filter" not in str(app.query_one("#nodes-panel").border_title)


async def test_field_terms_negation_and_numbers_in_the_queue(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        jobs = app.query_one(JobsTable)
        total = jobs.row_count
        await pilot.press("slash", *"state:pending gpus>4", "enter")
        shown = records(jobs)
        assert shown and all(j.state.value == "PENDING" and j.gpus > 4 for j in shown)
        await pilot.press("slash", "ctrl+u", *"!state:pending", "enter")
        negated = records(jobs)
        assert negated and all(j.state.value != "PENDING" for j in negated)
        assert len(negated) + len([j for j in jobs._given if j.state.value == "PENDING"]) == total
        await pilot.press("slash", "ctrl+u", *"colour:red", "enter")
        assert "no field 'colour' here" in str(app.query_one("#jobs-panel").border_title)


async def test_shift_letter_sorts_reverses_and_restores(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        jobs = app.query_one(JobsTable)
        own_order = [j.key for j in records(jobs)]
        await pilot.press("U")  # GPUS, biggest first
        gpus = [j.gpus for j in records(jobs)]
        known = [g for g in gpus if g is not None]
        assert known == sorted(known, reverse=True) and gpus[: len(known)] == known  # unknown last
        assert "[sort: GPUS ▼]" in str(app.query_one("#jobs-panel").border_title)
        await loaded(app, pilot)  # a refresh keeps the order
        assert [j.gpus for j in records(jobs)] == gpus
        await pilot.press("U")
        assert [g for g in (j.gpus for j in records(jobs)) if g is not None] == sorted(known)
        await pilot.press("U")
        assert [j.key for j in records(jobs)] == own_order and "sort" not in str(app.query_one("#jobs-panel").border_title)


async def test_sort_keeps_the_selected_row_and_works_in_the_pools_panel(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        pools = app.query_one(PoolsTable)
        pools.focus()
        await pilot.press("j")
        chosen = pools.selected
        await pilot.press("N")
        names = [p.name.lower() for p in records(pools)]
        assert names == sorted(names)
        assert pools.selected == chosen  # the cursor stays on the same pool


async def test_cluster_command_narrows_every_panel(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(app, pilot)
        await pilot.press("colon", *"cluster demo-k8s", "enter")
        assert all(j.cluster == "demo-k8s" for j in records(app.query_one(JobsTable)))
        assert app.query_one(JobsTable).row_count > 0
        assert all(n.cluster == "demo-k8s" for n in records(app.query_one(NodesTable)))
        assert app.query_one("#filter", Input).value == "cluster:demo-k8s"


async def test_z_zooms_the_focused_panel_to_the_whole_screen_and_back(frozen_demo):
    app = make_full_app(frozen_demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(app, pilot)
        nodes = app.query_one(NodesTable)
        nodes.focus()
        await pilot.pause()
        small_rows = nodes.size.height
        await pilot.press("z")
        await pilot.pause()
        assert app.main.maximized is app.query_one("#nodes-panel")
        assert nodes.size.height >= 18 > small_rows  # every node on an 80x24 screen
        assert nodes.total_width == 78 and "free" in [c[0] for c in nodes.columns_shown]
        await pilot.press("z")
        await pilot.pause()
        assert app.main.maximized is None and nodes.size.height == small_rows
        await pilot.press("z", "escape")
        assert app.main.maximized is None
