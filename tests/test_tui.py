"""Pilot tests: the app wired to the demo's Ray dashboard over HTTP, driven by keys."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Input

from mltop.adapters.http import Endpoint
from mltop.adapters.ray import RaySource
from mltop.config import Config
from mltop.refresh import utcnow
from mltop.tui.app import MltopApp
from mltop.tui.commands import MltopCommands
from mltop.tui.confirm import ConfirmCancel
from mltop.tui.details import JobDetailsScreen
from mltop.tui.help import HelpScreen
from mltop.widgets.jobs_table import JobsTable
from mltop.widgets.source_status import SourceStatus
from tests.conftest import fixed_clock


def make_app(platform, *, clock=fixed_clock, extra=(), **config) -> MltopApp:
    cfg = replace(Config(endpoints={"ray": platform.ray_endpoints() + tuple(extra)}), **config)
    sources = [RaySource(e, clock=clock) for e in cfg.of("ray")]
    return MltopApp(cfg, sources, clock=clock, start_polling=False)


async def refreshed(app: MltopApp, pilot) -> None:
    await app.refresh_now()
    await pilot.pause()


def rows(app: MltopApp) -> list[str]:
    table = app.query_one(JobsTable)
    return [table.coordinate_to_cell_key((i, 0)).row_key.value.rsplit("/", 1)[1] for i in range(table.row_count)]


def select(app: MltopApp, job_id: str) -> None:
    table = app.query_one(JobsTable)
    table.move_cursor(row=rows(app).index(job_id))


def status_text(app: MltopApp) -> str:
    return str(app.query_one(SourceStatus).render())


async def test_jobs_panel_shows_the_queue_first(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(160, 30)) as pilot:
        await refreshed(app, pilot)
        assert rows(app) == [
            "raysubmit_pretrain13b", "raysubmit_eval_helm", "raysubmit_llama70b", "raysubmit_mistral_ft",
            "raysubmit_vit_oom", "raysubmit_tokenize",
        ]
        table = app.query_one(JobsTable)
        first = [str(c) for c in table.get_row_at(0)]
        assert first[:7] == ["demo", "raysubmit_pretrain13b", "pretrain-13b", "PENDING", "12", "23m", "carol"]
        assert first[7] == "no node has 12 GPU (max 8)"  # the REASON column, from 112 columns up
        assert "ray/demo" in status_text(app) and "GPUs 14/16 used" in status_text(app)
        assert app.query_one("#jobs-panel").border_title == "Jobs: 2 waiting, 2 running"


async def test_filter_narrows_and_escape_clears(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        await pilot.press("slash", *"alice", "enter")
        assert rows(app) == ["raysubmit_llama70b"]
        assert "filter: alice, 1 of 6" in app.query_one("#jobs-panel").border_title
        assert app.focused is app.query_one(JobsTable)
        await pilot.press("escape")
        assert len(rows(app)) == 6 and not app.query_one("#filter", Input).display


async def test_details_show_the_job_and_its_log_tail(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_vit_oom")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, JobDetailsScreen) and screen.job.id == "raysubmit_vit_oom"
        await screen.workers.wait_for_complete()
        await pilot.pause()
        log = str(screen.query_one("#log").render())
        assert "CUDA out of memory" in log
        assert "exit code 1" in str(screen.query_one("#message").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, JobDetailsScreen)


async def test_cancel_goes_to_the_confirmed_job_even_after_a_resort(live_demo):
    app = make_app(live_demo, clock=utcnow)
    sim = live_demo.ray_sim
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_mistral_ft")
        position = rows(app).index("raysubmit_mistral_ft")
        await pilot.press("ctrl+d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmCancel) and dialog.job.id == "raysubmit_mistral_ft"
        # While the dialog is open, new work arrives and the table re-sorts under it.
        live_demo.server.call(lambda: sim.submit("python x.py", submission_id="raysubmit_aaa_new", gpus=64))
        await refreshed(app, pilot)
        assert rows(app).index("raysubmit_mistral_ft") == position + 1
        assert rows(app)[position] != "raysubmit_mistral_ft"
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        stopped = live_demo.server.call(lambda: [j.submission_id for j in sim.jobs.values() if j.stop_at_ms])
        assert stopped == ["raysubmit_mistral_ft"]
        # Until Ray reports a terminal state the row says the stop was sent, not that it stopped.
        table = app.query_one(JobsTable)
        assert table.jobs["ray/demo/raysubmit_mistral_ft"].stop_requested_at is not None
        row = rows(app).index("raysubmit_mistral_ft")
        assert str(table.get_row_at(row)[2]) == "STOP SENT"
        # The simulated Ray stops it a second later; then the row shows Ray's final state.
        await pilot.pause(1.3)
        await refreshed(app, pilot)
        row = rows(app).index("raysubmit_mistral_ft")
        assert str(table.get_row_at(row)[2]) == "CANCELLED"
        assert any("ray reports STOPPED" in n.message for n in app._notifications)


async def test_cancel_of_a_waiting_job_that_does_not_leave_the_queue_is_told(live_demo):
    app = make_app(live_demo, clock=utcnow, stop_patience=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_pretrain13b")
        await pilot.press("ctrl+d", "y")
        await app.workers.wait_for_complete()
        await pilot.pause(0.7)
        await refreshed(app, pilot)
        table = app.query_one(JobsTable)
        row = rows(app).index("raysubmit_pretrain13b")
        assert str(table.get_row_at(row)[2]) == "STOP SENT!"
        messages = [n.message for n in app._notifications]
        assert any("still reports PENDING" in m for m in messages), messages
        assert not any("reports STOPPED" in m for m in messages)


async def test_no_means_nothing_is_cancelled(frozen_demo):
    app = make_app(frozen_demo)
    sim = frozen_demo.ray_sim
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_llama70b")
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmCancel)
        await pilot.press("enter")  # focus starts on "keep it": a stray Enter cancels nothing
        await app.workers.wait_for_complete()
        assert not isinstance(app.screen, ConfirmCancel)
        assert frozen_demo.server.call(lambda: [j for j in sim.jobs.values() if j.stop_at_ms or j.stop_on_start]) == []


async def test_cancel_on_a_finished_job_says_why_instead_of_doing_nothing(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_tokenize")
        await pilot.pause()
        assert app.check_action("cancel_job", ()) is True  # live: pressing it explains
        await pilot.press("ctrl+d")
        assert not isinstance(app.screen, ConfirmCancel)
        assert any("SUCCEEDED: nothing to cancel" in n.message for n in app._notifications)
        await pilot.press("r")
        assert any("refreshing 1 sources now" in n.message for n in app._notifications)


async def test_read_only_removes_cancel_from_keys_help_and_palette(frozen_demo):
    app = make_app(frozen_demo, read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_llama70b")
        await pilot.press("ctrl+d")
        assert not isinstance(app.screen, ConfirmCancel)
        assert "cancel_job" not in {b.binding.action for b in app.screen.active_bindings.values()}
        provider = MltopCommands(app.screen)
        assert "cancel_job" not in [c[0] for c in provider._allowed()]
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        actions = {b.binding.action for b in app.screen.bindings_shown.values()}
        assert "cancel_job" not in actions and "filter" in actions
        assert app.query_one("#jobs-panel").border_subtitle == "read-only"


async def test_help_lists_every_key_including_cancel(frozen_demo):
    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_llama70b")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        actions = {b.binding.action for b in app.screen.bindings_shown.values()}
        assert {"cancel_job", "filter", "quit", "help", "select_cursor"} <= actions


async def test_keys_can_be_remapped_from_config(frozen_demo):
    app = make_app(frozen_demo, keymap={"jobs.cancel": "ctrl+k"})
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_llama70b")
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, ConfirmCancel)


async def test_a_dead_source_shows_its_error_and_the_rest_keeps_working(frozen_demo):
    dead = Endpoint(name="down", url="http://127.0.0.1:9", timeout=2)
    app = make_app(frozen_demo, extra=(dead,))
    async with app.run_test(size=(120, 30)) as pilot:
        await refreshed(app, pilot)
        text = status_text(app)
        assert "ray/down" in text and "no data yet" in text and "cannot connect" in text
        assert "ray/demo" in text and len(rows(app)) == 6
        # With two clusters the cluster column appears.
        assert str(app.query_one(JobsTable).get_row_at(0)[0]) == "demo"


async def test_the_open_palette_offers_and_runs_mltops_actions_for_the_selection(frozen_demo):
    """Typed into the real palette (which covers the main screen while open): cancel is offered for
    the selected job, and choosing it opens the confirmation for that job."""
    from textual.command import CommandPalette
    from textual.widgets import OptionList

    app = make_app(frozen_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        select(app, "raysubmit_mistral_ft")
        await pilot.press("ctrl+p", *"cancel")
        await pilot.pause(0.5)
        assert isinstance(app.screen, CommandPalette)
        options = app.screen.query_one(OptionList)
        shown = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any("Cancel the selected job" in text for text in shown), shown
        await pilot.press("down", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmCancel) and app.screen.job.id == "raysubmit_mistral_ft"
