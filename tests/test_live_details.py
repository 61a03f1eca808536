"""Job details that stay live: state, wait, utilization, nodes and cost follow the newest view,
keeping the scroll position and the loaded log tail; a job that vanishes says so.

The app forwards each drawn view to an open details screen with one call in `MltopApp._draw`
(`forward_view(self.screen_stack, view)`); these tests drive the real app.
"""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console

from mltop.adapters.ray import RaySource
from mltop.config import Config
from mltop.refresh import utcnow
from mltop.tui.app import MltopApp
from mltop.tui.details import JobDetailsScreen
from tests.conftest import fixed_clock
from tests.test_tui import refreshed, select


def live_app(platform, clock=utcnow) -> MltopApp:
    cfg = Config(endpoints={"ray": platform.ray_endpoints()})
    return MltopApp(cfg, [RaySource(e, clock=clock) for e in cfg.of("ray")], clock=clock, start_polling=False)


def shown(screen: JobDetailsScreen, widget: str) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(screen.query_one(widget).content)
    return console.export_text()


async def open_details(app, pilot, job_id: str) -> JobDetailsScreen:
    select(app, job_id)
    await pilot.press("enter")
    screen = app.screen
    assert isinstance(screen, JobDetailsScreen) and screen.job.id == job_id
    await screen.workers.wait_for_complete()
    await pilot.pause()
    return screen


async def test_details_open_with_utilization_nodes_and_cost(frozen_demo):
    app = live_app(frozen_demo, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await refreshed(app, pilot)
        screen = await open_details(app, pilot, "raysubmit_llama70b")
        facts = shown(screen, "#facts")
        assert "93% (measured" in facts
        assert "gpu-worker-1 (10.0.0.11)" in facts
        # 8 A100s at the shipped list price, for the 95 minutes since it was submitted.
        price = app.main.view.cost.node_price(screen.job.node_keys[0]).per_hour
        assert f"${price * 95 / 60:,.2f}" in facts and "8 GPUs x" in facts
        assert "running for      1h35m" in facts and "x 1h35m" in facts


async def test_state_and_utilization_change_on_screen_while_it_is_open(live_demo):
    sim = live_demo.ray_sim
    app = live_app(live_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        screen = await open_details(app, pilot, "raysubmit_eval_helm")
        await pilot.resize_terminal(100, 16)  # the details are now taller than the screen: they scroll
        await pilot.pause()
        before = shown(screen, "#facts")
        assert "PENDING" in before and "waiting for" in before and "not placed yet" in before
        assert "why it waits" in before
        log_before = shown(screen, "#log")
        assert "log tail" in log_before
        scroller = screen.query_one("#details")
        scroller.scroll_to(y=4, animate=False)
        await pilot.pause()
        assert scroller.scroll_y == 4

        def free_gpus_and_heat_up() -> None:  # on the demo server's own thread
            sim.jobs["raysubmit_mistral_ft"].run_seconds = 0  # ends now: 6 GPUs come free
            sim.advance()
            sim.jobs["raysubmit_eval_helm"].utilization = 77.0

        live_demo.server.call(free_gpus_and_heat_up)
        await refreshed(app, pilot)
        assert app.screen is screen
        after = shown(screen, "#facts")
        assert "RUNNING" in after and "PENDING" not in after and "why it waits" not in after
        assert "77% (measured" in after
        assert "gpu-worker-2 (10.0.0.12)" in after
        assert "GPU cost so far  $" in after and "4 GPUs x" in after
        assert "currently running" in shown(screen, "#message")
        assert shown(screen, "#log") == log_before  # the loaded tail stays
        assert scroller.scroll_y == 4  # and so does the reader's place


async def test_a_job_that_vanishes_says_so_and_keeps_what_was_known(live_demo):
    sim = live_demo.ray_sim
    app = live_app(live_demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshed(app, pilot)
        screen = await open_details(app, pilot, "raysubmit_tokenize")
        assert not screen.query_one("#gone").display
        live_demo.server.call(lambda: sim.jobs.pop("raysubmit_tokenize"))
        await refreshed(app, pilot)
        assert screen.query_one("#gone").display
        assert "gone from the queue" in shown(screen, "#gone")
        facts = shown(screen, "#facts")
        assert "SUCCEEDED" in facts and "tokenize-c4" in facts
        assert "$0.00 (it asks for no GPUs)" in facts


async def test_without_a_price_the_cost_is_unknown_never_invented(frozen_demo):
    app = live_app(frozen_demo, clock=fixed_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await refreshed(app, pilot)
        screen = await open_details(app, pilot, "raysubmit_llama70b")
        view = app.main.view
        unpriced = replace(view, cost=replace(view.cost, ray_node_prices={}))
        screen.on_view(unpriced)  # read at once: the app's next tick forwards its own view again
        assert "unknown (no price is known for its node)" in shown(screen, "#facts")


def test_a_waiting_job_whose_gpus_are_unknown_costs_nothing_yet_and_is_not_said_to_ask_for_none():
    """Ray does not say what a job asks for until its supervisor exists: a waiting job then has
    unknown GPUs. It has cost nothing, because it has not started, not because it asks for none."""
    from mltop.cost.policy import CostPolicy
    from mltop.dashboard import Dashboard
    from mltop.model import JobState
    from mltop.prices import price_book
    from mltop.registry import wait_models
    from mltop.tui.details import cost_text
    from tests.conftest import FIXED_NOW
    from tests.factories import job

    view = Dashboard([], prices=price_book(), policy=CostPolicy(waits_on=wait_models())).view(FIXED_NOW)
    waiting = replace(job("w", JobState.PENDING, gpus=None), started_at=None)
    assert cost_text(waiting, view) == "$0.00 (not started)"
    assert cost_text(replace(waiting, gpus=0.0), view) == "$0.00 (it asks for no GPUs)"
