"""Pilot tests: space marks jobs; cancel on marked jobs asks once, lists every target, sends each
request exactly once and reports each result."""

from __future__ import annotations

from mltop.tui.bulk import ConfirmBulk
from mltop.tui.confirm import ConfirmCancel
from mltop.refresh import utcnow
from mltop.widgets.jobs_table import JobsTable
from tests.test_tui import make_app, refreshed, rows, select


async def test_marked_jobs_are_cancelled_once_each_after_one_confirmation(live_demo):
    app = make_app(live_demo, clock=utcnow)
    sim = live_demo.ray_sim
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        table = app.query_one(JobsTable)
        for job_id in ("raysubmit_mistral_ft", "raysubmit_pretrain13b", "raysubmit_tokenize"):
            select(app, job_id)
            await pilot.press("space")
        assert len(table.marked) == 3
        assert "3 marked" in str(app.query_one("#jobs-panel").border_title)
        row = rows(app).index("raysubmit_mistral_ft")
        assert str(table.get_row_at(row)[0]).startswith("✓ ")  # marked by a glyph, not by colour only
        await pilot.press("ctrl+d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmBulk), [n.message for n in app._notifications]
        assert sorted(j.id for j in dialog.send) == ["raysubmit_mistral_ft", "raysubmit_pretrain13b"]
        assert [j.id for j, _ in dialog.skip] == ["raysubmit_tokenize"]  # finished: listed, not sent
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        stopped = live_demo.server.call(lambda: sorted(j.submission_id for j in sim.jobs.values()
                                                       if j.stop_at_ms or j.stop_on_start))
        assert stopped == ["raysubmit_mistral_ft", "raysubmit_pretrain13b"]
        entries = app.runner.audit.read()
        assert sorted(e["target_name"] for e in entries) == ["demo/raysubmit_mistral_ft", "demo/raysubmit_pretrain13b"]
        assert not table.marked
        assert any("stop: 2 of 2 accepted" in n.message for n in app._notifications)


async def test_no_sends_nothing_and_escape_clears_the_marks(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        table = app.query_one(JobsTable)
        select(app, "raysubmit_mistral_ft")
        await pilot.press("space", "space")  # marks two rows: the cursor moves down after each
        assert len(table.marked) == 2
        await pilot.press("ctrl+d", "n")
        assert not app.runner.audit.read() and len(table.marked) == 2
        await pilot.press("escape")
        assert not table.marked
        select(app, "raysubmit_mistral_ft")
        await pilot.press("ctrl+d")  # without marks: the single-job confirmation
        assert isinstance(app.screen, ConfirmCancel)


async def test_space_toggles_and_a_mark_on_a_job_that_left_is_dropped(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        table = app.query_one(JobsTable)
        select(app, "raysubmit_mistral_ft")
        await pilot.press("space")
        select(app, "raysubmit_mistral_ft")
        await pilot.press("space")
        assert not table.marked
        table.marked.add("ray/demo/gone")
        await refreshed(app, pilot)
        assert not table.marked
